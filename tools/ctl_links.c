/* dispatchctl links: the bus links of a worker and the state of its store,
 * through its client endpoint (docs/protocol.md sections 3.1 and 6.2).
 *
 *   links [--worker NAME]          the links of NAME (default: the router of
 *                                  --district), both ways; --router URL wins
 *   links accept WORKER PEER       WORKER accepts the incarnation PEER presents
 *                                  on a diverged link
 *
 * Router and escalation answer on their admin endpoint, intake and audit on
 * their request endpoint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "words.h"

/* The first 8 bytes in hex ("-" for none): enough to tell two apart. */
static const char *short_hex(const ProtobufCBinaryData *bytes, char *buf, size_t len)
{
    if (bytes->len == 0)
        return "-";
    size_t n = bytes->len < 8 ? bytes->len : 8;
    for (size_t i = 0; i < n && 2 * i + 2 < len; i++)
        snprintf(buf + 2 * i, 3, "%02x", bytes->data[i]);
    return buf;
}

static void full_hex(const ProtobufCBinaryData *bytes, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < bytes->len && 2 * i + 2 < len; i++)
        snprintf(buf + 2 * i, 3, "%02x", bytes->data[i]);
}

/* A worker whose batches fail applies nothing its links bring: said under
 * its name, before the links, so that a stalled link has its cause beside
 * it. */
static void print_storage(const char *worker, const Dispatch__StorageState *storage)
{
    if (!storage)
        return; /* a worker older than StorageState in LinksView */
    char name[128], since[64], error[256];
    ctl_clean(worker, name, sizeof(name));
    ctl_clean(storage->error, error, sizeof(error));
    uint64_t failed = storage->failing ? storage->episode_failures : storage->failed_batches;
    const char *batches = failed == 1 ? "batch" : "batches";
    if (storage->failing)
        printf("%s: storage FAILING since %s: %llu %s failed (%s)\n", name,
               ctl_time(storage->failing_since, since, sizeof(since)), (unsigned long long)failed,
               batches, error);
    else if (failed > 0)
        printf("%s: storage ok; %llu %s failed since start, the latest: %s\n", name,
               (unsigned long long)failed, batches, error);
    else
        printf("%s: storage ok\n", name);
}

static void print_links(const Dispatch__LinksView *view)
{
    enum { COLUMNS = 9 };
    static const char *const headers[COLUMNS] = {
        "PEER", "DIR", "STATE", "HEARD", "OUTBOX", "LAG", "ACKED", "PEER-INCARNATION", "RECONNECTS",
    };
    char self[64] = "-";
    if (view->n_links > 0)
        full_hex(&view->links[0]->incarnation, self, sizeof(self));
    char name[128];
    printf("worker %s  incarnation %s\n", ctl_clean(view->worker, name, sizeof(name)), self);
    print_storage(view->worker, view->storage);
    ctl_table_t *table;
    if (ctl_table_new(COLUMNS, headers, &table) < 0)
        return;
    for (size_t i = 0; i < view->n_links; i++) {
        const Dispatch__LinkState *link = view->links[i];
        bool out = link->direction == DISPATCH__LINK_DIRECTION__LINK_DIRECTION_OUTGOING;
        char state[WORDS_SIZE + 16], heard[32], outbox[32], lag[32], acked[32], incarnation[24],
            reconnects[32];
        char reason[WORDS_SIZE];
        if (link->divergence && words_name(&dispatch__link_divergence__descriptor, link->divergence,
                                           reason, sizeof(reason)) < 0)
            snprintf(reason, sizeof(reason), "?");
        if (link->divergence)
            snprintf(state, sizeof(state), "DIVERGED:%s", reason);
        else
            snprintf(state, sizeof(state), "%s",
                     link->refused ? "REFUSED"
                     : link->up    ? "up"
                                   : "down");
        snprintf(heard, sizeof(heard), "%.1fs", (double)link->last_heard_age / 1000.0);
        snprintf(outbox, sizeof(outbox), "%llu", (unsigned long long)link->outbox);
        snprintf(lag, sizeof(lag), "%llu", (unsigned long long)link->lag);
        snprintf(acked, sizeof(acked), "%llu", (unsigned long long)link->acked);
        snprintf(reconnects, sizeof(reconnects), "%llu", (unsigned long long)link->reconnects);
        const char *cells[COLUMNS] = {
            ctl_clean(link->peer, name, sizeof(name)),
            out ? "out" : "in",
            state,
            heard,
            out ? outbox : "-",
            out ? lag : "-",
            acked,
            short_hex(&link->peer_incarnation, incarnation, sizeof(incarnation)),
            out ? reconnects : "-",
        };
        ctl_table_add(table, cells);
    }
    ctl_table_print(table, stdout);
    ctl_table_destroy(&table);
    for (size_t i = 0; i < view->n_links; i++) {
        const Dispatch__LinkState *link = view->links[i];
        if (!link->divergence)
            continue;
        char known[64], offered[64];
        full_hex(&link->peer_incarnation, known, sizeof(known));
        full_hex(&link->offered, offered, sizeof(offered));
        printf("%s: diverged: known incarnation %s, now %s; nothing is applied or deleted until "
               "`dispatchctl links accept %s %s`\n",
               ctl_clean(link->peer, name, sizeof(name)), known[0] ? known : "none", offered,
               view->worker, link->peer);
    }
    if (view->more)
        printf("(more links than fit one reply)\n");
}

