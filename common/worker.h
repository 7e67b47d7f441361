/* worker: what every worker process does around its own logic.
 *
 * worker_main() parses the common options, loads the topology, opens the
 * instance's LMDB environment and its bus (links to every worker the
 * topology lists under `links`), lets the worker kind start (open its
 * databases, bind its endpoints), binds the bus endpoint, announces
 * readiness (--ready-fd, sd_notify) and runs the loop until SIGTERM or
 * SIGINT, feeding the systemd watchdog. A worker's main.c is one call.
 *
 *   dispatch-<kind> --config FILE --name NAME [--set KEY=VALUE]...
 *                   [--ready-fd N] [--log-level LEVEL] [--clock SPEC]
 *                   [--no-sync]   (benchmarks only: commits are not fsynced)
 *                   [--accept-incarnation PEER]...  (an operator's decision: the
 *                   incarnation PEER presents next, on the link to it or as a
 *                   sender, is accepted; see bus_accept() and protocol.md 3.1)
 *
 * The kind's handlers take the store's transaction and plain values, never
 * sockets, so tests and fuzzers call them without a process.
 *
 * SIGHUP reads the topology again (for kinds with a reload handler; others
 * log that they must be restarted): a link the new topology adds is opened,
 * a link whose peer's bus endpoint changed is pointed there (its outbox
 * goes on from the first unacknowledged message), and the kind's reload()
 * takes the new config. The worker itself must keep its kind, state_dir,
 * bus and client endpoints (a change there needs a restart; the reload is
 * refused and the old topology kept), and so is a reload where a new link
 * cannot be opened (its peer's key not in the key directory yet): the kind
 * never learns a peer it cannot send to. Links the new topology drops stay
 * open until a restart: their outbox may still hold messages. Configs
 * replaced by a reload are kept until the process ends, so pointers into
 * them stay valid.
 *
 * Invariant checks: the loop checks the bus after every batch; start() adds
 * the checks of the kind's own modules with worker_check_add(). They run,
 * and a broken invariant aborts the worker, only in DISPATCH_CHECKS builds
 * (see loop.h).
 */
#ifndef DISPATCH_WORKER_H
#define DISPATCH_WORKER_H

#include "auth.h"
#include "bus.h"
#include "config.h"
#include "endpoint.h"
#include "loop.h"
#include "store.h"

typedef struct worker worker_t;

typedef struct worker_kind {
    const char *kind; /* "intake", "router", ... as in the topology */
    /* Opens databases and endpoints; *app becomes the loop's app. Extra
     * options the kind accepts come in argv (after the common ones were
     * taken out). Returns 0 or a negative code (logged by worker_main). */
    int (*start)(worker_t *worker, int argc, char **argv, void **app);
    void (*stop)(void *app);
    bus_apply_fn apply; /* messages arriving on the bus */
    loop_app_t loop;    /* .app is set by worker_main */
    /* SIGHUP: the topology read again, its links opened or pointed at
     * their new endpoints already; the kind takes config (it outlives the
     * app). NULL: the kind does not reload. Returns 0, or a negative code
     * after which the kind goes on with the old config. */
    int (*reload)(void *app, const config_t *config);
    /* The kind's own options for --help, one "  --name N   what" line each
     * (NULL: none). A --set of a topology key that is one of them says to
     * give the option instead. */
    const char *options_help;
} worker_kind_t;

/* Exit status of a process started under the name of a worker that is
 * running (its state dir is locked): EX_TEMPFAIL of sysexits.h. It exits
 * before it opens its store or any socket. */
#define WORKER_EXIT_RUNNING 75

int worker_main(int argc, char **argv, const worker_kind_t *kind);

const config_t *worker_config(const worker_t *worker);
const config_worker_t *worker_self(const worker_t *worker);
store_t *worker_store(worker_t *worker);
bus_t *worker_bus(worker_t *worker);
void *worker_zmq(worker_t *worker);
/* The context's ZAP handler, which also holds this worker's key pair
 * (<keys_dir>/<name>.key_secret); NULL when [city] security = plain. */
auth_t *worker_auth(worker_t *worker);
/* The link to the worker of `kind` (and `district`, when not NULL) among
 * this worker's links; NULL when the topology gives none. */
bus_link_t *worker_link_to(worker_t *worker, const char *kind, const char *district);

/* Adds an endpoint to the ready announcement. */
int worker_announce(worker_t *worker, const char *name, const char *url);

/* Binds a request endpoint of this worker (endpoint.h: messages up to
 * max_message bytes, at most max_queue requests a batch, 0 = the default)
 * at url and announces it as `name`. Logs why it cannot. */
int worker_endpoint(worker_t *worker, const char *name, const char *url, int64_t max_message,
                    size_t max_queue, endpoint_t **ret);

/* Adds a check the loop runs after every batch (loop.h); ctx stays the
 * caller's and must live until the kind's stop(). -ENOSPC past
 * WORKER_MAX_CHECKS. */
#define WORKER_MAX_CHECKS 8
int worker_check_add(worker_t *worker, loop_check_fn fn, void *ctx);

#endif
