#include "auth.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"

/* A draft option of libzmq 4.3; builds without the draft API still take it. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define PUBLIC_SUFFIX ".key"
#define SECRET_SUFFIX ".key_secret"

/* ---- words --------------------------------------------------------------- */

static const char *const role_words[] = {
    "operator", "dispatcher", "supervisor", "leader", "unit", "admin", "auditor",
};
#define ROLE_COUNT (sizeof(role_words) / sizeof(role_words[0]))

static const char *const kind_words[] = {
    [AUTH_KIND_WORKER] = "worker",
    [AUTH_KIND_UNIT] = "unit",
    [AUTH_KIND_UNIT_GATEWAY] = "unit-gateway",
    [AUTH_KIND_PERSON] = "person",
    [AUTH_KIND_GATEWAY] = "gateway",
};
#define KIND_COUNT (sizeof(kind_words) / sizeof(kind_words[0]))

int auth_roles_parse(const char *list, unsigned *ret)
{
    unsigned roles = 0;
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t length = end ? (size_t)(end - p) : strlen(p);
        while (length > 0 && *p == ' ') {
            p++;
            length--;
        }
        while (length > 0 && p[length - 1] == ' ')
            length--;
        bool known = false;
        for (size_t i = 0; i < ROLE_COUNT && !known; i++)
            if (strlen(role_words[i]) == length && strncmp(p, role_words[i], length) == 0) {
                roles |= 1u << i;
                known = true;
            }
        if (!known && length > 0)
            return -EINVAL;
        p = end ? end + 1 : NULL;
    }
    *ret = roles;
    return 0;
}

const char *auth_role_name(unsigned role)
{
    for (size_t i = 0; i < ROLE_COUNT; i++)
        if (role == 1u << i)
            return role_words[i];
    return NULL;
}

