/* Unit tests for common/auth: key files and their metadata, and the ZAP
 * handler on real sockets: a known key gets in with its actor as User-Id,
 * an unknown key gets no handshake, a key revoked at run time is gone from
 * the table within a second. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"

typedef struct fixture {
    char dir[64];
    void *zmq;
    auth_t *auth;
} fixture_t;

static auth_actor_t actor_of(const char *name, auth_kind_t kind, const char *roles,
                             const char *unit)
{
    auth_actor_t actor = {.kind = kind};
    snprintf(actor.name, sizeof(actor.name), "%s", name);
    snprintf(actor.unit, sizeof(actor.unit), "%s", unit ? unit : "");
    if (roles)
        assert_int_equal(auth_roles_parse(roles, &actor.roles), 0);
    return actor;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->zmq = zmq_ctx_new();
    auth_actor_t server = actor_of("intake-1", AUTH_KIND_WORKER, NULL, NULL);
    snprintf(server.worker, sizeof(server.worker), "intake-1");
    assert_int_equal(auth_key_new(f->dir, &server), 0);
    auth_actor_t alice = actor_of("alice", AUTH_KIND_PERSON, "operator,admin", NULL);
    assert_int_equal(auth_key_new(f->dir, &alice), 0);
    auth_actor_t unit = actor_of("cy-s01", AUTH_KIND_UNIT, "unit", "cy-s01");
    assert_int_equal(auth_key_new(f->dir, &unit), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    auth_destroy(&f->auth);
    zmq_ctx_term(f->zmq);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", f->dir);
    assert_int_equal(system(command), 0);
    free(f);
    return 0;
}

static void test_words(void **state)
{
    (void)state;
    unsigned roles = 0;
    assert_int_equal(auth_roles_parse("operator, admin", &roles), 0);
    assert_int_equal(roles, AUTH_ROLE_OPERATOR | AUTH_ROLE_ADMIN);
    assert_int_equal(auth_roles_parse("operator,root", &roles), -EINVAL);
    char text[64];
    auth_roles_format(AUTH_ROLE_DISPATCHER | AUTH_ROLE_AUDITOR, text, sizeof(text));
    assert_string_equal(text, "dispatcher,auditor");
    auth_kind_t kind;
    assert_int_equal(auth_kind_parse("unit-gateway", &kind), 0);
    assert_int_equal(kind, AUTH_KIND_UNIT_GATEWAY);
    assert_int_equal(auth_kind_parse("robot", &kind), -EINVAL);

    auth_actor_t unit = actor_of("cy-s01", AUTH_KIND_UNIT, "unit", "cy-s01");
    auth_actor_t gateway = actor_of("units", AUTH_KIND_UNIT_GATEWAY, "unit", NULL);
    auth_actor_t person = actor_of("bob", AUTH_KIND_PERSON, "dispatcher", NULL);
    assert_true(auth_actor_acts_for_unit(&unit, "cy-s01"));
    assert_false(auth_actor_acts_for_unit(&unit, "cy-s02"));
    assert_true(auth_actor_acts_for_unit(&gateway, "cy-s02"));
    assert_false(auth_actor_acts_for_unit(&person, "cy-s01"));
}

static void test_key_files(void **state)
{
    fixture_t *f = *state;
    auth_actor_t again = actor_of("alice", AUTH_KIND_PERSON, NULL, NULL);
    assert_int_equal(auth_key_new(f->dir, &again), -EEXIST);
    auth_actor_t bad = actor_of("../x", AUTH_KIND_PERSON, NULL, NULL);
    assert_int_equal(auth_key_new(f->dir, &bad), -EINVAL);
    auth_actor_t lost = actor_of("lost", AUTH_KIND_UNIT, "unit", NULL); /* no unit */
    assert_int_equal(auth_key_new(f->dir, &lost), -EINVAL);

    auth_actor_t *actors = NULL;
    size_t count = 0, skipped = 0;
    assert_int_equal(auth_keys_list(f->dir, &actors, &count, &skipped), 0);
    assert_int_equal(count, 3);
    assert_int_equal(skipped, 0);
    assert_string_equal(actors[0].name, "alice");
    assert_int_equal(actors[0].roles, AUTH_ROLE_OPERATOR | AUTH_ROLE_ADMIN);
    assert_string_equal(actors[1].name, "cy-s01");
    assert_string_equal(actors[1].unit, "cy-s01");
    assert_string_equal(actors[2].worker, "intake-1");
    free(actors);

    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/alice.key_secret", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    auth_keypair_t pair;
    uint8_t public_key[AUTH_KEY_BYTES];
    assert_int_equal(auth_keypair_load(f->dir, "alice", &pair), 0);
    assert_int_equal(auth_public_load(f->dir, "alice", public_key), 0);
    assert_memory_equal(pair.public_key, public_key, AUTH_KEY_BYTES);

    assert_int_equal(auth_key_revoke(f->dir, "alice"), 0);
    assert_int_equal(auth_key_revoke(f->dir, "alice"), -ENOENT);
    assert_int_equal(auth_public_load(f->dir, "alice", public_key), -ENOENT);
    assert_int_equal(auth_keys_list(f->dir, &actors, &count, NULL), 0);
    assert_int_equal(count, 2);
    free(actors);
}

