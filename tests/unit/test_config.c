/* Unit tests for common/config: a full topology, every validation error
 * (code and message naming the line or item), config_load from files, the
 * example topology in deploy/, and config_set overrides. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#ifndef TOPOLOGY_EXAMPLE
#error "TOPOLOGY_EXAMPLE must name deploy/topology.example.ini"
#endif

#define CITY_AND_DISTRICT                                                                          \
    "[city]\n"                   /* 1 */                                                           \
    "name = changchun\n"         /* 2 */                                                           \
    "timezone = Asia/Shanghai\n" /* 3 */                                                           \
    "[district.chaoyang]\n"      /* 4 */                                                           \
    "name = Chaoyang District\n" /* 5 */

/* An audit worker on lines 6-9, so that other workers can link to it. */
#define AUDIT                                                                                      \
    "[worker.audit]\n"             /* 6 */                                                         \
    "kind = audit\n"               /* 7 */                                                         \
    "state_dir = state/audit\n"    /* 8 */                                                         \
    "bus = tcp://127.0.0.1:7291\n" /* 9 */

static const char good_topology[] =
    "; the hotline of one city\n"
    "[city]\n"
    "name = changchun\n"
    "timezone = Asia/Shanghai\n"
    "\n"
    "[district.chaoyang]\n"
    "name = Chaoyang District\n"
    "[district.nanguan]\n"
    "\n"
    "[worker.router-chaoyang]\n"
    "kind = router            ; intake | router | escalation | audit\n"
    "district = chaoyang\n"
    "state_dir = state/router-chaoyang\n"
    "bus = tcp://127.0.0.1:7201\n"
    "request = tcp://127.0.0.1:7202\n"
    "links = escalation-chaoyang, audit\n"
    "map_size = 256MiB\n"
    "\n"
    "[worker.escalation-chaoyang]\n"
    "kind = escalation\n"
    "district = chaoyang\n"
    "state_dir = state/escalation-chaoyang\n"
    "bus = tcp://127.0.0.1:7204\n"
    "links = router-chaoyang,audit\n"
    "\n"
    "# audit has a PUB endpoint and no links\n"
    "[worker.audit]\n"
    "kind = audit\n"
    "state_dir = state/audit\n"
    "bus = tcp://127.0.0.1:7291\n"
    "publish = tcp://127.0.0.1:7293\n"
    "map_size = 1GiB\n";

