/* ctl_common: what the dispatchctl commands share: the options given before
 * the command, endpoint lookup in the topology, one request/reply call with
 * its exit code, the words the command line uses for enum values, and
 * human-readable output (times, masked callers, aligned tables, text made
 * safe for a terminal).
 *
 * Exit codes (dispatchctl.c's usage text lists them too):
 *   CTL_EXIT_OK           0  done
 *   CTL_EXIT_USAGE        2  usage error (bad option or value, no endpoint, bad topology file)
 *   CTL_EXIT_NOT_FOUND    3  the server says NOT_FOUND
 *   CTL_EXIT_REFUSED      4  the server refused: validation, CONFLICT, FORBIDDEN, BAD_REQUEST
 *   CTL_EXIT_UNAVAILABLE  5  no answer within --timeout, or UNAVAILABLE
 *   CTL_EXIT_INTERNAL     6  INTERNAL, an undecodable or unexpected reply, a local failure
 * A refusal prints the server's Error code and message on stderr.
 */
#ifndef DISPATCH_CTL_COMMON_H
#define DISPATCH_CTL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "config.h"
#include "dispatch.pb-c.h"

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_NOT_FOUND = 3,
    CTL_EXIT_REFUSED = 4,
    CTL_EXIT_UNAVAILABLE = 5,
    CTL_EXIT_INTERNAL = 6,
};

#define CTL_DEFAULT_TIMEOUT_MS 5000
#define CTL_DEFAULT_CONFIG "deploy/topology.example.ini"

/* The options given before the command. */
typedef struct ctl {
    void *zmq;
    config_t *config;        /* NULL when no topology file was read */
    const char *config_path; /* the file config was read from */
    const char *intake_url;  /* --intake, --router, --units: win over the topology */
    const char *router_url;
    const char *units_url;
    const char *district;             /* --district */
    const char *actor;                /* --actor; NULL = the command's default */
    const char *key_path;             /* --key; NULL = <keys_dir>/<actor>.key_secret */
    const char *key_actor;            /* whose key the next call uses; NULL = ctl_actor() */
    auth_client_t curve;              /* filled by ctl_curve() */
    char key_name[AUTH_NAME_MAX + 1]; /* the actor of that key */
    Dispatch__Role role;              /* --role; 0 = the command's default */
    bool json;
    int timeout_ms;
    bool timeout_given;
} ctl_t;

/* --- errors and exit codes --- */

/* Prints "dispatchctl: <message>" and a hint to --help on stderr; returns
 * CTL_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) int ctl_usage_error(const char *format, ...);
/* Prints "dispatchctl: <message>" on stderr and returns `code`. */
__attribute__((format(printf, 2, 3))) int ctl_fail(int code, const char *format, ...);
/* Prints the server's refusal on stderr; returns the exit code of its code. */
int ctl_refused(const Dispatch__Error *error);
/* Exit code for a Dispatch__ErrorCode. */
int ctl_exit_for_error_code(int code);

/* --- endpoints --- */

/* The intake request endpoint: --intake, else the topology's first intake
 * worker with a request endpoint. */
int ctl_intake_url(ctl_t *ctl, const char **url);
/* The router of a district: admin endpoint (`request`) or unit endpoint
 * (`units`). --router / --units win. The district is the first of --district
 * and `district` (the command's own, may be NULL) that is set; without one
 * the topology must have exactly one router. */
int ctl_router_url(ctl_t *ctl, const char *district, const char **url);
int ctl_units_url(ctl_t *ctl, const char *district, const char **url);

/* --- calls --- */

/* One request, one reply, with --timeout. Returns CTL_EXIT_OK and *reply
 * (free with protobuf_c_message_free_unpacked), or an exit code after
 * printing why on stderr. */
int ctl_call(ctl_t *ctl, const char *url, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *reply_descriptor, ProtobufCMessage **reply);
/* Writes msg as one line of JSON on stdout; CTL_EXIT_OK or CTL_EXIT_INTERNAL. */
int ctl_print_json(const ProtobufCMessage *msg);

