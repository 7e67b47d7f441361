/* auth: CURVE keys of a city and the ZAP handler that proves who connects.
 *
 * A key directory (config_keys_dir()) holds one public certificate per
 * actor, in czmq's zcert format, named <actor>.key; its metadata says who
 * the key is:
 *
 *   actor  = name           (required; equals the file name without .key)
 *   kind   = worker | unit | unit-gateway | person | gateway
 *   roles  = comma list of operator, dispatcher, supervisor, leader, unit,
 *            admin, auditor
 *   unit   = unit id        (kind unit)
 *   worker = worker name    (kind worker)
 *
 * The secret half of a worker's or a tool's key is <actor>.key_secret
 * (mode 0600) beside it. A unit-gateway key (the unit simulator) may act for
 * any unit; a unit key only for its own. A gateway key is a front end that
 * speaks for the people behind it (a call centre's switch, a web gateway):
 * its requests name their agent, recorded under the gateway (authz.h).
 *
 * auth_t is the ZAP handler of one ZeroMQ context: it binds
 * inproc://zeromq.zap.01 in auth_new(), before any CURVE server socket of
 * that context binds, and answers in its own thread. It accepts a CURVE
 * client only when its public key is in the directory, and then sets the
 * connection's User-Id to the actor name and the property "X-Key" to the
 * key in Z85. Refused attempts are kept (the last AUTH_REFUSALS_MAX) for
 * the owner to log: nothing here logs.
 *
 * Invariants: the table the handler answers from is the directory as it was
 * at most AUTH_RESCAN_MS ago (the thread checks the directory's mtime that
 * often and reloads on change, and always while the mtime is under two
 * seconds old, for file systems with coarse timestamps; writers rename new
 * files into place, so a change always moves the mtime). auth_lookup() answers from the same
 * table, so a server that looks up the key of every request stops serving
 * a revoked key within AUTH_RESCAN_MS, even on a connection made before.
 *
 * Errors are 0 or a negative errno. Thread safety: auth_lookup() and
 * auth_take_refusals() may be called from any one thread while the handler
 * runs; everything else is plain single-threaded code.
 */
#ifndef DISPATCH_AUTH_H
#define DISPATCH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_BYTES 32
#define AUTH_KEY_TEXT 41 /* Z85 of a key, with the NUL */
#define AUTH_NAME_MAX 63
#define AUTH_RESCAN_MS 200
#define AUTH_REFUSALS_MAX 16

typedef enum auth_role {
    AUTH_ROLE_OPERATOR = 1u << 0,
    AUTH_ROLE_DISPATCHER = 1u << 1,
    AUTH_ROLE_SUPERVISOR = 1u << 2,
    AUTH_ROLE_LEADER = 1u << 3,
    AUTH_ROLE_UNIT = 1u << 4,
    AUTH_ROLE_ADMIN = 1u << 5,
    AUTH_ROLE_AUDITOR = 1u << 6,
} auth_role_t;

typedef enum auth_kind {
    AUTH_KIND_WORKER,
    AUTH_KIND_UNIT,
    AUTH_KIND_UNIT_GATEWAY,
    AUTH_KIND_PERSON,
    AUTH_KIND_GATEWAY,
} auth_kind_t;

/* Who a key is: a value, copied out of the table. */
typedef struct auth_actor {
    char name[AUTH_NAME_MAX + 1];
    auth_kind_t kind;
    unsigned roles;                 /* auth_role_t bits */
    char unit[AUTH_NAME_MAX + 1];   /* "" unless kind unit */
    char worker[AUTH_NAME_MAX + 1]; /* "" unless kind worker */
    char key[AUTH_KEY_TEXT];        /* public key, Z85 */
} auth_actor_t;

/* A loaded key pair (binary). */
typedef struct auth_keypair {
    uint8_t public_key[AUTH_KEY_BYTES];
    uint8_t secret_key[AUTH_KEY_BYTES];
} auth_keypair_t;

/* "operator,admin" -> bits; -EINVAL on an unknown or empty role. */
int auth_roles_parse(const char *list, unsigned *ret);
/* The role's word ("operator"); NULL for anything but one bit. */
const char *auth_role_name(unsigned role);
/* Writes the roles as a comma list into buf (truncated to len). */
void auth_roles_format(unsigned roles, char *buf, size_t len);
int auth_kind_parse(const char *word, auth_kind_t *ret);
const char *auth_kind_name(auth_kind_t kind);
/* True when the actor may act for unit_id (its own unit, or a gateway). */
bool auth_actor_acts_for_unit(const auth_actor_t *actor, const char *unit_id);

/* Generates a key pair for actor (its name, kind, roles, unit, worker; key
 * is ignored) and writes <dir>/<name>.key and <name>.key_secret, creating
 * dir (0700) if needed. -EEXIST when the public file exists, -EINVAL for a
 * name that is not 1..63 bytes of [A-Za-z0-9._-] or starts with '.'. */