static void assert_message_contains(const char *message, const char *expected)
{
    if (strstr(message, expected) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", message, expected);
}

/* The text must be refused with -EINVAL, *ret untouched, and a message
 * holding both fragments (the second may be NULL). */
static void expect_invalid(const char *text, const char *fragment, const char *other_fragment)
{
    char err[512] = "";
    config_t *config = (config_t *)(uintptr_t)0x1; /* must stay as it is */
    int r = config_parse_string(text, &config, err, sizeof(err));
    if (r != -EINVAL)
        fail_msg("expected -EINVAL, got %d (%s) for:\n%s", r, err, text);
    assert_ptr_equal(config, (config_t *)(uintptr_t)0x1);
    assert_message_contains(err, fragment);
    if (other_fragment != NULL)
        assert_message_contains(err, other_fragment);
}

static config_t *parse_or_fail(const char *text)
{
    char err[512] = "";
    config_t *config = NULL;
    int r = config_parse_string(text, &config, err, sizeof(err));
    if (r != 0)
        fail_msg("parse failed with %d: %s", r, err);
    assert_non_null(config);
    return config;
}

static void test_good_topology(void **state)
{
    (void)state;
    config_t *config = parse_or_fail(good_topology);

    assert_string_equal(config_city(config), "changchun");
    assert_string_equal(config_timezone(config), "Asia/Shanghai");

    assert_int_equal(config_district_count(config), 2);
    assert_string_equal(config_district_at(config, 0)->id, "chaoyang");
    assert_string_equal(config_district_at(config, 0)->name, "Chaoyang District");
    assert_string_equal(config_district_at(config, 1)->id, "nanguan");
    assert_string_equal(config_district_at(config, 1)->name, "nanguan"); /* defaults to id */
    assert_ptr_equal(config_district_find(config, "nanguan"), config_district_at(config, 1));
    assert_null(config_district_find(config, "kuancheng"));

    assert_int_equal(config_worker_count(config), 3);
    const config_worker_t *router = config_worker_at(config, 0);
    assert_string_equal(router->name, "router-chaoyang");
    assert_string_equal(router->kind, "router");
    assert_string_equal(router->district, "chaoyang");
    assert_string_equal(router->state_dir, "state/router-chaoyang");
    assert_string_equal(router->bus, "tcp://127.0.0.1:7201");
    assert_string_equal(router->request, "tcp://127.0.0.1:7202");
    assert_null(router->publish);
    assert_int_equal(router->link_count, 2);
    assert_string_equal(router->links[0], "escalation-chaoyang");
    assert_string_equal(router->links[1], "audit");
    assert_int_equal(router->map_size, UINT64_C(256) << 20);

    const config_worker_t *escalation = config_worker_find(config, "escalation-chaoyang");
    assert_ptr_equal(escalation, config_worker_at(config, 1));
    assert_int_equal(escalation->link_count, 2);
    assert_string_equal(escalation->links[0], "router-chaoyang");
    assert_null(escalation->request);
    assert_int_equal(escalation->map_size, 0);

    const config_worker_t *audit = config_worker_find(config, "audit");
    assert_non_null(audit);
    assert_string_equal(audit->publish, "tcp://127.0.0.1:7293");
    assert_null(audit->district);
    assert_int_equal(audit->link_count, 0);
    assert_null(audit->links);
    assert_int_equal(audit->map_size, UINT64_C(1) << 30);

    assert_null(config_worker_find(config, "router-nanguan"));
    assert_null(config_worker_at(config, 3));

    config_destroy(&config);
    assert_null(config);
    config_destroy(&config); /* twice is harmless */
    config_destroy(NULL);
}

static uint64_t parse_map_size(const char *value)
{
    char text[512];
    snprintf(text, sizeof(text),
             CITY_AND_DISTRICT "[worker.w]\nkind = intake\nstate_dir = s\nmap_size = %s\n", value);
    config_t *config = parse_or_fail(text);
    uint64_t bytes = config_worker_find(config, "w")->map_size;
    config_destroy(&config);
    return bytes;
}

static void test_map_size_suffixes(void **state)
{
    (void)state;
    assert_int_equal(parse_map_size("4096"), 4096);
    assert_int_equal(parse_map_size("4096B"), 4096);
    assert_int_equal(parse_map_size("64KiB"), 64 * 1024);
    assert_int_equal(parse_map_size("256MiB"), UINT64_C(256) * 1024 * 1024);
    assert_int_equal(parse_map_size("256 MiB"), UINT64_C(256) * 1024 * 1024);
    assert_int_equal(parse_map_size("3GiB"), UINT64_C(3) * 1024 * 1024 * 1024);
    assert_int_equal(parse_map_size("17179869183GiB"), UINT64_C(17179869183) << 30);
}

static void test_bad_map_size(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "256MB",
        "256mib",
        "-1",
        "+5",
        "0",
        "0GiB",
        "1.5GiB",
        "GiB",
        "12 XiB",
        "5 GiB extra",
        "18446744073709551616", /* 2^64 */
        "17179869184GiB",       /* 2^64: overflows once multiplied */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 CITY_AND_DISTRICT "[worker.w]\n"     /* 6 */
                                   "kind = intake\n"  /* 7 */
                                   "state_dir = s\n"  /* 8 */
                                   "map_size = %s\n", /* 9 */
                 bad[i]);
        expect_invalid(text, "(string):9: [worker.w] map_size", NULL);
    }
}

