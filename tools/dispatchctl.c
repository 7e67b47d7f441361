/* dispatchctl: the command line of operators, dispatchers, supervisors,
 * units and administrators (DESIGN.md section 1; docs/protocol.md).
 *
 *   dispatchctl [--config FILE] [--intake URL] [--router URL] [--units URL]
 *               [--district D] [--actor ID] [--key FILE] [--role ROLE] [--json]
 *               [--timeout MS] COMMAND ...
 *
 * The commands (USAGE below has them all) are in ctl_intake.c (submit, get,
 * callback), ctl_admin.c (triage, registry, rule, unit list), ctl_links.c
 * (links) and ctl_unit.c (unit actions, unit watch); ctl_common.c has what
 * they share.
 *
 * Endpoints come from the topology file (--config, default
 * deploy/topology.example.ini when it exists): the first intake's `request`;
 * the router of --district (or of the command's district, or the only
 * router): `request` is its admin endpoint, `units` its unit endpoint.
 * --intake, --router and --units win over the file.
 *
 * Keys (topology [city] security = curve, the default): every call is
 * made with --key FILE, else <keys_dir>/<actor>.key_secret (the actor of
 * --actor, $DISPATCH_ACTOR or $USER; for unit commands the unit), to the
 * key of the worker that serves the endpoint. `keys` (ctl_keys.c) makes,
 * lists and revokes the city's keys.
 *
 * Output: human-readable by default (a ticket with its history as a
 * timeline; aligned tables for lists); --json prints the server's reply as
 * one line of JSON (common/pbjson.h: proto field names, enums by name,
 * 64-bit integers as strings). Caller name and phone are masked in human
 * output unless --role operator; --json prints what the server returned.
 *
 * Exit codes:
 *   0  done
 *   2  usage error: unknown command or option, bad value, no endpoint, bad topology file
 *   3  not found (the server's NOT_FOUND)
 *   4  refused: validation (BAD_REQUEST, TOO_LARGE, MISSING_FIELD, OUT_OF_RANGE,
 *      INVALID_UTF8, INVALID_PHONE), CONFLICT, FORBIDDEN; code and message on stderr
 *   5  unavailable: no answer within --timeout (default 5000 ms), or UNAVAILABLE
 *   6  internal error: INTERNAL, an undecodable or unexpected reply, a local failure
 *
 * submit, callback and the unit actions carry an idempotency key: --request-id,
 * or a generated one ("ctl-" and 32 random hex digits). When no answer came,
 * the key is printed: the same command with that --request-id is applied at
 * most once.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl_audit.h"
#include "ctl_common.h"
#include "ids.h"

static const char usage_text[] =
    "usage: dispatchctl [--config FILE] [--intake URL] [--router URL] [--units URL]\n"
    "                   [--district D] [--actor ID] [--key FILE]\n"
    "                   [--role operator|dispatcher|supervisor|leader|unit|admin]\n"
    "                   [--json] [--timeout MS] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  submit --channel C --kind K --urgency U --district D [--category C] [--area A]\n"
    "         [--address TEXT] [--lat X --lon Y] [--caller-name N] [--phone P]\n"
    "         [--confidential] [--description TEXT] [--answered --answer TEXT]\n"
    "         [--transfer-to 110|119|120|122] [--request-id ID]\n"
    "      C: phone wechat web open311 message-board proactive reception-day\n"
    "      K: consult help complaint report suggestion;  U: normal urgent\n"
    "  get TICKET [--code LOOKUP_CODE]   (with the caller's code: the public view, masked)\n"
    "  callback TICKET --satisfaction satisfied|basically|unsatisfied\n"
    "         [--solved|--not-solved] [--unreachable] [--comment TEXT] [--request-id ID]\n"
    "      (solved unless --not-solved)\n"
    "  triage list [--limit N] [--after TICKET]\n"
    "  triage assign TICKET --unit U [--assist U1,U2] [--note TEXT]\n"
    "  unit list --unit U [--limit N] [--after TICKET]\n"
    "  unit sign-for|progress|resolve|return|object|extend TICKET --unit U\n"
    "         [--text T] [--result solved|partly|not-solved|explained]\n"
    "         [--reason-code not-our-duty|wrong-area|wrong-level|insufficient-info|\n"
    "                        duplicate|other]\n"
    "         [--reason T] [--suggest U] [--days N] [--request-id ID]\n"
    "      sign-for [--text]; progress --text; resolve --result --text;\n"
    "      return|object --reason-code --reason [--suggest]; extend --days --reason\n"
    "  unit watch --unit U [--count N]\n"
    "      the unit's main session: prints deliveries as they come and acks them;\n"
    "      with --timeout, exits 5 when none comes for that long\n"
    "  registry upsert --id U --name N --level L [--parent P] [--district D] [--inactive]\n"
    "      L: city district street community bureau enterprise\n"
    "  registry remove --id U\n"
    "  rule upsert --category C [--area A] --lead U [--assist U1,U2] [--priority N]\n"
    "         [--district D]\n"
    "  rule remove --category C [--area A] [--district D]\n"
    "  audit verify [--state DIR | --remote] [--from N]\n"
    "      checks the audit's hash chain (the store read-only, or --remote asks the\n"
    "      worker); exit 1 names the first broken record\n"
    "  audit history TICKET\n"
    "  tail [--from N] [--district D] [--count N]\n"
    "      the audit stream, masked, in order, gaps filled by replay\n"
    "  kpi [--by unit|district|category|city] [--period day|month|quarter]\n"
    "      [--at YYYY-MM-DD] [--key K] [--json|--csv]      (docs/kpi.md)\n"
    "  report [--period day|month|quarter] [--at YYYY-MM-DD] [--top N] [--json|--csv]\n"
    "      the special report: top categories, share of all tickets, trend\n"
    "      (audit commands: --audit URL, tail also --publish URL; else the topology)\n"
    "  links [--worker NAME]\n"
    "      the bus links of every worker of the topology (or of NAME; --router URL: that\n"
    "      admin endpoint): up/down, last heard, outbox, lag, diverged, incarnations\n"
    "  links accept WORKER PEER\n"
    "      WORKER accepts the incarnation PEER now presents on a diverged link (a state\n"
    "      dir reset or renamed): what is left is delivered once (protocol.md 3.1)\n"
    "  keys new NAME --kind worker|unit|unit-gateway|person|gateway [--roles R1,R2]\n"
    "         [--unit U] [--worker W]\n"
    "      R: operator dispatcher supervisor leader unit admin auditor\n"
    "  keys list\n"
    "  keys revoke NAME      (running workers refuse the key within a second)\n"
    "\n"
    "keys: with the topology's security = curve (the default) every call uses --key\n"
    "FILE, else <keys_dir>/<actor>.key_secret (unit commands: the unit's key);\n"
    "keys_dir: [city] keys_dir, else keys/ beside the topology file.\n"
    "\n"
    "endpoints: --intake, --router (admin), --units (unit endpoint), else the topology\n"
    "file (--config; default " CTL_DEFAULT_CONFIG " when it exists):\n"
    "the first intake, and the router of --district (or of the command's district).\n"
    "\n"
    "--actor: default $DISPATCH_ACTOR, else $USER (unit commands: the unit id).\n"
    "--role: default per command (dispatcher for triage, unit for unit, admin for\n"
    "registry and rule). Caller name and phone are shown in full only with\n"
    "--role operator; --json prints the reply as the server sent it.\n"
    "\n"
    "exit codes:\n"
    "  0 done\n"
    "  1 audit verify: the chain is broken\n"
    "  2 usage error (bad option or value, no endpoint, bad topology file)\n"
    "  3 not found\n"
    "  4 refused: validation, conflict, forbidden (code and message on stderr)\n"
    "  5 unavailable, or no answer within --timeout (default 5000 ms)\n"
    "  6 internal error\n";

enum {
    OPT_CONFIG = 256,
    OPT_INTAKE,
    OPT_ROUTER,
    OPT_UNITS,
    OPT_DISTRICT,
    OPT_ACTOR,
    OPT_KEY,
    OPT_ROLE,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_HELP,
};

static const struct {
    const char *name;
    int (*run)(ctl_t *ctl, int argc, char **argv);
} commands[] = {
    {"submit", ctl_cmd_submit}, {"get", ctl_cmd_get},           {"callback", ctl_cmd_callback},
    {"triage", ctl_cmd_triage}, {"registry", ctl_cmd_registry}, {"rule", ctl_cmd_rule},
    {"unit", ctl_cmd_unit},     {"audit", ctl_cmd_audit},       {"tail", ctl_cmd_tail},
    {"kpi", ctl_cmd_kpi},       {"report", ctl_cmd_report},     {"links", ctl_cmd_links},
    {"keys", ctl_cmd_keys},
};

/* Parses the options before the command into ctl; *command_index is where
 * the command starts. Returns CTL_EXIT_OK, a usage error, or -1 after --help. */