void auth_roles_format(unsigned roles, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < ROLE_COUNT; i++) {
        if (!(roles & (1u << i)))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", role_words[i]);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

int auth_kind_parse(const char *word, auth_kind_t *ret)
{
    for (size_t i = 0; word && i < KIND_COUNT; i++)
        if (strcmp(word, kind_words[i]) == 0) {
            *ret = (auth_kind_t)i;
            return 0;
        }
    return -EINVAL;
}

const char *auth_kind_name(auth_kind_t kind)
{
    return (size_t)kind < KIND_COUNT ? kind_words[kind] : "?";
}

bool auth_actor_acts_for_unit(const auth_actor_t *actor, const char *unit_id)
{
    switch (actor->kind) {
    case AUTH_KIND_UNIT_GATEWAY:
        return true;
    case AUTH_KIND_UNIT:
        return unit_id && strcmp(actor->unit, unit_id) == 0;
    case AUTH_KIND_WORKER:
    case AUTH_KIND_PERSON:
    case AUTH_KIND_GATEWAY:
        return false;
    }
    return false;
}

/* ---- key files ----------------------------------------------------------- */

static bool name_is_valid(const char *name)
{
    size_t length = name ? strlen(name) : 0;
    if (length == 0 || length > AUTH_NAME_MAX || name[0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

static int key_path(const char *dir, const char *name, const char *suffix, char *buf, size_t len)
{
    if (!name_is_valid(name))
        return -EINVAL;
    int n = snprintf(buf, len, "%s/%s%s", dir, name, suffix);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* The actor a certificate describes; -EINVAL when its metadata is not one. */
static int actor_of_cert(zcert_t *cert, auth_actor_t *ret)
{
    auth_actor_t actor = {0};
    const char *name = zcert_meta(cert, "actor");
    if (!name_is_valid(name) || auth_kind_parse(zcert_meta(cert, "kind"), &actor.kind) < 0)
        return -EINVAL;
    const char *roles = zcert_meta(cert, "roles");
    if (roles && auth_roles_parse(roles, &actor.roles) < 0)
        return -EINVAL;
    copy_text(actor.name, sizeof(actor.name), name);
    copy_text(actor.unit, sizeof(actor.unit), zcert_meta(cert, "unit"));
    copy_text(actor.worker, sizeof(actor.worker), zcert_meta(cert, "worker"));
    if (actor.kind == AUTH_KIND_UNIT && actor.unit[0] == '\0')
        return -EINVAL;
    copy_text(actor.key, sizeof(actor.key), zcert_public_txt(cert));
    *ret = actor;
    return 0;
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

/* zcert_save_*() writes in place; a rename makes the new file appear at
 * once and moves the directory's mtime, which the handler watches. */
static int save_renamed(zcert_t *cert, const char *path, bool secret)
{
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int n = snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp", (int)(slash - path + 1), path, slash + 1);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    mode_t old = umask(secret ? 077 : 022);
    int rc = secret ? zcert_save_secret(cert, tmp) : zcert_save_public(cert, tmp);
    umask(old);
    if (rc != 0)
        return -EIO;
    if (secret && chmod(tmp, 0600) < 0)
        return -errno;
    return rename(tmp, path) == 0 ? 0 : -errno;
}

int auth_key_new(const char *dir, const auth_actor_t *actor)
{
    char public_path[PATH_MAX], secret_path[PATH_MAX];
    int rc = key_path(dir, actor->name, PUBLIC_SUFFIX, public_path, sizeof(public_path));
    if (rc == 0)
        rc = key_path(dir, actor->name, SECRET_SUFFIX, secret_path, sizeof(secret_path));
    if (rc < 0)
        return rc;
    if (actor->kind == AUTH_KIND_UNIT && !name_is_valid(actor->unit))
        return -EINVAL;
    rc = ensure_dir(dir);
    if (rc < 0)
        return rc;
    if (access(public_path, F_OK) == 0)
        return -EEXIST;
    zcert_t *cert = zcert_new();
    if (!cert)
        return -ENOMEM;
    char roles[128];
    auth_roles_format(actor->roles, roles, sizeof(roles));
    zcert_set_meta(cert, "actor", "%s", actor->name);
    zcert_set_meta(cert, "kind", "%s", auth_kind_name(actor->kind));
    if (roles[0])
        zcert_set_meta(cert, "roles", "%s", roles);
    if (actor->unit[0])
        zcert_set_meta(cert, "unit", "%s", actor->unit);
    if (actor->worker[0])
        zcert_set_meta(cert, "worker", "%s", actor->worker);
    /* Secret first: a public key whose secret is missing is of no use. */
    rc = save_renamed(cert, secret_path, true);
    if (rc == 0)
        rc = save_renamed(cert, public_path, false);
    zcert_destroy(&cert);
    return rc;
}

int auth_key_revoke(const char *dir, const char *name)
{
    char path[PATH_MAX];
    int rc = key_path(dir, name, PUBLIC_SUFFIX, path, sizeof(path));
    if (rc < 0)
        return rc;
    return unlink(path) == 0 ? 0 : -errno;
}

int auth_keypair_load_file(const char *path, auth_keypair_t *ret)
{
    if (access(path, R_OK) < 0)
        return -errno;
    zcert_t *cert = zcert_load(path);
    if (!cert)
        return -EINVAL;
    memcpy(ret->public_key, zcert_public_key(cert), AUTH_KEY_BYTES);
    memcpy(ret->secret_key, zcert_secret_key(cert), AUTH_KEY_BYTES);
    zcert_destroy(&cert);
    return 0;
}

int auth_actor_load_file(const char *path, auth_actor_t *ret)
{
    if (access(path, R_OK) < 0)
        return -errno;
    zcert_t *cert = zcert_load(path);
    if (!cert)
        return -EINVAL;
    int rc = actor_of_cert(cert, ret);
    zcert_destroy(&cert);
    return rc;
}

int auth_keypair_load(const char *dir, const char *name, auth_keypair_t *ret)
{
    char path[PATH_MAX];
    int rc = key_path(dir, name, SECRET_SUFFIX, path, sizeof(path));
    if (rc < 0)
        return rc;
    rc = auth_keypair_load_file(path, ret);
    if (rc < 0)
        return rc;
    static const uint8_t zero[AUTH_KEY_BYTES];
    return memcmp(ret->secret_key, zero, AUTH_KEY_BYTES) == 0 ? -EINVAL : 0;
}

int auth_public_load(const char *dir, const char *name, uint8_t ret[AUTH_KEY_BYTES])
{
    char path[PATH_MAX];
    int rc = key_path(dir, name, PUBLIC_SUFFIX, path, sizeof(path));
    if (rc < 0)
        return rc;
    auth_keypair_t pair;
    rc = auth_keypair_load_file(path, &pair);
    if (rc == 0)
        memcpy(ret, pair.public_key, AUTH_KEY_BYTES);
    return rc;
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcmp(name + n - s, suffix) == 0;
}

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const auth_actor_t *)a)->name, ((const auth_actor_t *)b)->name);
}

static int compare_by_key(const void *a, const void *b)
{
    return strcmp(((const auth_actor_t *)a)->key, ((const auth_actor_t *)b)->key);
}

/* Reads every <name>.key of dir whose metadata names that actor. */
static int scan_dir(const char *dir, auth_actor_t **ret, size_t *count, size_t *skipped)
{
    *ret = NULL;
    *count = 0;
    if (skipped)
        *skipped = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    auth_actor_t *actors = NULL;
    size_t n = 0, capacity = 0;
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.' || !has_suffix(entry->d_name, PUBLIC_SUFFIX))
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name) >= (int)sizeof(path))
            continue;
        /* zcert_load() prefers <path>_secret when it exists; both carry the
         * same metadata, and the public file existing is what counts. */
        zcert_t *cert = zcert_load(path);
        auth_actor_t actor;
        size_t stem = strlen(entry->d_name) - strlen(PUBLIC_SUFFIX);
        bool ok = cert && actor_of_cert(cert, &actor) == 0 && strlen(actor.name) == stem &&
                  strncmp(actor.name, entry->d_name, stem) == 0;
        zcert_destroy(&cert);
        if (!ok) {
            if (skipped)
                (*skipped)++;
            continue;
        }
        if (n == capacity) {
            size_t grown = capacity ? capacity * 2 : 64;
            auth_actor_t *more = realloc(actors, grown * sizeof(*actors));
            if (!more) {
                rc = -ENOMEM;
                break;
            }
            actors = more;
            capacity = grown;
        }
        actors[n++] = actor;
    }
    closedir(d);
    if (rc < 0) {
        free(actors);
        return rc;
    }
    *ret = actors;
    *count = n;
    return 0;
}