static void test_dead_after_ms(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text),
             CITY_AND_DISTRICT "[worker.w]\nkind = intake\nstate_dir = s\ndead_after_ms = 5000\n");
    config_t *config = parse_or_fail(text);
    assert_int_equal(config_worker_find(config, "w")->dead_after_ms, 5000);
    config_destroy(&config);
    snprintf(text, sizeof(text), CITY_AND_DISTRICT "[worker.w]\nkind = intake\nstate_dir = s\n");
    config = parse_or_fail(text);
    assert_int_equal(config_worker_find(config, "w")->dead_after_ms, 0); /* the bus's default */
    config_destroy(&config);
    static const char *const bad[] = {
        "0", "-1", "+5", "3s", "1.5", "3600001", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 CITY_AND_DISTRICT "[worker.w]\nkind = intake\nstate_dir = s\ndead_after_ms = %s\n",
                 bad[i]);
        expect_invalid(text, "(string):9: [worker.w] dead_after_ms", NULL);
    }
}

static void test_unknown_section_and_key(void **state)
{
    (void)state;
    expect_invalid("[citi]\nname = x\n", "(string):1:", "unknown section [citi]");
    expect_invalid(CITY_AND_DISTRICT "[workers.a]\n", "(string):6:", "unknown section [workers.a]");
    expect_invalid(CITY_AND_DISTRICT "[worker]\n", "(string):6:", "needs a name");
    expect_invalid(CITY_AND_DISTRICT AUDIT "colour = red\n",
                   "(string):10:", "[worker.audit]: unknown key 'colour'");
    expect_invalid("[city]\nname = x\nmayor = y\n", "(string):3:", "unknown key 'mayor'");
    expect_invalid(CITY_AND_DISTRICT "links = a\n",
                   "(string):6:", "[district.chaoyang]: unknown key 'links'");
    expect_invalid("name = x\n[city]\n", "(string):1:", "before any section");
    expect_invalid(CITY_AND_DISTRICT AUDIT "= x\n", "(string):10:", "missing key");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_invalid(CITY_AND_DISTRICT AUDIT "publish\n", "(string):10:", "expected 'key = value'");
    expect_invalid(CITY_AND_DISTRICT "[worker.a\n", "(string):6:", "without ']'");
    expect_invalid(CITY_AND_DISTRICT "[worker.a] kind = audit\n",
                   "(string):6:", "after section header");
    expect_invalid(CITY_AND_DISTRICT AUDIT "publish =\n", "(string):10:", "empty value");
    expect_invalid(CITY_AND_DISTRICT AUDIT "kind = audit\n",
                   "(string):10:", "kind given twice (first at line 7)");
    expect_invalid(CITY_AND_DISTRICT "[city]\n", "(string):6:", "[city] given twice");
    expect_invalid(CITY_AND_DISTRICT "[district.chaoyang]\n",
                   "(string):6:", "duplicate district [district.chaoyang] (first at line 4)");
    /* an indented line continues only a links list */
    expect_invalid(CITY_AND_DISTRICT AUDIT "  publish = tcp://127.0.0.1:1\n",
                   "(string):10:", "indented line");
    expect_invalid(CITY_AND_DISTRICT "  [worker.x]\n", "(string):6:", "indented line");
}

static void test_duplicate_worker(void **state)
{
    (void)state;
    expect_invalid(CITY_AND_DISTRICT AUDIT "[worker.audit]\nkind = audit\n",
                   "(string):10:", "duplicate worker [worker.audit] (first at line 6)");
}

static void test_kind_and_district(void **state)
{
    (void)state;
    expect_invalid(CITY_AND_DISTRICT "[worker.w]\nkind = dispatcher\n",
                   "(string):7:", "unknown kind 'dispatcher'");
    expect_invalid(CITY_AND_DISTRICT "[worker.w]\nstate_dir = s\n",
                   "(string):6:", "[worker.w] has no kind");
    /* a router without a district: the message names the section's line */
    expect_invalid(CITY_AND_DISTRICT "[worker.r]\nkind = router\nstate_dir = s\n",
                   "(string):6:", "[worker.r] is a router and needs a district");
    expect_invalid(CITY_AND_DISTRICT "[worker.e]\nkind = escalation\nstate_dir = s\n",
                   "(string):6:", "needs a district");
    expect_invalid(CITY_AND_DISTRICT "[worker.r]\nkind = router\ndistrict = nowhere\n"
                                     "state_dir = s\n",
                   "(string):8:", "district 'nowhere' has no [district.nowhere]");
    /* a district is optional for intake, but must exist when given */
    expect_invalid(CITY_AND_DISTRICT "[worker.i]\nkind = intake\ndistrict = nowhere\n"
                                     "state_dir = s\n",
                   "(string):8:", "district 'nowhere'");
}

