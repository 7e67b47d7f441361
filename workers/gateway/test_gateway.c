/* Unit tests of the gateway's modules without a process: the api key file,
 * the service catalogue and its district centroids, W3C times, the workers'
 * figures in /metrics. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apikeys.h"
#include "catalog.h"
#include "gateway_private.h"

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/dispatch-apikeys-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_apikeys(void **state)
{
    char err[256];
    apikeys_t *keys;
    char *path = write_temp("# api_key client\n"
                            "k-0123456789abcdef web-app\n"
                            "   k-fedcba9876543210-long   la311  \n\n");
    assert_int_equal(apikeys_load(path, &keys, err, sizeof(err)), 0);
    unlink(path);
    assert_int_equal(apikeys_count(keys), 2);
    assert_string_equal(apikeys_client(keys, "k-0123456789abcdef"), "web-app");
    assert_string_equal(apikeys_client(keys, "k-fedcba9876543210-long"), "la311");
    assert_null(apikeys_client(keys, "k-0123456789abcde"));   /* a prefix */
    assert_null(apikeys_client(keys, "k-0123456789abcdefx")); /* longer */
    assert_null(apikeys_client(keys, ""));
    char huge[400];
    memset(huge, 'k', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_null(apikeys_client(keys, huge));
    apikeys_destroy(&keys);
    assert_null(keys);

    static const char *const bad[] = {"short web\n", "k-0123456789abcdef\n",
                                      "k-0123456789abcdef bad/client\n",
                                      "k-0123456789abcdef a-client-name-that-is-far-too-long-x\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        path = write_temp(bad[i]);
        assert_int_equal(apikeys_load(path, &keys, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, ":1:"));
        unlink(path);
    }
    assert_int_equal(apikeys_load("/nonexistent/api-keys", &keys, err, sizeof(err)), -ENOENT);
}

static void test_catalog(void **state)
{
    const char *data = getenv("DEPLOY_DATA") ? getenv("DEPLOY_DATA") : "deploy/data";
    char err[256];
    catalog_t *catalog;
    assert_int_equal(catalog_load(data, &catalog, err, sizeof(err)), 0);
    const catalog_service_t *noise = catalog_service_find(catalog, "noise");
    assert_non_null(noise);
    assert_string_equal(noise->group, "city");
    assert_int_equal(noise->kind, DISPATCH__KIND__KIND_COMPLAINT);
    const catalog_service_t *graffiti = catalog_service_find(catalog, "graffiti");
    assert_non_null(graffiti);
    assert_string_equal(graffiti->group, "la311");
    assert_string_equal(graffiti->name, "Graffiti");
    assert_null(catalog_service_find(catalog, "no-such"));
    /* Region centroids: Van Nuys is in the valley (chaoyang), Watts in South LA. */
    assert_string_equal(catalog_nearest_district(catalog, 34.194, -118.499), "chaoyang");
    assert_string_equal(catalog_nearest_district(catalog, 33.94, -118.24), "kuancheng");
    assert_string_equal(catalog_nearest_district(catalog, 34.07, -118.29), "nanguan");
    catalog_destroy(&catalog);
    assert_int_equal(catalog_load("/nonexistent", &catalog, err, sizeof(err)), -ENOENT);
}

static void test_times(void **state)
{
    int64_t ms;
    assert_int_equal(gateway_parse_time("2020-01-01T00:05:00Z", &ms), 0);
    assert_int_equal(ms, 1577837100000LL);
    assert_int_equal(gateway_parse_time("2020-01-01T08:05:00+08:00", &ms), 0);
    assert_int_equal(ms, 1577837100000LL);
    assert_int_equal(gateway_parse_time("2019-12-31T19:05:00.250-05:00", &ms), 0);
    assert_int_equal(ms, 1577837100000LL);
    assert_int_equal(gateway_parse_time("2020-01-01", &ms), 0);
    assert_int_equal(ms, 1577836800000LL);
    static const char *const bad[] = {"",
                                      "yesterday",
                                      "2020-13-01",
                                      "2020-01-01T25:00:00Z",
                                      "2020-01-01T00:00:00+8",
                                      "2020-01-01T00:00:00Zjunk",
                                      "2020-01-01T00:00:00+99:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(gateway_parse_time(bad[i], &ms), -EINVAL);
    char buf[32];
    gateway_format_time(1577837100000LL, buf, sizeof(buf));
    assert_string_equal(buf, "2020-01-01T00:05:00Z");
}

/* out's text holds line (a whole line). */
static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *at = strstr(text, line); at; at = strstr(at + 1, line))
        if ((at == text || at[-1] == '\n') && at[len] == '\n')
            return true;
    return false;
}

/* Audit fails its batches, intake failed some and works again, the router
 * did not answer: each as the storage figures say it, and no figure for
 * the silent one. */
static void test_metrics_storage(void **state)
{
    config_worker_t audit = {.name = "audit", .kind = "audit"};
    config_worker_t intake = {.name = "intake-1", .kind = "intake"};
    config_worker_t router = {.name = "router-cy", .kind = "router", .district = "cy"};
    Dispatch__StorageState failing = DISPATCH__STORAGE_STATE__INIT;
    failing.failing = true;
    failing.failed_batches = 37;
    failing.episode_failures = 37;
    failing.error = "No space left on device";
    failing.failing_since = 1796000689250LL;
    Dispatch__StorageState recovered = DISPATCH__STORAGE_STATE__INIT;
    recovered.failed_batches = 3;
    recovered.error = "No space left on device";
    Dispatch__WorkerStats audit_stats = DISPATCH__WORKER_STATS__INIT;
    audit_stats.storage = &failing;
    Dispatch__WorkerStats intake_stats = DISPATCH__WORKER_STATS__INIT;
    intake_stats.storage = &recovered;
    const metrics_worker_t workers[] = {
        {.worker = &audit, .stats = &audit_stats, .seconds = 0.001},
        {.worker = &intake, .stats = &intake_stats, .seconds = 0.002},
        {.worker = &router},
    };
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    metrics_workers(out, workers, 3);
    fclose(out);
    assert_true(has_line(text, "# TYPE dispatch_store_failing gauge"));
    assert_true(has_line(text, "dispatch_store_failing{worker=\"audit\",district=\"\"} 1"));
    assert_true(has_line(text, "dispatch_store_failing{worker=\"intake-1\",district=\"\"} 0"));
    assert_true(has_line(text, "# TYPE dispatch_store_failed_batches_total counter"));
    assert_true(
        has_line(text, "dispatch_store_failed_batches_total{worker=\"audit\",district=\"\"} 37"));
    assert_true(
        has_line(text, "dispatch_store_failed_batches_total{worker=\"intake-1\",district=\"\"} 3"));
    assert_true(has_line(text, "# TYPE dispatch_store_failing_since_seconds gauge"));
    assert_true(has_line(
        text,
        "dispatch_store_failing_since_seconds{worker=\"audit\",district=\"\"} 1796000689.25"));
    assert_true(has_line(
        text, "dispatch_store_failing_since_seconds{worker=\"intake-1\",district=\"\"} 0"));
    assert_null(strstr(text, "dispatch_store_failing{worker=\"router-cy\""));
    assert_true(has_line(
        text, "dispatch_worker_up{worker=\"router-cy\",kind=\"router\",district=\"cy\"} 0"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apikeys),
        cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_metrics_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