int auth_keys_list(const char *dir, auth_actor_t **ret, size_t *count, size_t *skipped)
{
    int rc = scan_dir(dir, ret, count, skipped);
    if (rc == 0 && *count > 1)
        qsort(*ret, *count, sizeof(**ret), compare_by_name);
    return rc;
}

/* ---- socket options ------------------------------------------------------ */

static int set_option(void *socket, int option, const void *value, size_t size)
{
    return zmq_setsockopt(socket, option, value, size) == 0 ? 0 : -errno;
}

int auth_curve_server(void *socket, const auth_keypair_t *self)
{
    int on = 1;
    int rc = set_option(socket, ZMQ_CURVE_SERVER, &on, sizeof(on));
    if (rc == 0)
        rc = set_option(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, AUTH_KEY_BYTES);
    /* A domain makes libzmq ask the ZAP handler; enforcing it refuses
     * everyone when there is none, instead of letting everyone in. */
    if (rc == 0)
        rc = set_option(socket, ZMQ_ZAP_DOMAIN, "dispatch", strlen("dispatch"));
    if (rc == 0)
        rc = set_option(socket, ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof(on));
    return rc;
}

int auth_curve_client(void *socket, const auth_keypair_t *self,
                      const uint8_t server_key[AUTH_KEY_BYTES])
{
    int rc = set_option(socket, ZMQ_CURVE_SERVERKEY, server_key, AUTH_KEY_BYTES);
    if (rc == 0)
        rc = set_option(socket, ZMQ_CURVE_PUBLICKEY, self->public_key, AUTH_KEY_BYTES);
    if (rc == 0)
        rc = set_option(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, AUTH_KEY_BYTES);
    return rc;
}

int auth_client_load(const char *dir, const char *actor, const char *server, auth_client_t *ret)
{
    int rc = auth_keypair_load(dir, actor, &ret->self);
    return rc < 0 ? rc : auth_public_load(dir, server, ret->server_key);
}

int auth_client_apply(void *socket, const auth_client_t *client)
{
    return client ? auth_curve_client(socket, &client->self, client->server_key) : 0;
}

/* ---- the ZAP handler ----------------------------------------------------- */

struct auth {
    void *zap; /* REP on ZAP_ENDPOINT; used by the thread only once started */
    char *dir;
    auth_keypair_t server;
    bool has_server;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    struct timespec dir_mtime;
    bool dir_seen;