static void test_missing_state_dir_and_city(void **state)
{
    (void)state;
    expect_invalid(CITY_AND_DISTRICT "[worker.w]\nkind = audit\n",
                   "(string):6:", "[worker.w] has no state_dir");
    expect_invalid("[district.a]\n", "missing [city] section", NULL);
    expect_invalid("[city]\nname = x\n", "(string):1:", "[city] has no timezone");
    expect_invalid("[city]\ntimezone = UTC\n", "(string):1:", "[city] has no name");
    expect_invalid("[city]\nname = x\ntimezone = ../../etc/passwd\n",
                   "(string):3:", "not an IANA time zone");
}

static void test_links(void **state)
{
    (void)state;
    expect_invalid(CITY_AND_DISTRICT AUDIT "links = ghost\n",
                   "(string):10:", "[worker.audit] links to unknown worker 'ghost'");
    /* the target exists but has no bus endpoint to connect to */
    expect_invalid(CITY_AND_DISTRICT AUDIT "[worker.i]\nkind = intake\nstate_dir = s\n"
                                           "links = audit\n"
                                           "[worker.quiet]\nkind = intake\nstate_dir = q\n"
                                           "links = i\n",
                   "(string):17:", "links to 'i', which has no bus endpoint");
    expect_invalid(CITY_AND_DISTRICT AUDIT "links = audit\n", "(string):10:", "links to itself");
    expect_invalid(CITY_AND_DISTRICT AUDIT "[worker.i]\nkind = intake\nstate_dir = s\n"
                                           "links = audit, audit\n",
                   "(string):13:", "links to 'audit' twice");
    expect_invalid(CITY_AND_DISTRICT AUDIT "[worker.i]\nkind = intake\nstate_dir = s\n"
                                           "links = audit,,audit\n",
                   "(string):13:", "empty item");
    expect_invalid(CITY_AND_DISTRICT AUDIT "[worker.i]\nkind = intake\nstate_dir = s\n"
                                           "links = audit, bad/name\n",
                   "(string):13:", "'bad/name' has characters outside [A-Za-z0-9._-]");
}

static void test_links_continue_on_indented_lines(void **state)
{
    (void)state;
    config_t *config =
        parse_or_fail(CITY_AND_DISTRICT AUDIT "[worker.b]\nkind = intake\nstate_dir = b\n"
                                              "bus = tcp://127.0.0.1:7300\nid_prefix = B\n"
                                              "[worker.i]\nkind = intake\nstate_dir = s\n"
                                              "id_prefix = I\n"
                                              "links = audit,\n"
                                              "        b   ; the other one\n");
    const config_worker_t *intake = config_worker_find(config, "i");
    assert_int_equal(intake->link_count, 2);
    assert_string_equal(intake->links[0], "audit");
    assert_string_equal(intake->links[1], "b");
    config_destroy(&config);

    /* a blank line ends the list */
    expect_invalid(CITY_AND_DISTRICT AUDIT "[worker.i]\nkind = intake\nstate_dir = s\n"
                                           "links = audit\n\n  audit\n",
                   "(string):15:", "indented line");
}