/* The idempotency key: `given` (--request-id) when not NULL, else a fresh
 * one, "ctl-" and 32 hex digits, written into buf (>= 40 bytes). */
const char *ctl_request_id(const char *given, char *buf, size_t len);
/* After no answer came to a request with an idempotency key: says on
 * stderr that it may have been applied and that the same --request-id
 * never applies it twice. */
void ctl_retry_hint(const char *request_id);
/* Sets the oneof member numbered body_case (its field number, as protobuf-c
 * numbers a oneof's cases) of msg to body: request.body_case and the member
 * in one step. body_case must name a message field of a oneof. */
void ctl_set_body(ProtobufCMessage *msg, int body_case, void *body);
/* The keys for a call to url: NULL (*ret) when the topology says security
 * = plain or there is none; else the key of --key, or of key_actor when the
 * keys dir has it, else of ctl_actor(); and the public key of the worker of
 * the topology that serves url. key_name gets the key's actor. A usage
 * error when either key is missing. */
int ctl_curve(ctl_t *ctl, const char *url, const auth_client_t **ret);

/* --actor, else $DISPATCH_ACTOR, else $USER, else `fallback`. */
const char *ctl_actor(const ctl_t *ctl, const char *fallback);
/* The actor a Request to the intake at url names: under CURVE the key is
 * the actor, so only an explicit --actor (a gateway key's agent) is named;
 * plain, ctl_actor(). */
const char *ctl_intake_actor(ctl_t *ctl, const char *url);

/* --- following a stream (tail, unit watch) --- */

/* SIGINT and SIGTERM end the follow; with --timeout it fails when nothing
 * came for that long. */
typedef struct ctl_follow {
    const ctl_t *ctl;
    const char *what;    /* what comes: "record", "delivery" */
    int64_t quiet_until; /* CLOCK_MONOTONIC ms */
} ctl_follow_t;

void ctl_follow_start(ctl_follow_t *self, const ctl_t *ctl, const char *what);
/* True once SIGINT or SIGTERM came. */
bool ctl_follow_stopped(void);
/* How long to wait for the next item, at most max_ms: CTL_EXIT_OK and
 * *wait_ms, or CTL_EXIT_UNAVAILABLE after printing that none came within
 * --timeout. */
int ctl_follow_wait(ctl_follow_t *self, int max_ms, int *wait_ms);
/* An item came: the quiet time starts again. */
void ctl_follow_seen(ctl_follow_t *self);

/* --- a command's options, as a table --- */

typedef enum ctl_option_kind {
    CTL_OPTION_TEXT,  /* const char *: the argument as given */
    CTL_OPTION_TRUE,  /* protobuf_c_boolean: 1; no argument */
    CTL_OPTION_FALSE, /* protobuf_c_boolean: 0; no argument */
    CTL_OPTION_WORD,  /* int (an enum field): a word of the enum `words` (ctl_parse_word) */
    CTL_OPTION_LONG,  /* long: a whole number in [min, max] (ctl_parse_long) */
    CTL_OPTION_CHECK, /* check("--name", arg, value): 0, or -EINVAL after printing why */
} ctl_option_kind_t;

typedef struct ctl_option {
    const char *name; /* without the leading "--" */
    ctl_option_kind_t kind;
    void *value; /* where the option goes */
    const ProtobufCEnumDescriptor *words;
    long min, max;
    int (*check)(const char *option, const char *arg, void *value);
} ctl_option_t;

/* A CHECK for an option the command refuses: prints value (the message) as
 * a usage error. */
int ctl_option_refused(const char *option, const char *arg, void *value);

/* Parses a command's options (argv[0] is the command's word) in argv
 * order. A command that takes no positional argument gives its name
 * (`command`, "" for none) to refuse one ("submit: unexpected argument
 * 'x'"); else command is NULL and *first is where they start. CTL_EXIT_OK,
 * or CTL_EXIT_USAGE after printing why (getopt names an unknown option). */