static int parse_global_options(int argc, char **argv, ctl_t *ctl, int *command_index)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"intake", required_argument, NULL, OPT_INTAKE},
        {"router", required_argument, NULL, OPT_ROUTER},
        {"units", required_argument, NULL, OPT_UNITS},
        {"district", required_argument, NULL, OPT_DISTRICT},
        {"actor", required_argument, NULL, OPT_ACTOR},
        {"key", required_argument, NULL, OPT_KEY},
        {"role", required_argument, NULL, OPT_ROLE},
        {"json", no_argument, NULL, OPT_JSON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int opt, role;
    long timeout;
    /* "+": stop at the command; its options are its own. */
    while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_CONFIG:
            ctl->config_path = optarg;
            break;
        case OPT_INTAKE:
            ctl->intake_url = optarg;
            break;
        case OPT_ROUTER:
            ctl->router_url = optarg;
            break;
        case OPT_UNITS:
            ctl->units_url = optarg;
            break;
        case OPT_DISTRICT:
            ctl->district = optarg;
            break;
        case OPT_ACTOR:
            ctl->actor = optarg;
            break;
        case OPT_KEY:
            ctl->key_path = optarg;
            break;
        case OPT_ROLE:
            if (ctl_parse_word(&dispatch__role__descriptor, "--role", optarg, &role) < 0)
                return CTL_EXIT_USAGE;
            ctl->role = role;
            break;
        case OPT_JSON:
            ctl->json = true;
            break;
        case OPT_TIMEOUT:
            if (ctl_parse_long("--timeout", optarg, 1, 3600000, &timeout) < 0)
                return CTL_EXIT_USAGE;
            ctl->timeout_ms = (int)timeout;
            ctl->timeout_given = true;
            break;
        case 'h':
        case OPT_HELP:
            fputs(usage_text, stdout);
            return -1;
        default:
            return CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return ctl_usage_error("no command given");
    *command_index = optind;
    return CTL_EXIT_OK;
}

