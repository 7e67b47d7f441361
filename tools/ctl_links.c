/* dispatchctl links: the bus links of a worker, through its admin endpoint
 * (docs/protocol.md sections 3.1 and 6.2).
 *
 *   links [--worker NAME]          the links of NAME (default: the router of
 *                                  --district), both ways; --router URL wins
 *   links accept WORKER PEER       WORKER accepts the incarnation PEER presents
 *                                  on a diverged link
 *
 * Router and escalation answer (they have an admin endpoint); intake and
 * audit do not yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"
#include "words.h"

/* The admin endpoint of the worker named `name`, from the topology. */
static int worker_url(ctl_t *ctl, const char *name, const char **url)
{
    if (!name || ctl->router_url) /* --router names the admin endpoint itself */
        return ctl_router_url(ctl, NULL, url);
    if (!ctl->config)
        return ctl_usage_error("--worker needs the topology file (--config)");
    const config_worker_t *worker = config_worker_find(ctl->config, name);
    if (!worker)
        return ctl_usage_error("no worker named '%s' in %s", name, ctl->config_path);
    if (strcmp(worker->kind, "router") != 0 && strcmp(worker->kind, "escalation") != 0)
        return ctl_usage_error("%s is a dispatch-%s: only router and escalation answer for their "
                               "links (through their admin endpoint)",
                               name, worker->kind);
    if (!worker->request)
        return ctl_usage_error("%s has no request endpoint in %s", name, ctl->config_path);
    *url = worker->request;
    return CTL_EXIT_OK;
}

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

static int links_call(ctl_t *ctl, const char *worker, Dispatch__AdminRequest__BodyCase body_case,
                      void *body)
{
    const char *url;
    int rc = worker_url(ctl, worker, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__AdminReply *reply;
    rc = ctl_admin_call(ctl, url, body_case, body, ctl_actor(ctl, "dispatchctl"),
                        DISPATCH__ROLE__ROLE_ADMIN, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_LINKS || !reply->links)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    else if (!ctl->json)
        print_links(reply->links);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

int ctl_cmd_links(ctl_t *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "accept") == 0) {
        if (argc != 4)
            return ctl_usage_error("usage: links accept WORKER PEER");
        Dispatch__LinkAccept accept = DISPATCH__LINK_ACCEPT__INIT;
        accept.peer = argv[3];
        return links_call(ctl, argv[2], DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT, &accept);
    }
    const char *worker = NULL;
    const ctl_option_t options[] = {{"worker", CTL_OPTION_TEXT, .value = &worker}};
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "links", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__LinksQuery query = DISPATCH__LINKS_QUERY__INIT;
    return links_call(ctl, worker, DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY, &query);
}