/* The LinksView of one worker, asked the way its kind answers: router and
 * escalation on their admin endpoint, intake and audit on their request
 * endpoint. accept (may be NULL) is the peer of a LinkAccept. */
static int worker_links(ctl_t *ctl, const config_worker_t *worker, const char *url,
                        const char *accept)
{
    Dispatch__LinksQuery query = DISPATCH__LINKS_QUERY__INIT;
    Dispatch__LinkAccept link_accept = DISPATCH__LINK_ACCEPT__INIT;
    link_accept.peer = (char *)accept;
    ProtobufCMessage *msg = NULL;
    const Dispatch__Error *error = NULL;
    const Dispatch__LinksView *view = NULL;
    int rc;
    if (strcmp(worker->kind, "intake") == 0) {
        Dispatch__Request request = DISPATCH__REQUEST__INIT;
        request.actor = (char *)ctl_intake_actor(ctl, url);
        request.tag = 1;
        if (accept)
            ctl_set_body(&request.base, DISPATCH__REQUEST__BODY_LINK_ACCEPT, &link_accept);
        else
            ctl_set_body(&request.base, DISPATCH__REQUEST__BODY_LINKS_QUERY, &query);
        rc = ctl_call(ctl, url, &request.base, &dispatch__reply__descriptor, &msg);
        if (rc == CTL_EXIT_OK) {
            const Dispatch__Reply *reply = (const Dispatch__Reply *)msg;
            error = reply->body_case == DISPATCH__REPLY__BODY_ERROR ? reply->error : NULL;
            view = reply->body_case == DISPATCH__REPLY__BODY_LINKS ? reply->links : NULL;
        }
    } else if (strcmp(worker->kind, "audit") == 0) {
        Dispatch__AuditQuery request = DISPATCH__AUDIT_QUERY__INIT;
        request.tag = 1;
        if (accept)
            ctl_set_body(&request.base, DISPATCH__AUDIT_QUERY__BODY_LINK_ACCEPT, &link_accept);
        else
            ctl_set_body(&request.base, DISPATCH__AUDIT_QUERY__BODY_LINKS_QUERY, &query);
        rc = ctl_call(ctl, url, &request.base, &dispatch__audit_reply__descriptor, &msg);
        if (rc == CTL_EXIT_OK) {
            const Dispatch__AuditReply *reply = (const Dispatch__AuditReply *)msg;
            error = reply->error;
            view = reply->body_case == DISPATCH__AUDIT_REPLY__BODY_LINKS ? reply->links : NULL;
        }
    } else {
        Dispatch__AdminReply *reply = NULL;
        rc =
            accept
                ? ctl_admin_call(ctl, url, DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT, &link_accept,
                                 ctl_actor(ctl, "dispatchctl"), DISPATCH__ROLE__ROLE_ADMIN, &reply)
                : ctl_admin_call(ctl, url, DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY, &query,
                                 ctl_actor(ctl, "dispatchctl"), DISPATCH__ROLE__ROLE_ADMIN, &reply);
        msg = reply ? &reply->base : NULL;
        if (rc == CTL_EXIT_OK)
            view = reply->body_case == DISPATCH__ADMIN_REPLY__BODY_LINKS ? reply->links : NULL;
    }
    if (rc == CTL_EXIT_OK && error)
        rc = ctl_refused(error);
    else if (rc == CTL_EXIT_OK && !view)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    else if (rc == CTL_EXIT_OK && ctl->json)
        rc = ctl_print_json(&view->base);
    else if (rc == CTL_EXIT_OK)
        print_links(view);
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

/* The links of the worker named `name`, or (NULL) of every worker of the
 * topology, one after the other; the first failure is the exit code, and
 * the others are still asked. --router URL asks that admin endpoint. */
static int links_of(ctl_t *ctl, const char *name, const char *accept)
{
    if (ctl->router_url || (!name && !ctl->config)) {
        const char *url;
        int rc = ctl_router_url(ctl, NULL, &url);
        if (rc != CTL_EXIT_OK)
            return rc;
        config_worker_t router = {.kind = "router"};
        return worker_links(ctl, &router, url, accept);
    }
    if (name && !config_worker_find(ctl->config, name))
        return ctl_usage_error("no worker named '%s' in %s", name, ctl->config_path);
    int status = CTL_EXIT_OK;
    for (size_t i = 0; i < config_worker_count(ctl->config); i++) {
        const config_worker_t *worker = config_worker_at(ctl->config, i);
        if (name && strcmp(worker->name, name) != 0)
            continue;
        if (!worker->request) {
            fprintf(stderr, "links: %s has no request endpoint in %s\n", worker->name,
                    ctl->config_path);
            status = status ? status : CTL_EXIT_USAGE;
            continue;
        }
        if (!name && i > 0 && !ctl->json)
            printf("\n");
        int rc = worker_links(ctl, worker, worker->request, accept);
        status = status ? status : rc;
    }
    return status;
}

int ctl_cmd_links(ctl_t *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "accept") == 0) {
        if (argc != 4)
            return ctl_usage_error("usage: links accept WORKER PEER");
        return links_of(ctl, argv[2], argv[3]);
    }
    const char *worker = NULL;
    const ctl_option_t options[] = {{"worker", CTL_OPTION_TEXT, .value = &worker}};
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "links", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    return links_of(ctl, worker, NULL);
}