    pthread_mutex_t lock;    /* guards what follows */
    pthread_cond_t reloaded; /* broadcast when a table is installed */
    uint64_t generation;     /* tables installed so far */
    uint64_t revocations;    /* tables that dropped a key of the one before */
    auth_actor_t *actors;    /* sorted by key */
    size_t actor_count;
    auth_refusal_t refusals[AUTH_REFUSALS_MAX];
    size_t refusal_first, refusal_count;
    uint64_t refusals_dropped;
    struct suspension {
        char key[AUTH_KEY_TEXT]; /* "": a free entry */
        int64_t since, until;    /* CLOCK_MONOTONIC ms */
    } suspended[AUTH_SUSPENDED_MAX];
    uint64_t suspended_refusals;
};

/* Whether a key of old (sorted by key) is not in new (sorted too). */
static bool dropped_any(const auth_actor_t *old, size_t old_count, const auth_actor_t *new,
                        size_t new_count)
{
    size_t j = 0;
    for (size_t i = 0; i < old_count; i++) {
        while (j < new_count && strcmp(new[j].key, old[i].key) < 0)
            j++;
        if (j == new_count || strcmp(new[j].key, old[i].key) != 0)
            return true;
    }
    return false;
}

/* Reloads the table when the directory's mtime moved (or on first call).
 * A file system with coarse timestamps may give a change made just after a
 * scan the mtime the scan saw: while the mtime is within the last two
 * seconds the directory is read again every round. */
static void auth_reload(auth_t *self)
{
    struct stat st;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    bool exists = stat(self->dir, &st) == 0;
    bool recent = exists && st.st_mtim.tv_sec >= now.tv_sec - 2;
    if (exists && self->dir_seen && !recent && st.st_mtim.tv_sec == self->dir_mtime.tv_sec &&
        st.st_mtim.tv_nsec == self->dir_mtime.tv_nsec)
        return;
    if (!exists && self->dir_seen && self->actor_count == 0)
        return;
    auth_actor_t *actors = NULL;
    size_t count = 0;
    if (exists && scan_dir(self->dir, &actors, &count, NULL) < 0)
        return; /* keep the old table; try again next round */
    if (count > 1)
        qsort(actors, count, sizeof(*actors), compare_by_key);
    pthread_mutex_lock(&self->lock);
    if (dropped_any(self->actors, self->actor_count, actors, count))
        self->revocations++;
    free(self->actors);
    self->actors = actors;
    self->actor_count = count;
    self->generation++;
    pthread_cond_broadcast(&self->reloaded);
    pthread_mutex_unlock(&self->lock);
    self->dir_seen = true;
    if (exists)
        self->dir_mtime = st.st_mtim;
}

uint64_t auth_generation(auth_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t generation = self->generation;
    pthread_mutex_unlock(&self->lock);
    return generation;
}

uint64_t auth_revocations(auth_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t revocations = self->revocations;
    pthread_mutex_unlock(&self->lock);
    return revocations;
}

int auth_wait_reload(auth_t *self, uint64_t seen, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    while (self->generation == seen && rc == 0)
        rc = pthread_cond_timedwait(&self->reloaded, &self->lock, &deadline);
    bool moved = self->generation != seen;
    pthread_mutex_unlock(&self->lock);
    return moved ? 0 : -ETIMEDOUT;
}

int auth_lookup(auth_t *self, const char *key, auth_actor_t *ret)
{
    auth_actor_t probe;
    copy_text(probe.key, sizeof(probe.key), key);
    pthread_mutex_lock(&self->lock);
    const auth_actor_t *found = self->actor_count ? bsearch(&probe, self->actors, self->actor_count,
                                                            sizeof(probe), compare_by_key)
                                                  : NULL;
    if (found)
        *ret = *found;
    pthread_mutex_unlock(&self->lock);
    return found ? 0 : -ENOENT;
}

int auth_suspend(auth_t *self, const char *key)
{
    int64_t now = clock_monotonic_ms();
    pthread_mutex_lock(&self->lock);
    struct suspension *entry = NULL, *free_entry = NULL;
    for (size_t i = 0; i < AUTH_SUSPENDED_MAX; i++) {
        struct suspension *s = &self->suspended[i];
        if (s->key[0] && s->until + AUTH_SUSPEND_MEMORY_MS < now)
            s->key[0] = '\0'; /* forgotten: the next one starts short again */
        if (s->key[0] && strcmp(s->key, key) == 0)
            entry = s;
        else if (!s->key[0] && !free_entry)
            free_entry = s;
    }
    int64_t length = AUTH_SUSPEND_MIN_MS;
    if (entry) {
        int64_t last = entry->until - entry->since;
        length = last * 2 < AUTH_SUSPEND_MAX_MS ? last * 2 : AUTH_SUSPEND_MAX_MS;
    } else if ((entry = free_entry)) {
        copy_text(entry->key, sizeof(entry->key), key);
    }
    if (entry) {
        entry->since = now;
        entry->until = now + length;
    }
    pthread_mutex_unlock(&self->lock);
    return entry ? (int)length : 0;
}

