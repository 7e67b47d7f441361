/* gateway-city: a city of real workers under CURVE (tests/harness/city.h:
 * intake, a router per district, audit; with --escalation an escalation per
 * district) and a dispatch-gateway in front of it, for the gateway's tests,
 * which are written in Python and drive it over HTTP.
 *
 * The gateway gets its own key (actor "gateway", kind gateway, roles
 * operator and auditor) and an api key file with two clients. Once everything is ready it prints,
 * one per line on stdout:
 *
 *   url http://127.0.0.1:PORT       the gateway
 *   topology PATH                   the city's topology
 *   keys DIR                        the city's key directory
 *   apikey CLIENT KEY               per client
 *   intake URL | audit URL | audit-publish URL
 *   dir DIR                         the city's directory
 *   spare tcp://127.0.0.1:PORT      a free port for the test's own server
 *   ready
 *
 * and then takes commands on stdin, answering each with "ok" or "error ...":
 *   gateway-stop            SIGTERM to the gateway (the screen's stream is cut)
 *   gateway-start           starts it again on the same port, waits for ready
 *   worker-stop NAME        SIGTERM to a worker of the city ("intake-1", ...)
 *   worker-start NAME       starts it again where it was, waits for ready
 *   quit (or end of input)  stops everything and removes the city's directory
 *                           (kept with DISPATCH_KEEP_STATE set)
 * Nothing here sleeps to wait: workers and the gateway are waited for on
 * their ready pipes.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "city.h"
#include "citydata.h"
#include "harness.h"

static city_t *city;
static harness_proc_t *gateway;
static char listen_address[64], api_keys_path[700];

static int gateway_start(void)
{
    const char *argv[] = {
        harness_program("GATEWAY_BIN", "build/workers/gateway/dispatch-gateway"),
        "--config",
        city_topology(city),
        "--api-keys",
        api_keys_path,
        "--listen",
        listen_address,
        "--data",
        getenv("DEPLOY_DATA") ? getenv("DEPLOY_DATA") : "deploy/data",
        "--web",
        getenv("GATEWAY_WEB") ? getenv("GATEWAY_WEB") : "workers/gateway/web",
        NULL,
    };
    int rc = harness_spawn(argv, false, &gateway);
    if (rc == 0)
        rc = harness_wait_ready(gateway, 30000);
    return rc;
}

int main(int argc, char **argv)
{
    bool escalation = argc > 1 && strcmp(argv[1], "--escalation") == 0;
    signal(SIGPIPE, SIG_IGN);
    char *units = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    static const char *const escalation_files[] = {NULL};
    city_options_t options = {
        .districts = citydata_districts,
        .district_count = CITYDATA_DISTRICTS,
        .units_csv = units,
        .rules_csv = (const char *const *)rules,
        .audit = true,
        .escalation = escalation,
        .escalation_files = escalation_files,
    };
    int rc = city_new("gateway", &options, &city);
    free(units);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    if (rc < 0) {
        fprintf(stderr, "gateway-city: city_new: %s\n", strerror(-rc));
        return 1;
    }

    char keys[600];
    city_keys_dir(city, keys, sizeof(keys));
    /* A gateway key (it speaks for its clients): operator to file
     * requests, auditor to follow the audit stream and read figures. */
    auth_actor_t actor = {.kind = AUTH_KIND_GATEWAY,
                          .roles = AUTH_ROLE_OPERATOR | AUTH_ROLE_AUDITOR};
    snprintf(actor.name, sizeof(actor.name), "gateway");
    rc = auth_key_new(keys, &actor);
    snprintf(api_keys_path, sizeof(api_keys_path), "%s/api-keys", city_dir(city));
    static const char *const clients[][2] = {
        {"web-app", "k-web-app-5b3c9f1e2d7a4e60"},
        {"la311", "k-la311-replay-0a8d6c4b2e1f"},
    };
    FILE *file = rc == 0 ? fopen(api_keys_path, "we") : NULL;
    if (file) {
        fprintf(file, "# api_key client_id\n");
        for (size_t i = 0; i < 2; i++)
            fprintf(file, "%s %s\n", clients[i][1], clients[i][0]);
        fclose(file);
    } else if (rc == 0) {
        rc = -errno;
    }
    char endpoint[64];
    if (rc == 0)
        rc = harness_tcp_endpoint(endpoint, sizeof(endpoint));
    if (rc == 0) {
        snprintf(listen_address, sizeof(listen_address), "%s", endpoint + strlen("tcp://"));
        rc = city_start_all(city);
    }
    if (rc == 0)
        rc = gateway_start();
    if (rc < 0) {
        fprintf(stderr, "gateway-city: start: %s\n", strerror(-rc));
        harness_destroy(&gateway);
        city_destroy(&city, true);
        return 1;
    }
    printf("url %s\n", harness_endpoint(gateway, "http"));
    printf("topology %s\n", city_topology(city));
    printf("keys %s\n", keys);
    for (size_t i = 0; i < 2; i++)
        printf("apikey %s %s\n", clients[i][0], clients[i][1]);
    printf("intake %s\n", city_endpoint(city, "intake-1", "request"));
    printf("audit %s\n", city_endpoint(city, "audit", "request"));
    printf("audit-publish %s\n", city_endpoint(city, "audit", "publish"));
    printf("dir %s\n", city_dir(city));
    /* A free port of the harness's range for a test's own server. */
    char spare[64];
    if (harness_tcp_endpoint(spare, sizeof(spare)) == 0)
        printf("spare %s\n", spare);
    printf("ready\n");
    fflush(stdout);

    char line[256];
    bool failed = false;
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "quit") == 0)
            break;
        if (strcmp(line, "gateway-stop") == 0) {
            harness_stop(gateway, 10000);
            harness_destroy(&gateway);
            printf("ok\n");
        } else if (strcmp(line, "gateway-start") == 0) {
            rc = gateway ? -EALREADY : gateway_start();
            if (rc < 0)
                printf("error %s\n", strerror(-rc));
            else
                printf("ok\n");
        } else if (strncmp(line, "worker-stop ", 12) == 0) {
            rc = city_stop(city, line + 12, SIGTERM);
            printf(rc < 0 ? "error %s\n" : "ok\n", strerror(-rc));
        } else if (strncmp(line, "worker-start ", 13) == 0) {
            rc = city_start(city, line + 13);
            printf(rc < 0 ? "error %s\n" : "ok\n", strerror(-rc));
        } else {
            printf("error unknown command '%s'\n", line);
        }
        fflush(stdout);
    }
    if (gateway) {
        int status = harness_stop(gateway, 10000);
        failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        if (failed)
            fprintf(stderr, "gateway-city: the gateway exited with status %d\n", status);
        harness_destroy(&gateway);
    }
    city_destroy(&city, getenv("DISPATCH_KEEP_STATE") != NULL);
    return failed ? 1 : 0;
}
