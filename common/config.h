/* config: the topology file, read by every worker and by dispatchctl.
 *
 * The file is INI (read with common/ini.h):
 *
 *   [city]                   name, timezone                  (both required),
 *                            security (curve, the default, or plain),
 *                            keys_dir (default: "keys" beside the topology file;
 *                            "keys" in the cwd for a topology read from a string)
 *   [district.<id>]          name                            (display name; defaults to <id>)
 *   [worker.<name>]          kind, district, state_dir, bus, request, publish, links, map_size,
 *                            units (router: unit endpoint), id_prefix (intake: ticket id
 *                            prefix), data_dir (directory of the worker's data files),
 *                            dead_after_ms (a bus link silent this long is down and gets a
 *                            new socket; default 3000), max_backlog (intake: messages to a
 *                            router committed and not yet acknowledged past which new
 *                            submits are refused UNAVAILABLE; default CONFIG_BACKLOG_DEFAULT)
 *
 * A loaded config_t is complete and consistent: every check below has passed,
 * so a worker can use any value it finds without checking it again.
 *
 *   - names (city, district ids, worker names, links) are 1..63 bytes of
 *     [A-Za-z0-9._-], and neither "." nor "..";
 *   - kind is intake, router, escalation or audit;
 *   - router and escalation have a district; any district given names a
 *     [district.<id>] section;
 *   - state_dir is set on every worker;
 *   - every link names another worker that has a bus endpoint, at most once;
 *   - endpoints look like transport://address (tcp, ipc, inproc) and no two
 *     are equal, except wildcard ports (":*", ":0") which the OS resolves;
 *   - map_size is a positive byte count (suffix B, KiB, MiB or GiB);
 *   - dead_after_ms is a whole number of milliseconds, 1 to CONFIG_MS_MAX;
 *   - max_backlog is a whole number, 1 to CONFIG_COUNT_MAX;
 *   - security is curve or plain; with plain every tcp endpoint binds
 *     127.0.0.1, ::1 or localhost (nothing unauthenticated leaves the host);
 *   - with more than one intake, each has an id_prefix and no two share one
 *     (ticket ids carry it; routers find a ticket's intake by it).
 *
 * Syntax: one `key = value` per line; ';' starts an inline comment when it
 * follows whitespace; ';' or '#' at the start of a line is a comment. A long
 * `links` list may continue on the following lines when they are indented;
 * no other value may. Empty values are refused (leave the key out instead).
 * A line holds at most INI_LINE_MAX (4096) bytes: a longer one is refused
 * with an error, never truncated.
 *
 * Ownership: config_t owns every string and array reachable from it; the
 * pointers returned by the accessors stay valid until config_destroy(), or
 * until config_set() changes that very value.
 *
 * Errors are 0 or a negative errno; when `err` is not NULL a message is
 * written to it ("path:line: what is wrong", or "set key: what is wrong"),
 * truncated to err_len. Nothing here logs.
 */
#ifndef DISPATCH_CONFIG_H
#define DISPATCH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Longest name (worker, district id, city) in bytes, without the NUL. */
#define CONFIG_NAME_MAX 63
/* Largest duration in milliseconds a key takes (one hour). */
#define CONFIG_MS_MAX 3600000
#define CONFIG_COUNT_MAX 100000000
#define CONFIG_BACKLOG_DEFAULT 8192

typedef struct config config_t;

/* Read-only view of one [worker.<name>] section. Optional fields are NULL
 * when not set; links is NULL when link_count is 0. */
typedef struct config_worker {
    const char *name;
    const char *kind;         /* "intake", "router", "escalation" or "audit" */
    const char *district;     /* district id; always set for router and escalation */
    const char *state_dir;    /* as written; a relative path is relative to the worker's cwd */
    const char *bus;          /* endpoint its bus ROUTER binds (incoming links) */
    const char *request;      /* client request endpoint */
    const char *publish;      /* PUB endpoint */
    const char *const *links; /* workers it sends to, in file order */
    size_t link_count;
    uint64_t map_size;     /* LMDB initial map size in bytes; 0 = not set */
    const char *units;     /* router: endpoint units connect to */
    const char *id_prefix; /* intake: prefix of the ticket ids it issues */
    const char *data_dir;  /* directory of data files (units, rules, deadlines, calendar) */
    int dead_after_ms;     /* bus: a link silent this long gets a new socket; 0 = not set */
    uint64_t max_backlog;  /* intake: unacknowledged messages to a router; 0 = not set */
} config_worker_t;

typedef struct config_district {
    const char *id;   /* the <id> of [district.<id>] */
    const char *name; /* display name; the id when the file gives none */
} config_district_t;

/* Loads and checks the topology file at `path`. On success *ret is a new
 * config the caller frees with config_destroy(). Returns -ENOENT when the
 * file does not exist (other open errors as -errno), -EINVAL when it is not a
 * valid topology, -ENOMEM. On failure *ret is left untouched. */
int config_load(const char *path, config_t **ret, char *err, size_t err_len);

/* Same as config_load(), from a NUL-terminated string; messages name the
 * origin "(string)". */
int config_parse_string(const char *text, config_t **ret, char *err, size_t err_len);

/* Frees the config and sets *self to NULL. Accepts NULL and *self == NULL. */
void config_destroy(config_t **self);

const char *config_city(const config_t *config);
const char *config_timezone(const config_t *config);

typedef enum config_security {
    CONFIG_SECURITY_CURVE, /* CURVE on every endpoint, keys from config_keys_dir() */
    CONFIG_SECURITY_PLAIN, /* plain ZMTP, loopback only */
} config_security_t;
config_security_t config_security(const config_t *config);
/* Directory of the city's certificates (common/auth.h); never NULL. */
const char *config_keys_dir(const config_t *config);

/* Workers and districts in file order; i must be < the count. */
size_t config_worker_count(const config_t *config);
const config_worker_t *config_worker_at(const config_t *config, size_t i);
/* NULL when there is no worker of that name. */
const config_worker_t *config_worker_find(const config_t *config, const char *name);

size_t config_district_count(const config_t *config);
const config_district_t *config_district_at(const config_t *config, size_t i);
/* NULL when there is no district with that id. */
const config_district_t *config_district_find(const config_t *config, const char *id);

/* Overrides one value, as the command line's --set does. `key` is
 * "city.name", "city.timezone", "district.<id>.name" or
 * "worker.<name>.<key>"; the section must exist in the file (-ENOENT if not).
 * The value is checked as if it were in the file, then the whole topology is
 * checked again; on any error (-EINVAL, -ENOMEM) the config is left as it
 * was. A successful set frees the value it replaces. */
int config_set(config_t *config, const char *key, const char *value, char *err, size_t err_len);

#endif