int ctl_parse_options(int argc, char **argv, const ctl_option_t *options, size_t count,
                      const char *command, int *first);

/* The number of entries of an array. */
#define CTL_COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Parses text as a word of the enum (common/words.h): 0 and *value, or
 * -EINVAL after printing the accepted words (a usage error). */
int ctl_parse_word(const ProtobufCEnumDescriptor *descriptor, const char *option, const char *text,
                   int *value);
/* Parses a decimal in [min, max]; -EINVAL after printing a usage error. */
int ctl_parse_long(const char *option, const char *text, long min, long max, long *value);
/* Splits "a,b,c" into a malloc'ed array of malloc'ed strings (empty items
 * dropped); free with ctl_free_list. -EINVAL above max items. */
int ctl_split_list(const char *option, const char *text, size_t max, char ***items, size_t *count);
void ctl_free_list(char **items, size_t count);

/* --- human output --- */

/* The name of an enum value without its prefix ("DISPATCHED" for
 * TICKET_STATE_DISPATCHED), "-" for 0 when zero_dash, "?" when unknown. */
const char *ctl_enum_name(const ProtobufCEnumDescriptor *descriptor, int value, bool zero_dash);
/* The same, lower case with '_' kept ("ticket_dispatched"), into buf. */
const char *ctl_enum_lower(const ProtobufCEnumDescriptor *descriptor, int value, char *buf,
                           size_t len);
/* "2026-11-25 09:00:00" in the display time zone, "-" for 0. */
const char *ctl_time(int64_t unix_ms, char *buf, size_t len);
/* Makes text safe to print on one line: control characters become ' ',
 * invalid UTF-8 becomes '?'; cut (on a character boundary) to fit buf. */
const char *ctl_clean(const char *text, char *buf, size_t len);
/* Prints possibly multi-line text: each line cleaned, lines after the first
 * indented by `indent` spaces. Ends with a newline. */
void ctl_print_block(FILE *out, const char *text, int indent);
/* Caller name and phone, masked unless the role is operator. */
void ctl_print_caller(const ctl_t *ctl, FILE *out, const char *name, const char *phone,
                      bool confidential);
/* Columns of terminal cells the UTF-8 text takes (wide East Asian = 2). */
size_t ctl_display_width(const char *text);

/* An aligned text table: rows of cleaned cells, printed with columns padded
 * to their widest cell; the last column is not padded. */
typedef struct ctl_table ctl_table_t;
int ctl_table_new(size_t columns, const char *const *headers, ctl_table_t **ret);
void ctl_table_destroy(ctl_table_t **self);
/* Adds a row of `columns` cells (NULL = "-"); the cells are copied. */
int ctl_table_add(ctl_table_t *self, const char *const *cells);
void ctl_table_print(const ctl_table_t *self, FILE *out);

/* --- commands (ctl_intake.c, ctl_admin.c, ctl_unit.c) --- */

int ctl_cmd_submit(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_get(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_callback(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_triage(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_registry(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_rule(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_unit(ctl_t *ctl, int argc, char **argv);
/* links, links accept (ctl_links.c). */
int ctl_cmd_links(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_keys(ctl_t *ctl, int argc, char **argv); /* ctl_keys.c */
/* "unit list": argv[0] is "list" (ctl_admin.c). */
int ctl_list_unit_queue(ctl_t *ctl, int argc, char **argv);

/* The admin endpoint call every admin command makes: an AdminRequest with
 * body (of body_case) and actor_id and role (the command's defaults when
 * --actor / --role are not given), sent to url; prints the JSON reply when
 * --json, and turns an Error reply into its exit code. On CTL_EXIT_OK
 * *reply is the AdminReply. */
int ctl_admin_call(ctl_t *ctl, const char *url, Dispatch__AdminRequest__BodyCase body_case,
                   void *body, const char *default_actor, Dispatch__Role default_role,
                   Dispatch__AdminReply **reply);

/* The queue page as a table (triage list, unit list). */
void ctl_print_queue(const Dispatch__QueueView *queue, bool with_unit);

#endif