uint64_t auth_suspended_refusals(auth_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->suspended_refusals;
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* Whether key is suspended now; counts the refusal when it is. */
static bool suspended_now(auth_t *self, const char *key)
{
    int64_t now = clock_monotonic_ms();
    bool suspended = false;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < AUTH_SUSPENDED_MAX && !suspended; i++)
        suspended = self->suspended[i].key[0] && self->suspended[i].until > now &&
                    strcmp(self->suspended[i].key, key) == 0;
    self->suspended_refusals += suspended;
    pthread_mutex_unlock(&self->lock);
    return suspended;
}

static void note_refusal(auth_t *self, const char *address, const char *mechanism, const char *key)
{
    pthread_mutex_lock(&self->lock);
    if (self->refusal_count == AUTH_REFUSALS_MAX) {
        self->refusal_first = (self->refusal_first + 1) % AUTH_REFUSALS_MAX;
        self->refusal_count--;
        self->refusals_dropped++;
    }
    auth_refusal_t *r =
        &self->refusals[(self->refusal_first + self->refusal_count) % AUTH_REFUSALS_MAX];
    copy_text(r->address, sizeof(r->address), address);
    copy_text(r->mechanism, sizeof(r->mechanism), mechanism);
    copy_text(r->key, sizeof(r->key), key);
    self->refusal_count++;
    pthread_mutex_unlock(&self->lock);
}