static void test_names(void **state)
{
    (void)state;
    /* 63 bytes: accepted, and two names that differ only after byte 50 (where
     * libinih used to cut section names) stay two workers. */
    const char *name_a = "a23456789012345678901234567890123456789012345678901234567890123";
    const char *name_b = "a2345678901234567890123456789012345678901234567890123456789012b";
    assert_int_equal(strlen(name_a), CONFIG_NAME_MAX);
    char text[1024];
    snprintf(text, sizeof(text),
             CITY_AND_DISTRICT "[worker.%s]\nkind = audit\nstate_dir = a\n"
                               "[worker.%s]\nkind = audit\nstate_dir = b\n",
             name_a, name_b);
    config_t *config = parse_or_fail(text);
    assert_int_equal(config_worker_count(config), 2);
    assert_string_equal(config_worker_at(config, 0)->name, name_a);
    assert_string_equal(config_worker_at(config, 1)->name, name_b);
    assert_string_equal(config_worker_at(config, 1)->state_dir, "b");
    config_destroy(&config);

    snprintf(text, sizeof(text), CITY_AND_DISTRICT "[worker.%sx]\nkind = audit\n", name_a);
    expect_invalid(text, "(string):6:", "is longer than 63 bytes");
    snprintf(text, sizeof(text), CITY_AND_DISTRICT "[district.%sx]\n", name_a);
    expect_invalid(text, "(string):6:", "district id");

    expect_invalid(CITY_AND_DISTRICT "[worker.router chaoyang]\n",
                   "(string):6:", "has characters outside [A-Za-z0-9._-]");
    expect_invalid(CITY_AND_DISTRICT "[worker.朝阳]\n", "(string):6:", "outside [A-Za-z0-9._-]");
    expect_invalid(CITY_AND_DISTRICT "[worker.]\n", "(string):6:", "is empty");
    expect_invalid(CITY_AND_DISTRICT "[worker...]\n", "(string):6:", "not a name");
    expect_invalid(CITY_AND_DISTRICT "[district.a/b]\n", "(string):6:", "outside");
    expect_invalid("[city]\nname = chang chun\n", "(string):2:", "[city] name");
}

static void test_endpoints(void **state)
{
    (void)state;
    expect_invalid(CITY_AND_DISTRICT AUDIT "publish = 127.0.0.1:7000\n",
                   "(string):10:", "transport://address");
    expect_invalid(CITY_AND_DISTRICT AUDIT "publish = tcp://127.0.0.1\n", "(string):10:", "port");
    expect_invalid(CITY_AND_DISTRICT AUDIT "publish = tcp://127.0.0.1:70000\n",
                   "(string):10:", "port");
    expect_invalid(CITY_AND_DISTRICT AUDIT "publish = udp://127.0.0.1:7000\n",
                   "(string):10:", "unknown transport");
    expect_invalid(CITY_AND_DISTRICT AUDIT "publish = tcp://127.0.0.1:7291\n",
                   "(string):10:", "already the bus of [worker.audit]");

    /* wildcard ports may repeat: the OS picks a free port for each bind */
    config_t *config =
        parse_or_fail(CITY_AND_DISTRICT "[worker.a]\nkind = audit\nstate_dir = a\n"
                                        "bus = tcp://127.0.0.1:*\npublish = tcp://127.0.0.1:*\n"
                                        "[worker.b]\nkind = audit\nstate_dir = b\n"
                                        "bus = ipc:///tmp/b.sock\n");
    config_destroy(&config);
}

static void test_line_handling(void **state)
{
    (void)state;
    /* CRLF line ends, a BOM, and a comment longer than libinih's line buffer */
    char text[2048] = "\xEF\xBB\xBF[city]\r\nname = changchun\r\ntimezone = UTC\r\n;";
    memset(text + strlen(text), 'x', 600);
    strcat(text, "\n" AUDIT);
    config_t *config = parse_or_fail(text);
    assert_string_equal(config_city(config), "changchun");
    assert_string_equal(config_timezone(config), "UTC");
    config_destroy(&config);

    /* a key line longer than libinih's buffer is read whole */
    char long_line[8192];
    snprintf(long_line, sizeof(long_line), CITY_AND_DISTRICT AUDIT "publish = ipc:///%0300d\n", 0);
    config = parse_or_fail(long_line);
    assert_int_equal(strlen(config_worker_find(config, "audit")->publish), strlen("ipc:///") + 300);
    config_destroy(&config);

    /* a key line longer than INI_LINE_MAX is refused, not cut in two */
    snprintf(long_line, sizeof(long_line), CITY_AND_DISTRICT AUDIT "publish = ipc:///%05000d\n", 0);
    expect_invalid(long_line, "(string):10:", "line is");
}