/* A CURVE ROUTER with intake-1's key, and a DEALER of `actor` (its own key
 * pair) connected to it. */
static void *server_socket(fixture_t *f, char *url, size_t url_len)
{
    auth_keypair_t server;
    assert_int_equal(auth_keypair_load(f->dir, "intake-1", &server), 0);
    void *socket = zmq_socket(f->zmq, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(auth_curve_server(socket, &server), 0);
    assert_int_equal(zmq_bind(socket, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, url, &url_len), 0);
    return socket;
}

static void *client_socket(fixture_t *f, const auth_keypair_t *self, const char *url)
{
    uint8_t server_key[AUTH_KEY_BYTES];
    assert_int_equal(auth_public_load(f->dir, "intake-1", server_key), 0);
    void *socket = zmq_socket(f->zmq, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(auth_curve_client(socket, self, server_key), 0);
    assert_int_equal(zmq_connect(socket, url), 0);
    return socket;
}

/* Receives [routing id][body] within timeout_ms; false when nothing came. */
static bool receive(void *server, int timeout_ms, char *user_id, char *key)
{
    zmq_pollitem_t item = {.socket = server, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return false;
    zmq_msg_t peer, body;
    zmq_msg_init(&peer);
    zmq_msg_init(&body);
    assert_true(zmq_msg_recv(&peer, server, 0) >= 0);
    assert_true(zmq_msg_recv(&body, server, 0) >= 0);
    const char *value = zmq_msg_gets(&body, "User-Id");
    snprintf(user_id, 64, "%s", value ? value : "");
    value = zmq_msg_gets(&body, "X-Key");
    snprintf(key, AUTH_KEY_TEXT, "%s", value ? value : "");
    zmq_msg_close(&peer);
    zmq_msg_close(&body);
    return true;
}

static void test_known_key_gets_in_as_its_actor(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(auth_new(f->zmq, f->dir, "intake-1", &f->auth), 0);
    char url[256], user_id[64], key[AUTH_KEY_TEXT];
    void *server = server_socket(f, url, sizeof(url));
    auth_keypair_t alice;
    assert_int_equal(auth_keypair_load(f->dir, "alice", &alice), 0);
    void *client = client_socket(f, &alice, url);
    assert_int_equal(zmq_send(client, "hello", 5, 0), 5);
    assert_true(receive(server, 5000, user_id, key));
    assert_string_equal(user_id, "alice");
    auth_actor_t actor;
    assert_int_equal(auth_lookup(f->auth, key, &actor), 0);
    assert_string_equal(actor.name, "alice");
    assert_int_equal(actor.kind, AUTH_KIND_PERSON);
    assert_int_equal(actor.roles, AUTH_ROLE_OPERATOR | AUTH_ROLE_ADMIN);
    auth_refusal_t refusals[4];
    assert_int_equal(auth_take_refusals(f->auth, refusals, 4, NULL), 0);
    zmq_close(client);
    zmq_close(server);
}

/* Under systemd's DynamicUser= a worker cannot read its secret in the key
 * directory; LoadCredential= hands it over in $CREDENTIALS_DIRECTORY, where
 * the worker takes it from, and serves with it. */
static void test_secret_from_service_credentials(void **state)
{
    fixture_t *f = *state;
    char credentials[128], from[160], to[200];
    snprintf(credentials, sizeof(credentials), "%s/credentials", f->dir);
    assert_int_equal(mkdir(credentials, 0700), 0);
    snprintf(from, sizeof(from), "%s/intake-1.key_secret", f->dir);
    snprintf(to, sizeof(to), "%s/intake-1.key_secret", credentials);
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(auth_new(f->zmq, f->dir, "intake-1", &f->auth), -ENOENT);

    setenv("CREDENTIALS_DIRECTORY", credentials, 1);
    int rc = auth_new(f->zmq, f->dir, "intake-1", &f->auth);
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(rc, 0);
    char url[256], user_id[64], key[AUTH_KEY_TEXT];
    size_t url_len = sizeof(url);
    void *server = zmq_socket(f->zmq, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(server, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(auth_server_apply(f->auth, server), 0); /* the pair it was handed */
    assert_int_equal(zmq_bind(server, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, url, &url_len), 0);
    auth_keypair_t alice;
    assert_int_equal(auth_keypair_load(f->dir, "alice", &alice), 0);
    void *client = client_socket(f, &alice, url);
    assert_int_equal(zmq_send(client, "hello", 5, 0), 5);
    assert_true(receive(server, 5000, user_id, key));
    assert_string_equal(user_id, "alice");
    zmq_close(client);
    zmq_close(server);
}

static void test_unknown_key_gets_no_handshake(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(auth_new(f->zmq, f->dir, "intake-1", &f->auth), 0);
    char url[256], user_id[64], key[AUTH_KEY_TEXT];
    void *server = server_socket(f, url, sizeof(url));
    auth_keypair_t stranger;
    char public_txt[AUTH_KEY_TEXT], secret_txt[AUTH_KEY_TEXT];
    assert_int_equal(zmq_curve_keypair(public_txt, secret_txt), 0);
    zmq_z85_decode(stranger.public_key, public_txt);
    zmq_z85_decode(stranger.secret_key, secret_txt);
    void *client = client_socket(f, &stranger, url);
    zmq_send(client, "hello", 5, ZMQ_DONTWAIT);
    assert_false(receive(server, 500, user_id, key));
    auth_refusal_t refusals[4];
    assert_int_equal(auth_take_refusals(f->auth, refusals, 4, NULL), 1);
    assert_string_equal(refusals[0].mechanism, "CURVE");
    assert_string_equal(refusals[0].key, public_txt);
    assert_string_equal(refusals[0].address, "127.0.0.1");
    zmq_close(client);
    zmq_close(server);
}

static void test_no_handler_means_nobody(void **state)
{
    fixture_t *f = *state; /* no auth_new(): the server must not let anyone in */
    char url[256], user_id[64], key[AUTH_KEY_TEXT];
    void *server = server_socket(f, url, sizeof(url));
    auth_keypair_t alice;
    assert_int_equal(auth_keypair_load(f->dir, "alice", &alice), 0);
    void *client = client_socket(f, &alice, url);
    zmq_send(client, "hello", 5, ZMQ_DONTWAIT);
    assert_false(receive(server, 500, user_id, key));
    zmq_close(client);
    zmq_close(server);
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void test_revoked_key_is_gone_within_a_second(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(auth_new(f->zmq, f->dir, "intake-1", &f->auth), 0);
    char url[256], user_id[64], key[AUTH_KEY_TEXT];
    void *server = server_socket(f, url, sizeof(url));
    auth_keypair_t unit;
    assert_int_equal(auth_keypair_load(f->dir, "cy-s01", &unit), 0);
    void *client = client_socket(f, &unit, url);
    zmq_send(client, "hello", 5, 0);
    assert_true(receive(server, 5000, user_id, key));
    assert_string_equal(user_id, "cy-s01");

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(auth_key_revoke(f->dir, "cy-s01"), 0);
    auth_actor_t actor;
    /* Each reload is an event: wait on them until one no longer has it. */
    for (uint64_t seen = auth_generation(f->auth);
         auth_lookup(f->auth, key, &actor) == 0 && elapsed_ms(&start) < 2000;
         seen = auth_generation(f->auth))
        auth_wait_reload(f->auth, seen, 2000);
    assert_int_equal(auth_lookup(f->auth, key, &actor), -ENOENT);
    assert_true(elapsed_ms(&start) < 1000);

    /* A new connection with the key gets no handshake. */
    void *again = client_socket(f, &unit, url);
    zmq_send(again, "hello", 5, ZMQ_DONTWAIT);
    assert_false(receive(server, 500, user_id, key));

    /* A key added at run time works without a restart. */
    auth_actor_t carol = actor_of("carol", AUTH_KIND_PERSON, "dispatcher", NULL);
    assert_int_equal(auth_key_new(f->dir, &carol), 0);
    auth_keypair_t pair;
    assert_int_equal(auth_keypair_load(f->dir, "carol", &pair), 0);
    char carol_key[AUTH_KEY_TEXT];
    zmq_z85_encode(carol_key, pair.public_key, AUTH_KEY_BYTES);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (uint64_t seen = auth_generation(f->auth);
         auth_lookup(f->auth, carol_key, &actor) != 0 && elapsed_ms(&start) < 2000;
         seen = auth_generation(f->auth))
        auth_wait_reload(f->auth, seen, 2000);
    assert_int_equal(auth_lookup(f->auth, carol_key, &actor), 0);
    void *newcomer = client_socket(f, &pair, url);
    zmq_send(newcomer, "hello", 5, 0);
    assert_true(receive(server, 5000, user_id, key));
    assert_string_equal(user_id, "carol");
    zmq_close(newcomer);
    zmq_close(again);
    zmq_close(client);
    zmq_close(server);
}

/* czmq's certificate code must not take over the worker's signals. */
/* A key suspended again soon after is suspended twice as long, up to the
 * bound; another key starts short. */
static void test_suspensions_double_up_to_the_bound(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(auth_new(f->zmq, f->dir, "intake-1", &f->auth), 0);
    int expected = AUTH_SUSPEND_MIN_MS;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(auth_suspend(f->auth, "key-a"), expected);
        expected = expected * 2 < AUTH_SUSPEND_MAX_MS ? expected * 2 : AUTH_SUSPEND_MAX_MS;
    }
    assert_int_equal(expected, AUTH_SUSPEND_MAX_MS);
    assert_int_equal(auth_suspend(f->auth, "key-b"), AUTH_SUSPEND_MIN_MS);
}

static void test_signals_stay_ours(void **state)
{
    fixture_t *f = *state;
    auth_keypair_t pair;
    assert_int_equal(auth_keypair_load(f->dir, "alice", &pair), 0);
    struct sigaction action;
    sigaction(SIGINT, NULL, &action);
    assert_ptr_equal(action.sa_handler, SIG_DFL);
    sigaction(SIGTERM, NULL, &action);
    assert_ptr_equal(action.sa_handler, SIG_DFL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_key_gets_in_as_its_actor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_from_service_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_gets_no_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_handler_means_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_key_is_gone_within_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspensions_double_up_to_the_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signals_stay_ours, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
