#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "store.h"

typedef struct fixture {
    char dir[512];
    store_t *store;
    MDB_dbi dbi;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(harness_tmpdir("store", f->dir, sizeof(f->dir)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_destroy(&f->store);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

typedef struct fill {
    MDB_dbi dbi;
    uint64_t first, count;
    size_t value_size;
    int calls;
    int fail_with; /* returned instead of committing */
} fill_t;

static int fill_fn(MDB_txn *txn, void *ctx)
{
    fill_t *fill = ctx;
    fill->calls++;
    char *value = calloc(1, fill->value_size);
    int rc = 0;
    for (uint64_t i = fill->first; i < fill->first + fill->count && rc == 0; i++) {
        unsigned char key[8];
        store_u64_encode(i, key);
        memset(value, (int)(i & 0xff), fill->value_size);
        MDB_val k = {8, key}, v = {fill->value_size, value};
        rc = store_rc(mdb_put(txn, fill->dbi, &k, &v, 0));
    }
    free(value);
    return rc == 0 ? fill->fail_with : rc;
}

static uint64_t count_entries(store_t *store, MDB_dbi dbi)
{
    MDB_txn *txn;
    assert_int_equal(store_read_begin(store, &txn), 0);
    MDB_stat st;
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    store_read_end(&txn);
    return st.ms_entries;
}

static void test_open_write_read(void **state)
{
    fixture_t *f = *state;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/nested/env", f->dir); /* parents are created */
    assert_int_equal(store_open(dir, NULL, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    fill_t fill = {.dbi = f->dbi, .first = 1, .count = 100, .value_size = 16};
    assert_int_equal(store_write(f->store, fill_fn, &fill), 0);
    assert_int_equal(fill.calls, 1);
    assert_int_equal(store_commits(f->store), 1);
    assert_int_equal(count_entries(f->store, f->dbi), 100);

    /* Reopen: the data is there. */
    store_destroy(&f->store);
    assert_null(f->store);
    assert_int_equal(store_open(dir, NULL, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    assert_int_equal(count_entries(f->store, f->dbi), 100);
}

static void test_failed_batch_leaves_nothing(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    fill_t fill = {.dbi = f->dbi, .first = 1, .count = 10, .value_size = 8, .fail_with = -EIO};
    assert_int_equal(store_write(f->store, fill_fn, &fill), -EIO);
    assert_int_equal(count_entries(f->store, f->dbi), 0);
    assert_int_equal(store_commits(f->store), 0);
}

static void test_map_full_grows_and_retries(void **state)
{
    fixture_t *f = *state;
    store_options_t options = {.map_size = 1 << 20}; /* 1 MiB */
    assert_int_equal(store_open(f->dir, &options, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    /* 8 MiB in one batch does not fit: the batch must run again, grown. */
    fill_t fill = {.dbi = f->dbi, .first = 1, .count = 2048, .value_size = 4096};
    assert_int_equal(store_write(f->store, fill_fn, &fill), 0);
    assert_true(fill.calls > 1);
    assert_true(store_map_size(f->store) >= 8u << 20);
    assert_int_equal(count_entries(f->store, f->dbi), 2048);

    /* Reopened with the small size asked for, the map still holds all the
     * data (LMDB raises it to the used size) and grows again as needed. */
    store_destroy(&f->store);
    assert_int_equal(store_open(f->dir, &options, &f->store), 0);
    assert_true(store_map_size(f->store) >= 8u << 20);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    fill_t more = {.dbi = f->dbi, .first = 5000, .count = 2048, .value_size = 4096};
    assert_int_equal(store_write(f->store, fill_fn, &more), 0);
    assert_int_equal(count_entries(f->store, f->dbi), 4096);
}

static void test_map_limit_is_a_clean_error(void **state)
{
    fixture_t *f = *state;
    store_options_t options = {.map_size = 1 << 20, .max_map_size = 2 << 20};
    assert_int_equal(store_open(f->dir, &options, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    fill_t small = {.dbi = f->dbi, .first = 1, .count = 10, .value_size = 100};
    assert_int_equal(store_write(f->store, fill_fn, &small), 0);
    fill_t big = {.dbi = f->dbi, .first = 100, .count = 1024, .value_size = 4096};
    int rc = store_write(f->store, fill_fn, &big);
    assert_int_equal(rc, MDB_MAP_FULL);
    assert_string_equal(store_strerror(rc), mdb_strerror(MDB_MAP_FULL));
    /* What was committed before is intact, the failed batch left nothing. */
    assert_int_equal(count_entries(f->store, f->dbi), 10);
    assert_string_equal(store_strerror(-ENOSPC), strerror(ENOSPC));
}

static void test_stale_reader_is_cleared(void **state)
{
    fixture_t *f = *state;
    /* A live process keeps the environment open, so the reader table is
     * not reset when the next one opens it. */
    int hold[2], opened[2];
    char byte;
    assert_int_equal(pipe(hold), 0);
    assert_int_equal(pipe(opened), 0);
    pid_t holder = fork();
    if (holder == 0) {
        store_t *store;
        close(hold[1]);
        if (store_open(f->dir, NULL, &store) < 0)
            _exit(1);
        if (write(opened[1], "o", 1) != 1 || read(hold[0], &byte, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(hold[0]);
    close(opened[1]);
    assert_int_equal(read(opened[0], &byte, 1), 1); /* the holder has it open */
    close(opened[0]);
    pid_t reader = fork();
    if (reader == 0) {
        /* Dies holding a read transaction: its reader slot stays taken. */
        store_t *store;
        MDB_txn *txn;
        if (store_open(f->dir, NULL, &store) == 0 && store_read_begin(store, &txn) == 0)
            _exit(0);
        _exit(1);
    }
    int status;
    assert_int_equal(waitpid(reader, &status, 0), reader);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(store_stale_readers(f->store), 1);
    int dead = -1;
    assert_int_equal(mdb_reader_check(store_env(f->store), &dead), 0);
    assert_int_equal(dead, 0);
    close(hold[1]);
    assert_int_equal(waitpid(holder, &status, 0), holder);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_u64_helpers(void **state)
{
    fixture_t *f = *state;
    unsigned char bytes[8];
    store_u64_encode(0x0102030405060708ULL, bytes);
    assert_int_equal(bytes[0], 1);
    assert_int_equal(bytes[7], 8);
    assert_true(store_u64_decode(bytes) == 0x0102030405060708ULL);
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "meta", 0, &f->dbi), 0);
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    uint64_t value = 0;
    assert_int_equal(store_get_u64(txn, f->dbi, "absent", 6, 42, &value), 0);
    assert_int_equal(value, 42);
    store_read_end(&txn);
    assert_null(txn);
}

/* One process per state: a second lock on a held dir is refused and names
 * the holder; once the holder lets go, the next one gets it. The lock
 * creates the dir it guards. */
/* Failed batches are counted; the episode they open closes once a batch
 * committed and none failed for STORE_EPISODE_QUIET_MS. */
static void test_failures_counted_per_episode(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    store_health_t health;
    store_health(f->store, &health);
    assert_int_equal(health.failed_writes, 0);
    assert_int_equal(health.episode_failures, 0);

    fill_t fail = {.dbi = f->dbi, .first = 1, .count = 1, .value_size = 8, .fail_with = -ENOSPC};
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_write(f->store, fill_fn, &fail), -ENOSPC);
    store_health(f->store, &health);
    assert_int_equal(health.failed_writes, 3);
    assert_int_equal(health.episode_failures, 3);
    assert_int_equal(health.last_error, -ENOSPC);
    assert_true(health.failing_since_ms > 0);
    int64_t last_failure = health.last_failure_ms;

    /* Not over while nothing committed, nor right after a commit. */
    assert_false(store_episode_close(f->store, last_failure + STORE_EPISODE_QUIET_MS, NULL));
    fill_t ok = {.dbi = f->dbi, .first = 1, .count = 1, .value_size = 8};
    assert_int_equal(store_write(f->store, fill_fn, &ok), 0);
    assert_false(store_episode_close(f->store, last_failure + 1, NULL));
    store_health_t ended;
    assert_true(store_episode_close(f->store, last_failure + STORE_EPISODE_QUIET_MS, &ended));
    assert_int_equal(ended.episode_failures, 3);
    store_health(f->store, &health);
    assert_int_equal(health.episode_failures, 0);
    assert_int_equal(health.failed_writes, 3);
    assert_false(store_episode_close(f->store, last_failure + 10 * STORE_EPISODE_QUIET_MS, NULL));
}

/* A map smaller than the databases need at start grows while they open. */
static void test_tiny_map_starts(void **state)
{
    fixture_t *f = *state;
    store_options_t options = {.map_size = 16 * 1024};
    assert_int_equal(store_open(f->dir, &options, &f->store), 0);
    MDB_dbi dbis[40];
    store_db_t dbs[40];
    char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "db-%d", i);
        dbs[i] = (store_db_t){names[i], &dbis[i], 0};
    }
    assert_int_equal(store_dbis(f->store, dbs, 40), 0);
    fill_t fill = {.dbi = dbis[0], .first = 1, .count = 1000, .value_size = 100};
    assert_int_equal(store_write(f->store, fill_fn, &fill), 0);
    assert_true(store_map_size(f->store) > 16 * 1024);
    assert_int_equal(count_entries(f->store, dbis[0]), 1000);
}

static void make_store(fixture_t *f, char *data, size_t len)
{
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(store_dbi(f->store, "things", 0, &f->dbi), 0);
    fill_t fill = {.dbi = f->dbi, .first = 1, .count = 2000, .value_size = 200};
    assert_int_equal(store_write(f->store, fill_fn, &fill), 0);
    store_destroy(&f->store);
    snprintf(data, len, "%s/data.mdb", f->dir);
}

static void test_truncated_file_refused(void **state)
{
    fixture_t *f = *state;
    char data[600];
    make_store(f, data, sizeof(data));
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(truncate(data, st.st_size / 2), 0);
    assert_int_equal(store_open(f->dir, NULL, &f->store), STORE_TRUNCATED);
    assert_null(f->store);
    assert_non_null(strstr(store_strerror(STORE_TRUNCATED), "truncated"));
}

static void test_corrupted_file_refused(void **state)
{
    fixture_t *f = *state;
    char data[600];
    make_store(f, data, sizeof(data));
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    long page = sysconf(_SC_PAGESIZE);
    FILE *file = fopen(data, "r+b");
    for (long at = 2 * page; at + 16 <= st.st_size; at += page) {
        unsigned char bytes[16];
        fseek(file, at, SEEK_SET);
        assert_int_equal(fread(bytes, 1, 16, file), 16);
        for (int i = 0; i < 16; i++)
            bytes[i] ^= 0xff;
        fseek(file, at, SEEK_SET);
        assert_int_equal(fwrite(bytes, 1, 16, file), 16);
    }
    fclose(file);
    assert_int_equal(store_open(f->dir, NULL, &f->store), STORE_CORRUPTED);
    assert_null(f->store);
    assert_non_null(strstr(store_strerror(STORE_CORRUPTED), "corrupted"));
}

static void test_lock_is_one_holder(void **state)
{
    fixture_t *f = *state;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/not/yet/there", f->dir);
    int first = -1, second = -1;
    long holder = -1;
    assert_int_equal(store_lock(dir, &first, &holder), 0);
    assert_true(first >= 0);
    assert_int_equal(store_lock(dir, &second, &holder), -EWOULDBLOCK);
    assert_int_equal(second, -1);
    assert_int_equal(holder, (long)getpid());
    close(first);
    assert_int_equal(store_lock(dir, &second, &holder), 0);
    close(second);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_write_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_is_one_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full_grows_and_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_limit_is_a_clean_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_reader_is_cleared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_u64_helpers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_counted_per_episode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_map_starts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted_file_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