static char *write_temporary_file(const char *content)
{
    const char *directory = getenv("TMPDIR");
    if (directory == NULL || directory[0] == '\0')
        directory = "/tmp";
    char *path = NULL;
    assert_true(asprintf(&path, "%s/test-config-XXXXXX", directory) > 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t length = strlen(content);
    assert_int_equal(write(fd, content, length), (ssize_t)length);
    assert_int_equal(close(fd), 0);
    return path;
}

static void test_load_file(void **state)
{
    (void)state;
    char err[512];
    config_t *config = NULL;

    char *path = write_temporary_file(good_topology);
    assert_int_equal(config_load(path, &config, err, sizeof(err)), 0);
    assert_int_equal(config_worker_count(config), 3);
    config_destroy(&config);
    unlink(path);
    free(path);

    /* messages from a file name the file and the line */
    path = write_temporary_file(CITY_AND_DISTRICT AUDIT "links = ghost\n");
    assert_int_equal(config_load(path, &config, err, sizeof(err)), -EINVAL);
    assert_null(config);
    char expected[600];
    snprintf(expected, sizeof(expected), "%s:10: [worker.audit] links to unknown worker 'ghost'",
             path);
    assert_string_equal(err, expected);
    unlink(path);
    free(path);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    char err[512] = "untouched";
    config_t *config = NULL;
    int r = config_load("/nonexistent/dispatch/topology.ini", &config, err, sizeof(err));
    assert_int_equal(r, -ENOENT);
    assert_null(config);
    assert_message_contains(err, "/nonexistent/dispatch/topology.ini");

    /* a tiny or absent message buffer is fine */
    assert_int_equal(config_load("/nonexistent/x.ini", &config, NULL, 0), -ENOENT);
    char tiny[4];
    assert_int_equal(config_load("/nonexistent/x.ini", &config, tiny, sizeof(tiny)), -ENOENT);
    assert_int_equal(strlen(tiny), 3);
}

static void test_example_topology(void **state)
{
    (void)state;
    char err[512] = "";
    config_t *config = NULL;
    int r = config_load(TOPOLOGY_EXAMPLE, &config, err, sizeof(err));
    if (r != 0)
        fail_msg("%s: %d: %s", TOPOLOGY_EXAMPLE, r, err);

    assert_string_equal(config_city(config), "changchun");
    assert_string_equal(config_timezone(config), "Asia/Shanghai");
    assert_int_equal(config_district_count(config), 3);
    assert_int_equal(config_worker_count(config), 8);

    static const char *const districts[] = {"chaoyang", "nanguan", "kuancheng"};
    for (size_t i = 0; i < 3; i++) {
        char name[64];
        assert_non_null(config_district_find(config, districts[i]));
        snprintf(name, sizeof(name), "router-%s", districts[i]);
        const config_worker_t *router = config_worker_find(config, name);
        assert_non_null(router);
        assert_string_equal(router->district, districts[i]);
        snprintf(name, sizeof(name), "escalation-%s", districts[i]);
        assert_non_null(config_worker_find(config, name));
    }
    const config_worker_t *intake = config_worker_find(config, "intake-1");
    assert_non_null(intake);
    assert_int_equal(intake->link_count, 4);
    assert_non_null(config_worker_find(config, "audit")->publish);
    config_destroy(&config);
}

static void test_set_overrides(void **state)
{
    (void)state;
    char err[512];
    config_t *config = parse_or_fail(good_topology);

    assert_int_equal(
        config_set(config, "worker.audit.bus", "tcp://10.0.0.5:7291", err, sizeof(err)), 0);
    assert_string_equal(config_worker_find(config, "audit")->bus, "tcp://10.0.0.5:7291");

    assert_int_equal(
        config_set(config, "worker.router-chaoyang.map_size", "2GiB", err, sizeof(err)), 0);
    assert_int_equal(config_worker_find(config, "router-chaoyang")->map_size, UINT64_C(2) << 30);

    assert_int_equal(config_set(config, "worker.audit.links", "router-chaoyang", err, sizeof(err)),
                     0);
    assert_int_equal(config_worker_find(config, "audit")->link_count, 1);
    assert_string_equal(config_worker_find(config, "audit")->links[0], "router-chaoyang");

    assert_int_equal(config_set(config, "city.timezone", "UTC", err, sizeof(err)), 0);
    assert_string_equal(config_timezone(config), "UTC");
    assert_int_equal(config_set(config, "district.nanguan.name", "南关区", err, sizeof(err)), 0);
    assert_string_equal(config_district_find(config, "nanguan")->name, "南关区");

    config_destroy(&config);
}

static void test_set_refusals_leave_config_unchanged(void **state)
{
    (void)state;
    char err[512];
    config_t *config = parse_or_fail(good_topology);
    const config_worker_t *audit = config_worker_find(config, "audit");

    assert_int_equal(config_set(config, "worker.ghost.bus", "tcp://127.0.0.1:1", err, sizeof(err)),
                     -ENOENT);
    assert_message_contains(err, "set worker.ghost.bus: no [worker.ghost]");

    assert_int_equal(config_set(config, "worker.audit.bus", "nonsense", err, sizeof(err)), -EINVAL);
    assert_message_contains(err, "set worker.audit.bus:");
    assert_string_equal(audit->bus, "tcp://127.0.0.1:7291");

    /* a valid kind, but a router needs a district: rolled back */
    assert_int_equal(config_set(config, "worker.audit.kind", "router", err, sizeof(err)), -EINVAL);
    assert_message_contains(err, "needs a district");
    assert_string_equal(audit->kind, "audit");

    assert_int_equal(config_set(config, "worker.audit.links", "ghost", err, sizeof(err)), -EINVAL);
    assert_message_contains(err, "unknown worker 'ghost'");
    assert_int_equal(audit->link_count, 0);

    assert_int_equal(
        config_set(config, "worker.audit.publish", "tcp://127.0.0.1:7201", err, sizeof(err)),
        -EINVAL);
    assert_message_contains(err, "already the bus of [worker.router-chaoyang]");
    assert_string_equal(audit->publish, "tcp://127.0.0.1:7293");

    assert_int_equal(config_set(config, "worker.audit.map_size", "lots", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(audit->map_size, UINT64_C(1) << 30);

    assert_int_equal(config_set(config, "worker.audit.colour", "red", err, sizeof(err)), -EINVAL);
    assert_message_contains(err, "unknown key 'colour'");
    assert_int_equal(config_set(config, "bus", "x", err, sizeof(err)), -EINVAL);
    assert_int_equal(config_set(config, "worker..bus", "x", err, sizeof(err)), -EINVAL);
    assert_int_equal(config_set(config, "district.chaoyang.name", "", err, sizeof(err)), -EINVAL);
    assert_string_equal(config_district_find(config, "chaoyang")->name, "Chaoyang District");

    config_destroy(&config);
}

#define INTAKE(name, line)                                                                         \
    "[worker." name "]\n" /* line */                                                               \
    "kind = intake\n"                                                                              \
    "state_dir = state/" name "\n"                                                                 \
    "request = tcp://127.0.0.1:*\n"

/* Ticket ids carry the intake's prefix: two intakes without prefixes, or
 * with one prefix between them, would issue the same ids. One intake may go
 * without. */
static void test_intakes_need_distinct_prefixes(void **state)
{
    (void)state;
    config_t *config = parse_or_fail(CITY_AND_DISTRICT AUDIT INTAKE("intake-1", 10));
    config_destroy(&config);
    expect_invalid(CITY_AND_DISTRICT AUDIT INTAKE("intake-1", 10) INTAKE("intake-2", 14),
                   "(string):10: [worker.intake-1] needs an id_prefix",
                   "more than one intake (intake-1 and intake-2)");
    expect_invalid(CITY_AND_DISTRICT AUDIT INTAKE("intake-1", 10) "id_prefix = CY\n" /* 14 */
                   INTAKE("intake-2", 15),
                   "(string):15: [worker.intake-2] needs an id_prefix", NULL);
    expect_invalid(CITY_AND_DISTRICT AUDIT INTAKE("intake-1", 10) "id_prefix = CY\n" /* 14 */
                   INTAKE("intake-2", 15) "id_prefix = CY\n" /* 19 */,
                   "(string):19: [worker.intake-2] id_prefix: 'CY' is already the prefix of "
                   "[worker.intake-1]",
                   NULL);
    config = parse_or_fail(CITY_AND_DISTRICT AUDIT INTAKE("intake-1", 10) "id_prefix = CY\n" INTAKE(
        "intake-2", 15) "id_prefix = NG\n");
    config_destroy(&config);
}

#define CITY_WITH(line4)                                                                           \
    "[city]\n"                   /* 1 */                                                           \
    "name = changchun\n"         /* 2 */                                                           \
    "timezone = Asia/Shanghai\n" /* 3 */                                                           \
        line4                    /* 4 */
#define WORKER_ON(bus)                                                                             \
    "[worker.audit]\n"          /* 5 */                                                            \
    "kind = audit\n"            /* 6 */                                                            \
    "state_dir = state/audit\n" /* 7 */                                                            \
    "bus = " bus "\n"           /* 8 */

static void test_security_and_keys_dir(void **state)
{
    (void)state;
    config_t *config = parse_or_fail(CITY_WITH("") WORKER_ON("tcp://0.0.0.0:7291"));
    assert_int_equal(config_security(config), CONFIG_SECURITY_CURVE);
    assert_string_equal(config_keys_dir(config), "keys");
    config_destroy(&config);
    config = parse_or_fail(CITY_WITH("keys_dir = /etc/dispatch/keys\n") WORKER_ON("tcp://*:7291"));
    assert_string_equal(config_keys_dir(config), "/etc/dispatch/keys");
    config_destroy(&config);
    expect_invalid(CITY_WITH("security = none\n") WORKER_ON("tcp://127.0.0.1:7291"),
                   "(string):4: [city] security: 'none' is neither curve nor plain", NULL);
}

static void test_plain_binds_loopback_only(void **state)
{
    (void)state;
    const char *const local[] = {
        CITY_WITH("security = plain\n") WORKER_ON("tcp://127.0.0.1:7291"),
        CITY_WITH("security = plain\n") WORKER_ON("tcp://localhost:*"),
        CITY_WITH("security = plain\n") WORKER_ON("tcp://[::1]:7291"),
        CITY_WITH("security = plain\n") WORKER_ON("ipc:///tmp/dispatch-audit"),
        CITY_WITH("security = plain\n") WORKER_ON("inproc://audit"),
    };
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        config_t *config = parse_or_fail(local[i]);
        assert_int_equal(config_security(config), CONFIG_SECURITY_PLAIN);
        config_destroy(&config);
    }
    expect_invalid(CITY_WITH("security = plain\n") WORKER_ON("tcp://0.0.0.0:7291"),
                   "(string):8: [worker.audit] bus: 'tcp://0.0.0.0:7291' is not on loopback",
                   "security = plain");
    expect_invalid(CITY_WITH("security = plain\n") WORKER_ON("tcp://*:7291"),
                   "(string):8: [worker.audit] bus: 'tcp://*:7291' is not on loopback", NULL);
    expect_invalid(CITY_WITH("security = plain\n") WORKER_ON("tcp://127.0.0.10:7291"),
                   "is not on loopback", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_topology),
        cmocka_unit_test(test_map_size_suffixes),
        cmocka_unit_test(test_bad_map_size),
        cmocka_unit_test(test_dead_after_ms),
        cmocka_unit_test(test_unknown_section_and_key),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_duplicate_worker),
        cmocka_unit_test(test_kind_and_district),
        cmocka_unit_test(test_missing_state_dir_and_city),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_links_continue_on_indented_lines),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_line_handling),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_example_topology),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_set_refusals_leave_config_unchanged),
        cmocka_unit_test(test_intakes_need_distinct_prefixes),
        cmocka_unit_test(test_security_and_keys_dir),
        cmocka_unit_test(test_plain_binds_loopback_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