size_t auth_take_refusals(auth_t *self, auth_refusal_t *out, size_t capacity, uint64_t *dropped)
{
    pthread_mutex_lock(&self->lock);
    size_t n = 0;
    while (n < capacity && self->refusal_count > 0) {
        out[n++] = self->refusals[self->refusal_first];
        self->refusal_first = (self->refusal_first + 1) % AUTH_REFUSALS_MAX;
        self->refusal_count--;
    }
    if (dropped)
        *dropped = self->refusals_dropped;
    self->refusals_dropped = 0;
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* ZAP request frames (RFC 27): version, request id, domain, address,
 * identity, mechanism, credentials... */
#define ZAP_FRAMES_MAX 8

static size_t frame_text(zmq_msg_t *frame, char *buf, size_t len)
{
    size_t n = zmq_msg_size(frame) < len - 1 ? zmq_msg_size(frame) : len - 1;
    memcpy(buf, zmq_msg_data(frame), n);
    buf[n] = '\0';
    return n;
}

/* ZMTP metadata: name length (1 byte), name, value length (4 bytes, network
 * order), value. */
static size_t metadata_put(uint8_t *out, const char *name, const char *value)
{
    size_t name_length = strlen(name), value_length = strlen(value);
    out[0] = (uint8_t)name_length;
    memcpy(out + 1, name, name_length);
    uint8_t *v = out + 1 + name_length;
    v[0] = (uint8_t)(value_length >> 24);
    v[1] = (uint8_t)(value_length >> 16);
    v[2] = (uint8_t)(value_length >> 8);
    v[3] = (uint8_t)value_length;
    memcpy(v + 4, value, value_length);
    return 1 + name_length + 4 + value_length;
}

static void zap_answer(auth_t *self)
{
    zmq_msg_t frames[ZAP_FRAMES_MAX];
    size_t n = 0;
    bool more = true;
    while (more && n < ZAP_FRAMES_MAX) {
        zmq_msg_init(&frames[n]);
        if (zmq_msg_recv(&frames[n], self->zap, 0) < 0) {
            zmq_msg_close(&frames[n]);
            break;
        }
        more = zmq_msg_more(&frames[n]);
        n++;
    }
    while (more) { /* more frames than any mechanism sends: drop the rest */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        more = zmq_msg_recv(&extra, self->zap, 0) >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
    }
    if (n < 6) { /* not a ZAP request; REP needs an answer anyway */
        zmq_send(self->zap, "", 0, 0);
        goto done;
    }
    char address[64], mechanism[16], key[AUTH_KEY_TEXT] = "";
    frame_text(&frames[3], address, sizeof(address));
    frame_text(&frames[5], mechanism, sizeof(mechanism));
    auth_actor_t actor;
    bool accepted = false, suspended = false;
    if (strcmp(mechanism, "CURVE") == 0 && n >= 7 && zmq_msg_size(&frames[6]) == AUTH_KEY_BYTES) {
        zmq_z85_encode(key, zmq_msg_data(&frames[6]), AUTH_KEY_BYTES);
        suspended = suspended_now(self, key);
        accepted = !suspended && auth_lookup(self, key, &actor) == 0;
    }
    if (!accepted && !suspended)
        note_refusal(self, address, mechanism, key);
    uint8_t metadata[256];
    size_t metadata_length = accepted ? metadata_put(metadata, "X-Key", key) : 0;
    zmq_send(self->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(self->zap, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), ZMQ_SNDMORE);
    zmq_send(self->zap, accepted ? "200" : "400", 3, ZMQ_SNDMORE);
    const char *status = accepted ? "OK" : suspended ? "suspended" : "unknown key";
    zmq_send(self->zap, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(self->zap, accepted ? actor.name : "", accepted ? strlen(actor.name) : 0, ZMQ_SNDMORE);
    zmq_send(self->zap, metadata, metadata_length, 0);
done:
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}

static void *auth_thread(void *arg)
{
    auth_t *self = arg;
    while (!atomic_load(&self->stop)) {
        zmq_pollitem_t item = {.socket = self->zap, .events = ZMQ_POLLIN};
        int ready = zmq_poll(&item, 1, AUTH_RESCAN_MS / 2);
        auth_reload(self);
        if (ready > 0 && (item.revents & ZMQ_POLLIN))
            zap_answer(self);
        if (ready < 0 && errno == ETERM)
            break;
    }
    return NULL;
}

/* The server's own pair: from the service manager's credentials when it
 * passed one (systemd LoadCredential=<server>.key_secret:..., so a worker
 * under DynamicUser= reads a secret only root may read), else from dir. */
static int server_keypair_load(const char *dir, const char *server, auth_keypair_t *ret)
{
    const char *credentials = getenv("CREDENTIALS_DIRECTORY");
    if (credentials && *credentials) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s/%s%s", credentials, server, SECRET_SUFFIX);
        if (n > 0 && (size_t)n < sizeof(path) && access(path, R_OK) == 0)
            return auth_keypair_load_file(path, ret);
    }
    return auth_keypair_load(dir, server, ret);
}

int auth_new(void *zmq_context, const char *dir, const char *server, auth_t **ret)
{
    auth_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->reloaded, NULL);
    self->dir = strdup(dir);
    int rc = self->dir ? 0 : -ENOMEM;
    if (rc == 0 && server) {
        rc = server_keypair_load(dir, server, &self->server);
        self->has_server = rc == 0;
    }
    if (rc == 0) {
        self->zap = zmq_socket(zmq_context, ZMQ_REP);
        rc = self->zap ? 0 : -errno;
    }
    int linger = 0;
    if (rc == 0)
        rc = set_option(self->zap, ZMQ_LINGER, &linger, sizeof(linger));
    if (rc == 0 && zmq_bind(self->zap, ZAP_ENDPOINT) < 0)
        rc = -errno;
    if (rc == 0) {
        auth_reload(self);
        rc = -pthread_create(&self->thread, NULL, auth_thread, self);
        self->thread_started = rc == 0;
    }
    if (rc < 0) {
        auth_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

int auth_server_apply(auth_t *self, void *socket)
{
    return self->has_server ? auth_curve_server(socket, &self->server) : -ENOKEY;
}

int auth_peer_keys(auth_t *self, const char *server, auth_client_t *ret)
{
    if (!self->has_server)
        return -ENOKEY;
    ret->self = self->server;
    return auth_public_load(self->dir, server, ret->server_key);
}

void auth_destroy(auth_t **self_p)
{
    auth_t *self = *self_p;
    if (!self)
        return;
    atomic_store(&self->stop, true);
    if (self->thread_started)
        pthread_join(self->thread, NULL);
    if (self->zap)
        zmq_close(self->zap);
    free(self->actors);
    free(self->dir);
    pthread_cond_destroy(&self->reloaded);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}