int auth_key_new(const char *dir, const auth_actor_t *actor);
/* Removes <dir>/<name>.key (the secret stays, useless). -ENOENT if none. */
int auth_key_revoke(const char *dir, const char *name);
/* Loads <dir>/<name>.key_secret. */
int auth_keypair_load(const char *dir, const char *name, auth_keypair_t *ret);
/* Loads the public key of <dir>/<name>.key. */
int auth_public_load(const char *dir, const char *name, uint8_t ret[AUTH_KEY_BYTES]);
/* Loads the key file at path (public or secret). */
int auth_keypair_load_file(const char *path, auth_keypair_t *ret);
/* Who the key file at path (public or secret) says it is. */
int auth_actor_load_file(const char *path, auth_actor_t *ret);

/* Every actor of the directory, sorted by name; *ret is the caller's to
 * free(). Files that are not valid certificates are skipped and counted in
 * *skipped (may be NULL). */
int auth_keys_list(const char *dir, auth_actor_t **ret, size_t *count, size_t *skipped);

/* Socket options of a CURVE server with this key pair (set before bind). */
int auth_curve_server(void *socket, const auth_keypair_t *self);
/* Socket options of a CURVE client (set before connect). */
int auth_curve_client(void *socket, const auth_keypair_t *self,
                      const uint8_t server_key[AUTH_KEY_BYTES]);

/* What a client needs to reach a CURVE server: its own pair and the
 * server's public key. A NULL auth_client_t * everywhere means plain. */
typedef struct auth_client {
    auth_keypair_t self;
    uint8_t server_key[AUTH_KEY_BYTES];
} auth_client_t;
/* Loads <dir>/<actor>.key_secret and <dir>/<server>.key. */
int auth_client_load(const char *dir, const char *actor, const char *server, auth_client_t *ret);
/* auth_curve_client() with client's keys; 0 without doing anything when
 * client is NULL. */
int auth_client_apply(void *socket, const auth_client_t *client);

typedef struct auth auth_t;

/* Loads dir, binds the ZAP handler in zmq_context and starts its thread.
 * The server's pair comes from $CREDENTIALS_DIRECTORY/<server>.key_secret
 * when the service manager passed it (systemd LoadCredential=), else from
 * dir.
 * -EADDRINUSE when the context has a ZAP handler already. The directory
 * may be empty or missing (then nobody gets in). server, when not NULL,
 * names the key pair (<dir>/<server>.key_secret) the sockets of this
 * context serve with (auth_server_apply). */
int auth_new(void *zmq_context, const char *dir, const char *server, auth_t **ret);
/* auth_curve_server() with the server's key pair; -ENOKEY when auth_new()
 * was given none. */
int auth_server_apply(auth_t *self, void *socket);
/* The keys to reach the worker `server` as this context's key pair (a
 * worker's link to another): that pair and <dir>/<server>.key. */
int auth_peer_keys(auth_t *self, const char *server, auth_client_t *ret);
/* Stops the thread and closes its socket; call before zmq_ctx_term(). */
void auth_destroy(auth_t **self);
/* How many times the key table was read (a count to wait on). */
uint64_t auth_generation(auth_t *self);
/* How many reloads dropped a key that was there: a count that moves when a
 * key is revoked, for those who hold connections of keys (a PUB) and must
 * drop them to have every subscriber shake hands again. */
uint64_t auth_revocations(auth_t *self);
/* Waits until a table newer than generation `seen` is in place: 0, or
 * -ETIMEDOUT after timeout_ms. For those who must know a change was seen. */
int auth_wait_reload(auth_t *self, uint64_t seen, int timeout_ms);
/* The actor of a public key (Z85), as the directory says now; -ENOENT
 * when the key is not (or no longer) there. */
int auth_lookup(auth_t *self, const char *key, auth_actor_t *ret);

/* Refuses new handshakes of a key (Z85) for a while: a client whose
 * connection was cut for misbehaving (endpoint.h) cannot come straight
 * back. The first suspension lasts AUTH_SUSPEND_MIN_MS; one that follows
 * the key's last within AUTH_SUSPEND_MEMORY_MS is twice that one, up to
 * AUTH_SUSPEND_MAX_MS. Connections the key has already are not touched.
 * Returns the suspension's length in ms (0 when the table of suspended
 * keys, AUTH_SUSPENDED_MAX, is full: the key then is not suspended). The
 * refused handshakes of a suspended key are counted, not kept as
 * refusals: the suspension is told once by whoever suspended it. */
#define AUTH_SUSPEND_MIN_MS 1000
#define AUTH_SUSPEND_MAX_MS 60000
#define AUTH_SUSPEND_MEMORY_MS 60000
#define AUTH_SUSPENDED_MAX 64
int auth_suspend(auth_t *self, const char *key);
/* Handshakes refused because their key was suspended, since the start. */
uint64_t auth_suspended_refusals(auth_t *self);

typedef struct auth_refusal {
    char address[64];        /* peer address as ZAP gives it */
    char key[AUTH_KEY_TEXT]; /* "" when the mechanism was not CURVE */
    char mechanism[16];
} auth_refusal_t;
/* Moves up to capacity refusals (oldest first) into out; their count.
 * *dropped (may be NULL) gets how many were lost to the bound since the
 * last call. */
size_t auth_take_refusals(auth_t *self, auth_refusal_t *out, size_t capacity, uint64_t *dropped);

#endif
