/* dispatch-gateway: see gateway.h. Parses options, starts the gateway,
 * announces its URL on --ready-fd and serves until SIGTERM or SIGINT. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "log.h"
#include "ready.h"

static const char usage[] =
    "usage: dispatch-gateway --config TOPOLOGY --api-keys FILE [options]\n"
    "  --name ACTOR          the gateway's key in the topology's keys_dir (default gateway)\n"
    "  --listen ADDR:PORT    HTTP address (default 127.0.0.1:8311; port 0 = any)\n"
    "  --data DIR            categories.csv and la311-map.csv (default deploy/data)\n"
    "  --web DIR             the big screen's files (default: installed)\n"
    "  --jurisdiction ID     Open311 jurisdiction_id (default: the city's name)\n"
    "  --timeout-ms N        one call to intake or audit (default 5000)\n"
    "  --ready-fd N          write \"endpoint http URL\" and \"ready\" to fd N when serving\n"
    "  --log-level LEVEL     error, warn, info, debug\n";

int main(int argc, char **argv)
{
    gateway_options_t options = {.listen = "127.0.0.1:8311"};
    int ready_fd = -1;
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"listen", required_argument, NULL, 'l'},
        {"api-keys", required_argument, NULL, 'k'},
        {"data", required_argument, NULL, 'd'},
        {"web", required_argument, NULL, 'w'},
        {"jurisdiction", required_argument, NULL, 'j'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"ready-fd", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            options.config_path = optarg;
            break;
        case 'n':
            options.name = optarg;
            break;
        case 'l':
            options.listen = optarg;
            break;
        case 'k':
            options.api_keys = optarg;
            break;
        case 'd':
            options.data_dir = optarg;
            break;
        case 'w':
            options.web_dir = optarg;
            break;
        case 'j':
            options.jurisdiction = optarg;
            break;
        case 't':
            options.timeout_ms = atoi(optarg);
            break;
        case 'r':
            ready_fd = atoi(optarg);
            break;
        case 'L': {
            int level = log_parse_level(optarg);
            if (level < 0) {
                fprintf(stderr, "dispatch-gateway: unknown log level '%s'\n", optarg);
                return 2;
            }
            log_set_level((log_level_t)level);
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!options.config_path || !options.api_keys || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    log_init(options.name ? options.name : "gateway");

    /* Every thread inherits this mask; the main thread takes the signals. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    gateway_t *gateway;
    char err[512] = "";
    int rc = gateway_new(&options, &gateway, err, sizeof(err));
    if (rc < 0) {
        log_error("cannot start: %s", err[0] ? err : strerror(-rc));
        return 1;
    }
    char host[64];
    snprintf(host, sizeof(host), "%s", options.listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    if (!host[0] || strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    char url[128];
    snprintf(url, sizeof(url), "http://%s:%u", host, (unsigned)gateway_port(gateway));
    ready_endpoint_t endpoint = {.name = "http", .url = url};
    ready_announce(ready_fd, &endpoint, 1);
    log_info("serving %s (Open311 at /requests.json, metrics at /metrics, screen at /screen)", url);
    int sig = 0;
    sigwait(&stop, &sig);
    log_info("stopping on signal %d", sig);
    gateway_destroy(&gateway);
    return 0;
}