/* Reads the topology file when one is named or the default exists, and
 * shows times in the city's time zone. */
static int load_topology(ctl_t *ctl)
{
    if (!ctl->config_path) {
        if (access(CTL_DEFAULT_CONFIG, R_OK) != 0)
            return CTL_EXIT_OK;
        ctl->config_path = CTL_DEFAULT_CONFIG;
    }
    char err[512];
    int rc = config_load(ctl->config_path, &ctl->config, err, sizeof(err));
    if (rc < 0)
        return ctl_usage_error("cannot read the topology: %s", err);
    const char *tz = config_timezone(ctl->config);
    if (!getenv("TZ") && ids_check_timezone(tz) == 0) {
        setenv("TZ", tz, 1);
        tzset();
    }
    return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
    ctl_t ctl = {.timeout_ms = CTL_DEFAULT_TIMEOUT_MS};
    int command_index = 0;
    int rc = parse_global_options(argc, argv, &ctl, &command_index);
    if (rc < 0)
        return CTL_EXIT_OK;
    if (rc != CTL_EXIT_OK)
        return rc;
    const char *name = argv[command_index];
    int (*run)(ctl_t *, int, char **) = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            run = commands[i].run;
    if (!run)
        return ctl_usage_error("unknown command '%s'", name);
    rc = load_topology(&ctl);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl.zmq = zmq_ctx_new();
    if (!ctl.zmq) {
        config_destroy(&ctl.config);
        return ctl_fail(CTL_EXIT_INTERNAL, "cannot start ZeroMQ");
    }
    rc = run(&ctl, argc - command_index, argv + command_index);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "cannot write the output");
    zmq_ctx_term(ctl.zmq);
    config_destroy(&ctl.config);
    return rc;
}
