/* workerstats: StatsQuery's answer; see workerstats.h. */
#include "workerstats.h"

#include "endpoint.h"

int workerstats_fill(Dispatch__WorkerStats *stats, store_t *store, bus_t *bus, linkview_t *links)
{
    dispatch__worker_stats__init(stats);
    MDB_envinfo info;
    MDB_stat stat;
    MDB_env *env = store_env(store);
    if (mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &stat) == 0) {
        stats->commits = info.me_last_txnid;
        stats->store_used_bytes = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
        stats->store_map_bytes = info.me_mapsize;
    }
    endpoint_stats_t endpoints;
    endpoint_stats_all(&endpoints);
    stats->malformed = endpoints.malformed;
    stats->connections_cut = endpoints.cuts;
    stats->dropped_after_cut = endpoints.dropped;
    if (!bus) {
        storagestate_fill(&links->storage, store);
        stats->storage = &links->storage.state;
        return 0;
    }
    bus_stats_t counts;
    bus_stats(bus, &counts);
    stats->applied = counts.applied;
    stats->duplicates = counts.duplicates;
    stats->gaps = counts.gaps;
    stats->rejected = counts.rejected;
    stats->refused = counts.refused;
    stats->bad_frames = counts.bad_frames;
    stats->forged = counts.forged;
    stats->dead_dropped = counts.dead_dropped;
    Dispatch__LinksView *view;
    /* Room for the counters besides the links in a 64 KiB reply. */
    int rc = linkview_fill(links, store, bus, LINKVIEW_MAX_BYTES - 512, &view);
    if (rc < 0)
        return rc;
    stats->worker = view->worker;
    stats->links = view->links;
    stats->n_links = view->n_links;
    stats->more = view->more;
    stats->storage = view->storage;
    return 0;
}
