/* dispatch-bench-e2e: the end-to-end benchmark driver (scripts/bench e2e).
 *
 *   dispatch-bench-e2e [--districts N] [--rate R] [--tickets N] [--connections C]
 *                      [--window W] [--data DIR] [--fsyncs] [--label TEXT]
 *                      [--profile DIR] [--sample-every SECONDS]
 *
 * It starts the real worker set of a generated city (tests/harness/city.c:
 * intake, a router and an escalation per district, the city's audit), every
 * worker durable (LMDB's default: every commit fsynced) and under CURVE,
 * connects the units the tickets go to (each acknowledges what it gets, as
 * `dispatch-unitsim --ack-only` does), subscribes to the audit stream, and
 * offers N SubmitTicket requests open loop: at R tickets/s (R = 0: as fast
 * as the windows allow) over C connections with at most W requests in flight
 * on each. Ports are free ones, asked of the kernel: the run never collides
 * with a city already running (the harness takes ports the kernel reports
 * free, below its ephemeral range).
 *
 * The submit acknowledgement latency runs from the moment the schedule says
 * a request is due (not when it could be sent), so a driver that falls
 * behind shows it in the latency and in "behind schedule"; registration to
 * unit runs from the ticket's registered_at (intake's clock, milliseconds)
 * to the unit's receipt.
 *
 * A submit refused (UNAVAILABLE: the intake's backpressure) is counted as
 * refused and not sent again.
 *
 * --fsyncs counts each worker's fdatasync/fsync/msync calls and all its
 * system calls with perf stat (kernel tracepoints); --profile DIR records each worker with
 * perf record -g into DIR/<worker>.data over the measured span.
 *
 * --sample-every prints each worker's RSS every SECONDS during the run
 * ("rss t=..."), for the memory curve of a long run.
 *
 * Output: a human table and one line "RESULT key=value ..." that
 * scripts/bench reads. Figures, not pass/fail; exit 1 only when the run
 * could not be made (or tickets were lost).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "city.h"
#include "citydata.h"
#include "dispatch.pb-c.h"
#include "harness.h"
#include "unit_session.h"

#define MAX_CONNECTIONS 256
#define MAX_WORKERS 16
#define MAX_UNITS 512

/* Categories routed by street, by the district office or to a city-wide
 * owner: one lead unit, no assisting unit. */
static const char *const bench_categories[] = {
    "sanitation",   "noise",        "street-vending", "greening", "traffic",
    "water-supply", "power-outage", "heating",        "gas",      "telecom",
};
#define BENCH_CATEGORY_COUNT (sizeof(bench_categories) / sizeof(bench_categories[0]))

typedef struct bench_ticket {
    uint8_t district, category, street;
    int64_t due_us;   /* scheduled (rate) or sent (max) */
    int64_t acked_us; /* 0 = not yet */
    uint32_t delivered;
} bench_ticket_t;

typedef struct bench_unit {
    unit_session_t *session;
    char id[64];
    int district;
} bench_unit_t;

typedef struct bench_worker {
    char name[64];
    pid_t pid;
    unsigned long long cpu_ticks_before, cpu_ticks_after;
    unsigned long long write_bytes_before, write_bytes_after;
    long rss_kib, hwm_kib;
    pid_t perf, profile;
    char perf_out[600];
    unsigned long long fsyncs, syscalls;
} bench_worker_t;

typedef struct bench {
    int districts;
    double rate;
    size_t tickets;
    int connections, window;
    const char *data_dir, *label, *profile_dir;
    int sample_every_s; /* RSS lines during the run; 0 = none */
    bool fsyncs;

    city_t *city;
    void *zmq;
    void *submit[MAX_CONNECTIONS];
    int in_flight[MAX_CONNECTIONS];
    void *audit;
    bench_unit_t units[MAX_UNITS];
    int unit_count;
    bench_worker_t workers[MAX_WORKERS];
    int worker_count;
    bench_ticket_t *ticket;

    size_t sent, acked, refused, delivered, delivered_twice, audited, strays;
    int64_t start_us, last_ack_us, last_delivery_us, last_audit_us;
    int64_t behind_max_us;
    uint64_t *ack_latency_us, *unit_latency_us;
    size_t unit_latency_count;
} bench_t;

/* SIGTERM / SIGINT: the run stops and the city is taken down. */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, out);
    fclose(out);
    fclose(f);
    return text;
}

/* ---- per-process figures from /proc ------------------------------------ */

static unsigned long long proc_cpu_ticks(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long utime = 0, stime = 0;
    if (fgets(line, sizeof(line), f)) {
        char *p = strrchr(line, ')');
        /* After the name: state(3) ... utime(14) stime(15). */
        if (p)
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime);
    }
    fclose(f);
    return utime + stime;
}

static unsigned long long proc_write_bytes(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long bytes = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "write_bytes: %llu", &bytes) == 1)
            break;
    if (f)
        fclose(f);
    return bytes;
}

/* VmRSS and VmHWM; RssAnon (the heap, without LMDB's mapped pages) into
 * *anon_kib when not NULL. */
static void proc_rss(pid_t pid, long *rss_kib, long *hwm_kib, long *anon_kib)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        sscanf(line, "VmRSS: %ld", rss_kib);
        sscanf(line, "VmHWM: %ld", hwm_kib);
        if (anon_kib)
            sscanf(line, "RssAnon: %ld", anon_kib);
    }
    if (f)
        fclose(f);
}

/* perf with argv, its output to /dev/null; its pid, or 0. */
static pid_t perf_spawn(char *const argv[])
{
    pid_t child = fork();
    if (child == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp("perf", argv);
        _exit(127);
    }
    return child > 0 ? child : 0;
}

/* fsync-family and all system calls of one process, counted by the
 * kernel's tracepoints through perf stat (attached for the measured span
 * only). */
static void perf_start(bench_worker_t *w, const char *dir)
{
    snprintf(w->perf_out, sizeof(w->perf_out), "%s/perf-%s.csv", dir, w->name);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)w->pid);
    char *argv[] = {"perf",
                    "stat",
                    "-x",
                    ",",
                    "-o",
                    w->perf_out,
                    "-e",
                    "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,"
                    "syscalls:sys_enter_msync,raw_syscalls:sys_enter",
                    "-p",
                    pid,
                    NULL};
    w->perf = perf_spawn(argv);
}

/* perf record -g of one process into <dir>/<worker>.data, for the
 * profiles of BENCHMARKS.md. */
static void profile_start(bench_worker_t *w, const char *dir)
{
    char pid[32], out[700];
    snprintf(pid, sizeof(pid), "%d", (int)w->pid);
    snprintf(out, sizeof(out), "%s/%s.data", dir, w->name);
    char *argv[] = {"perf", "record", "--call-graph", "dwarf,16384", "-F", "499",
                    "-o",   out,      "-p",           pid,           NULL};
    w->profile = perf_spawn(argv);
}

static void perf_stop(bench_worker_t *w)
{
    if (w->profile) {
        int status;
        kill(w->profile, SIGINT);
        waitpid(w->profile, &status, 0);
    }
    if (!w->perf)
        return;
    kill(w->perf, SIGINT);
    int status;
    waitpid(w->perf, &status, 0);
    FILE *f = fopen(w->perf_out, "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long long n;
        if (line[0] == '#' || sscanf(line, "%llu,", &n) != 1)
            continue;
        if (strstr(line, "raw_syscalls:sys_enter"))
            w->syscalls += n;
        else
            w->fsyncs += n;
    }
    if (f)
        fclose(f);
}

/* ---- the city ------------------------------------------------------------ */

static int add_worker(bench_t *b, const char *name)
{
    bench_worker_t *w = &b->workers[b->worker_count++];
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->pid = city_pid(b->city, name);
    return w->pid > 0 ? 0 : -ESRCH;
}

static int start_city(bench_t *b, char **units_csv, char **rules, char **deadlines, char **calendar)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/deadlines.ini", b->data_dir);
    *deadlines = read_text(path);
    snprintf(path, sizeof(path), "%s/calendar.ini", b->data_dir);
    *calendar = read_text(path);
    if (!*deadlines || !*calendar) {
        fprintf(stderr, "bench e2e: no deadlines.ini or calendar.ini in %s\n", b->data_dir);
        return -ENOENT;
    }
    *units_csv = citydata_units_csv();
    for (int d = 0; d < b->districts; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    static const char *files[5];
    files[0] = "deadlines.ini";
    files[1] = *deadlines;
    files[2] = "calendar.ini";
    files[3] = *calendar;
    files[4] = NULL;
    city_options_t options = {
        .districts = citydata_districts,
        .district_count = (size_t)b->districts,
        .units_csv = *units_csv,
        .rules_csv = (const char *const *)rules,
        .escalation = true,
        .escalation_files = files,
        .audit = true,
    };
    int rc = city_new("bench-e2e", &options, &b->city);
    if (rc == 0)
        rc = city_start_all(b->city);
    if (rc < 0)
        return rc;
    rc = add_worker(b, "intake-1");
    for (int d = 0; d < b->districts && rc == 0; d++) {
        char name[64];
        snprintf(name, sizeof(name), "router-%s", citydata_districts[d]);
        rc = add_worker(b, name);
        snprintf(name, sizeof(name), "escalation-%s", citydata_districts[d]);
        if (rc == 0)
            rc = add_worker(b, name);
    }
    if (rc == 0)
        rc = add_worker(b, "audit");
    return rc;
}

static int connect_unit(bench_t *b, int district, const char *unit)
{
    for (int i = 0; i < b->unit_count; i++)
        if (b->units[i].district == district && strcmp(b->units[i].id, unit) == 0)
            return 0;
    if (b->unit_count == MAX_UNITS)
        return -ENOSPC;
    char router[64];
    snprintf(router, sizeof(router), "router-%s", citydata_districts[district]);
    const char *url = city_endpoint(b->city, router, "units");
    auth_client_t keys;
    const auth_client_t *curve;
    int rc = url ? city_keys(b->city, "units", url, &keys, &curve) : -ENOENT;
    bench_unit_t *u = &b->units[b->unit_count];
    if (rc == 0)
        rc = unit_session_new(b->zmq, url, unit, NULL, curve, &u->session);
    if (rc == 0)
        rc = unit_session_start(u->session, 0);
    if (rc < 0)
        return rc;
    snprintf(u->id, sizeof(u->id), "%s", unit);
    u->district = district;
    b->unit_count++;
    return 0;
}

static int connect_clients(bench_t *b)
{
    const char *url = city_endpoint(b->city, "intake-1", "request");
    auth_client_t keys;
    const auth_client_t *curve;
    int rc = url ? city_keys(b->city, "agent-7", url, &keys, &curve) : -ENOENT;
    for (int i = 0; i < b->connections && rc == 0; i++) {
        b->submit[i] = zmq_socket(b->zmq, ZMQ_DEALER);
        int zero = 0, hwm = 0;
        zmq_setsockopt(b->submit[i], ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(b->submit[i], ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(b->submit[i], ZMQ_RCVHWM, &hwm, sizeof(hwm));
        rc = auth_client_apply(b->submit[i], curve);
        if (rc == 0 && zmq_connect(b->submit[i], url) < 0)
            rc = -errno;
    }
    const char *publish = city_endpoint(b->city, "audit", "publish");
    if (rc == 0)
        rc = publish ? city_keys(b->city, "auditor", publish, &keys, &curve) : -ENOENT;
    if (rc == 0) {
        b->audit = zmq_socket(b->zmq, ZMQ_SUB);
        int zero = 0, hwm = 0;
        zmq_setsockopt(b->audit, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(b->audit, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        rc = auth_client_apply(b->audit, curve);
    }
    if (rc == 0 &&
        (zmq_setsockopt(b->audit, ZMQ_SUBSCRIBE, "", 0) < 0 || zmq_connect(b->audit, publish) < 0))
        rc = -errno;
    return rc;
}

/* ---- load ---------------------------------------------------------------- */

static int send_submit(bench_t *b, int connection, size_t index)
{
    bench_ticket_t *t = &b->ticket[index];
    char request_id[32], phone[24], area[64];
    snprintf(request_id, sizeof(request_id), "b-%zu", index);
    snprintf(phone, sizeof(phone), "139%08zu", index);
    citydata_street(area, sizeof(area), citydata_districts[t->district], t->street);
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    submit.client_request_id = request_id;
    submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    submit.kind = DISPATCH__KIND__KIND_COMPLAINT;
    submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    submit.category = (char *)bench_categories[t->category];
    submit.district = (char *)citydata_districts[t->district];
    submit.area = area;
    submit.caller_name = "Wang";
    submit.caller_phone = phone;
    submit.description = "Street light out since Monday, the crossing is dark at night";
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-7";
    request.tag = index + 1;
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit;
    uint8_t body[1024];
    size_t len = dispatch__request__get_packed_size(&request);
    if (len > sizeof(body))
        return -EMSGSIZE;
    dispatch__request__pack(&request, body);
    if (zmq_send(b->submit[connection], "", 0, ZMQ_SNDMORE) < 0 ||
        zmq_send(b->submit[connection], body, len, 0) < 0)
        return -errno;
    return 0;
}

static void read_replies(bench_t *b, int connection)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, b->submit[connection], ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        bool more = zmq_msg_more(&msg);
        if (zmq_msg_size(&msg) == 0 && more) {
            zmq_msg_close(&msg);
            continue; /* the delimiter */
        }
        int64_t now = mono_us();
        Dispatch__Reply *reply =
            dispatch__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!reply)
            continue;
        size_t index = (size_t)reply->tag - 1;
        if (reply->tag >= 1 && index < b->tickets && !b->ticket[index].acked_us) {
            b->in_flight[connection]--;
            if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT) {
                b->ticket[index].acked_us = now;
                uint64_t latency = (uint64_t)(now - b->ticket[index].due_us);
                b->ack_latency_us[b->acked++] = latency;
                b->last_ack_us = now;
            } else {
                b->ticket[index].acked_us = -1;
                b->refused++;
            }
        }
        dispatch__reply__free_unpacked(reply, NULL);
    }
}

static void read_unit(bench_t *b, bench_unit_t *u)
{
    Dispatch__UnitDelivery *d;
    while (unit_session_next(u->session, 0, &d) == 0) {
        int64_t now = mono_us();
        if (d->body_case == DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED && d->dispatched->ticket) {
            const Dispatch__Ticket *t = d->dispatched->ticket;
            size_t index;
            if (sscanf(t->client_request_id, "b-%zu", &index) == 1 && index < b->tickets) {
                if (b->ticket[index].delivered++ == 0) {
                    b->delivered++;
                    int64_t latency = wall_us() - t->registered_at * 1000;
                    b->unit_latency_us[b->unit_latency_count++] =
                        latency > 0 ? (uint64_t)latency : 0;
                    b->last_delivery_us = now;
                } else {
                    b->delivered_twice++;
                }
            } else {
                b->strays++;
            }
        }
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
}

static void read_audit(bench_t *b)
{
    static const char suffix[] = ".ticket_registered";
    for (;;) {
        char topic[160];
        int n = zmq_recv(b->audit, topic, sizeof(topic) - 1, ZMQ_DONTWAIT);
        if (n < 0)
            return;
        int more = 0;
        size_t more_len = sizeof(more);
        zmq_getsockopt(b->audit, ZMQ_RCVMORE, &more, &more_len);
        while (more) {
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            zmq_msg_recv(&msg, b->audit, 0);
            more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
        size_t len = (size_t)n < sizeof(topic) ? (size_t)n : sizeof(topic) - 1;
        if (len >= sizeof(suffix) - 1 &&
            memcmp(topic + len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0) {
            b->audited++;
            b->last_audit_us = mono_us();
        }
    }
}

static int64_t due_at(const bench_t *b, size_t index)
{
    return b->start_us + (int64_t)((double)index * 1e6 / b->rate);
}

/* Sends whatever is due on connections with room; the first connection
 * tried moves on each time. */
static void offer(bench_t *b, int64_t now)
{
    static int next_connection;
    while (b->sent < b->tickets) {
        int64_t due = b->rate > 0 ? due_at(b, b->sent) : now;
        if (due > now)
            return;
        int c = -1;
        for (int k = 0; k < b->connections; k++) {
            int candidate = (next_connection + k) % b->connections;
            if (b->in_flight[candidate] < b->window) {
                c = candidate;
                break;
            }
        }
        if (c < 0)
            return; /* every window full: the schedule slips, and it shows */
        next_connection = (c + 1) % b->connections;
        if (b->rate > 0 && now - due > b->behind_max_us)
            b->behind_max_us = now - due;
        b->ticket[b->sent].due_us = due;
        if (send_submit(b, c, b->sent) < 0)
            return;
        b->in_flight[c]++;
        b->sent++;
    }
}

static bool finished(const bench_t *b)
{
    size_t answered = b->acked + b->refused;
    return b->sent == b->tickets && answered == b->tickets && b->delivered >= b->acked &&
           b->audited >= b->acked;
}

/* One line of every worker's RSS / anonymous RSS (MiB) and the counts so
 * far, for a long run's memory curve. */
static void sample_rss(const bench_t *b, int64_t now)
{
    printf("rss t=%.0fs acked=%zu delivered=%zu", (double)(now - b->start_us) / 1e6, b->acked,
           b->delivered);
    for (int i = 0; i < b->worker_count; i++) {
        long rss = 0, hwm = 0, anon = 0;
        proc_rss(b->workers[i].pid, &rss, &hwm, &anon);
        printf(" %s=%.1f/%.1f", b->workers[i].name, (double)rss / 1024.0, (double)anon / 1024.0);
    }
    printf("\n");
    fflush(stdout);
}

static int run_load(bench_t *b)
{
    size_t count = (size_t)b->connections + (size_t)b->unit_count + 1;
    zmq_pollitem_t *items = calloc(count, sizeof(*items));
    if (!items)
        return -ENOMEM;
    for (int i = 0; i < b->connections; i++)
        items[i] = (zmq_pollitem_t){.socket = b->submit[i], .events = ZMQ_POLLIN};
    for (int i = 0; i < b->unit_count; i++)
        items[b->connections + i] = (zmq_pollitem_t){
            .socket = unit_session_socket(b->units[i].session), .events = ZMQ_POLLIN};
    items[count - 1] = (zmq_pollitem_t){.socket = b->audit, .events = ZMQ_POLLIN};

    b->start_us = mono_us();
    int64_t last_progress = b->start_us, next_sample = b->start_us;
    size_t progress_mark = 0;
    int rc = 0;
    while (!finished(b)) {
        if (stop_requested) {
            rc = -EINTR;
            break;
        }
        int64_t now = mono_us();
        offer(b, now);
        long timeout_ms = 100;
        bool spin = false;
        if (b->rate > 0 && b->sent < b->tickets) {
            int64_t wait = due_at(b, b->sent) - mono_us();
            if (wait < 1000) {
                timeout_ms = 0;
                spin = wait > 0;
            } else {
                timeout_ms = (long)(wait / 1000);
            }
        }
        int n = zmq_poll(items, (int)count, timeout_ms);
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        if (n == 0 && spin) {
            /* Under a millisecond to the next request: a short sleep, not
             * a busy loop (the machine is shared with the workers). */
            struct timespec pause = {0, 100000};
            nanosleep(&pause, NULL);
        }
        for (int i = 0; n > 0 && i < b->connections; i++)
            if (items[i].revents & ZMQ_POLLIN)
                read_replies(b, i);
        for (int i = 0; n > 0 && i < b->unit_count; i++)
            if (items[b->connections + i].revents & ZMQ_POLLIN)
                read_unit(b, &b->units[i]);
        if (n > 0 && (items[count - 1].revents & ZMQ_POLLIN))
            read_audit(b);
        for (int i = 0; i < b->unit_count; i++)
            unit_session_ack_due(b->units[i].session, 1000);
        size_t mark = b->sent + b->acked + b->delivered + b->audited;
        now = mono_us();
        if (b->sample_every_s > 0 && now >= next_sample) {
            sample_rss(b, now);
            next_sample = now + (int64_t)b->sample_every_s * 1000000;
        }
        if (mark != progress_mark) {
            progress_mark = mark;
            last_progress = now;
        } else if (now - last_progress > 30000000) {
            fprintf(stderr,
                    "bench e2e: no progress for 30 s (sent %zu, acked %zu, refused %zu, "
                    "delivered %zu, audited %zu)\n",
                    b->sent, b->acked, b->refused, b->delivered, b->audited);
            rc = -ETIMEDOUT;
            break;
        }
    }
    free(items);
    return rc;
}

/* ---- report -------------------------------------------------------------- */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(uint64_t *values, size_t count, double p)
{
    if (count == 0)
        return 0;
    size_t i = (size_t)(p * (double)(count - 1) + 0.5);
    return (double)values[i] / 1000.0;
}

static double per_second(size_t count, int64_t start, int64_t end)
{
    return end > start ? (double)count * 1e6 / (double)(end - start) : 0;
}

static void report(bench_t *b)
{
    qsort(b->ack_latency_us, b->acked, sizeof(uint64_t), compare_u64);
    qsort(b->unit_latency_us, b->unit_latency_count, sizeof(uint64_t), compare_u64);
    double acked_rate = per_second(b->acked, b->start_us, b->last_ack_us);
    double delivered_rate = per_second(b->delivered, b->start_us, b->last_delivery_us);
    double audited_rate = per_second(b->audited, b->start_us, b->last_audit_us);
    long ticks = sysconf(_SC_CLK_TCK);
    double cpu_total = 0, kib_total = 0;
    unsigned long long fsyncs = 0;
    long rss_total = 0;
    printf("e2e: %d district(s), %zu tickets, %s, %d connections x window %d, every commit "
           "fsynced, CURVE; %d units connected\n",
           b->districts, b->tickets, b->rate > 0 ? "open loop at a fixed rate" : "at maximum",
           b->connections, b->window, b->unit_count);
    if (b->rate > 0)
        printf("offered %.0f/s; behind schedule at most %.1f ms\n", b->rate,
               (double)b->behind_max_us / 1000.0);
    printf("tickets/s: acknowledged %.0f, delivered to units %.0f, recorded in audit %.0f\n",
           acked_rate, delivered_rate, audited_rate);
    printf("refused %zu, delivered twice %zu, strays %zu\n", b->refused, b->delivered_twice,
           b->strays);
    printf("submit ack ms: p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
           percentile_ms(b->ack_latency_us, b->acked, 0.5),
           percentile_ms(b->ack_latency_us, b->acked, 0.99),
           percentile_ms(b->ack_latency_us, b->acked, 0.999),
           percentile_ms(b->ack_latency_us, b->acked, 1.0));
    printf("registration to unit ms: p50 %.2f p99 %.2f p99.9 %.2f\n",
           percentile_ms(b->unit_latency_us, b->unit_latency_count, 0.5),
           percentile_ms(b->unit_latency_us, b->unit_latency_count, 0.99),
           percentile_ms(b->unit_latency_us, b->unit_latency_count, 0.999));
    unsigned long long syscalls = 0;
    printf("%-22s %12s %12s %12s %12s %10s %10s\n", "worker", "cpu s/1000", "fsyncs/tkt",
           "syscalls/tkt", "KiB wr/tkt", "RSS MiB", "peak MiB");
    double n = b->acked ? (double)b->acked : 1;
    for (int i = 0; i < b->worker_count; i++) {
        bench_worker_t *w = &b->workers[i];
        double cpu = (double)(w->cpu_ticks_after - w->cpu_ticks_before) / (double)ticks;
        double kib = (double)(w->write_bytes_after - w->write_bytes_before) / 1024.0;
        cpu_total += cpu;
        kib_total += kib;
        fsyncs += w->fsyncs;
        syscalls += w->syscalls;
        rss_total += w->rss_kib;
        printf("%-22s %12.3f %12.4f %12.1f %12.2f %10.1f %10.1f\n", w->name, cpu * 1000 / n,
               b->fsyncs ? (double)w->fsyncs / n : -1.0, b->fsyncs ? (double)w->syscalls / n : -1.0,
               kib / n, (double)w->rss_kib / 1024.0, (double)w->hwm_kib / 1024.0);
    }
    printf("%-22s %12.3f %12.4f %12.1f %12.2f %10.1f\n", "all workers", cpu_total * 1000 / n,
           b->fsyncs ? (double)fsyncs / n : -1.0, b->fsyncs ? (double)syscalls / n : -1.0,
           kib_total / n, (double)rss_total / 1024.0);
    printf("RESULT label=%s districts=%d rate=%.0f tickets=%zu acked_per_s=%.0f "
           "delivered_per_s=%.0f audited_per_s=%.0f ack_p50_ms=%.3f ack_p99_ms=%.3f "
           "ack_p999_ms=%.3f unit_p50_ms=%.3f unit_p99_ms=%.3f unit_p999_ms=%.3f "
           "cpu_us_per_ticket=%.1f fsyncs_per_ticket=%.4f syscalls_per_ticket=%.1f "
           "kib_per_ticket=%.2f rss_mib=%.1f "
           "behind_ms=%.1f refused=%zu twice=%zu\n",
           b->label, b->districts, b->rate, b->tickets, acked_rate, delivered_rate, audited_rate,
           percentile_ms(b->ack_latency_us, b->acked, 0.5),
           percentile_ms(b->ack_latency_us, b->acked, 0.99),
           percentile_ms(b->ack_latency_us, b->acked, 0.999),
           percentile_ms(b->unit_latency_us, b->unit_latency_count, 0.5),
           percentile_ms(b->unit_latency_us, b->unit_latency_count, 0.99),
           percentile_ms(b->unit_latency_us, b->unit_latency_count, 0.999), cpu_total * 1e6 / n,
           b->fsyncs ? (double)fsyncs / n : -1.0, b->fsyncs ? (double)syscalls / n : -1.0,
           kib_total / n, (double)rss_total / 1024.0, (double)b->behind_max_us / 1000.0, b->refused,
           b->delivered_twice);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    bench_t b = {.districts = 3,
                 .tickets = 20000,
                 .connections = 16,
                 .window = 64,
                 .data_dir = "deploy/data",
                 .label = "dispatch"};
    static const struct option options[] = {
        {"districts", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},
        {"tickets", required_argument, NULL, 'n'},
        {"connections", required_argument, NULL, 'c'},
        {"window", required_argument, NULL, 'w'},
        {"data", required_argument, NULL, 'D'},
        {"fsyncs", no_argument, NULL, 'f'},
        {"label", required_argument, NULL, 'l'},
        {"profile", required_argument, NULL, 'p'},
        {"sample-every", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            b.districts = atoi(optarg);
            break;
        case 'r':
            b.rate = strtod(optarg, NULL);
            break;
        case 'n':
            b.tickets = strtoul(optarg, NULL, 10);
            break;
        case 'c':
            b.connections = atoi(optarg);
            break;
        case 'w':
            b.window = atoi(optarg);
            break;
        case 'D':
            b.data_dir = optarg;
            break;
        case 'f':
            b.fsyncs = true;
            break;
        case 'l':
            b.label = optarg;
            break;
        case 'p':
            b.profile_dir = optarg;
            break;
        case 's':
            b.sample_every_s = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (b.districts < 1 || b.districts > CITYDATA_DISTRICTS || b.connections < 1 ||
        b.connections > MAX_CONNECTIONS || b.window < 1 || b.tickets == 0) {
        fprintf(stderr, "bench e2e: bad option\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    b.ticket = calloc(b.tickets, sizeof(*b.ticket));
    b.ack_latency_us = calloc(b.tickets, sizeof(uint64_t));
    b.unit_latency_us = calloc(b.tickets, sizeof(uint64_t));
    if (!b.ticket || !b.ack_latency_us || !b.unit_latency_us)
        return 1;
    srand(16);
    for (size_t i = 0; i < b.tickets; i++) {
        b.ticket[i].district = (uint8_t)(rand() % b.districts);
        b.ticket[i].category = (uint8_t)(rand() % (int)BENCH_CATEGORY_COUNT);
        b.ticket[i].street = (uint8_t)(1 + rand() % CITYDATA_STREETS);
    }

    b.zmq = zmq_ctx_new();
    char *units_csv = NULL, *rules[CITYDATA_DISTRICTS] = {0}, *deadlines = NULL, *calendar = NULL;
    int rc = start_city(&b, &units_csv, rules, &deadlines, &calendar);
    if (rc < 0)
        fprintf(stderr, "bench e2e: the city did not start (%s)\n", strerror(-rc));
    /* Every unit a ticket goes to, on its district's router. */
    for (size_t i = 0; i < b.tickets && rc == 0; i++) {
        const bench_ticket_t *t = &b.ticket[i];
        char area[64], lead[64], assist[64];
        citydata_street(area, sizeof(area), citydata_districts[t->district], t->street);
        citydata_expected(citydata_districts[t->district], bench_categories[t->category], area,
                          lead, sizeof(lead), assist, sizeof(assist));
        if (lead[0])
            rc = connect_unit(&b, t->district, lead);
    }
    if (rc == 0)
        rc = connect_clients(&b);
    if (rc < 0 && b.city)
        fprintf(stderr, "bench e2e: setting up failed (%s)\n", strerror(-rc));

    char dir[512];
    if (rc == 0 && b.fsyncs && harness_tmpdir("bench-e2e-perf", dir, sizeof(dir)) < 0)
        b.fsyncs = false;
    for (int i = 0; rc == 0 && i < b.worker_count; i++) {
        bench_worker_t *w = &b.workers[i];
        if (b.fsyncs)
            perf_start(w, dir);
        if (b.profile_dir)
            profile_start(w, b.profile_dir);
        w->cpu_ticks_before = proc_cpu_ticks(w->pid);
        w->write_bytes_before = proc_write_bytes(w->pid);
    }
    if (rc == 0)
        rc = run_load(&b);
    for (int i = 0; i < b.worker_count; i++) {
        bench_worker_t *w = &b.workers[i];
        w->cpu_ticks_after = proc_cpu_ticks(w->pid);
        w->write_bytes_after = proc_write_bytes(w->pid);
        proc_rss(w->pid, &w->rss_kib, &w->hwm_kib, NULL);
        perf_stop(w);
    }
    if (b.fsyncs)
        harness_rmtree(dir);
    if (b.acked)
        report(&b);

    for (int i = 0; i < b.unit_count; i++)
        unit_session_destroy(&b.units[i].session);
    for (int i = 0; i < b.connections; i++)
        if (b.submit[i])
            zmq_close(b.submit[i]);
    if (b.audit)
        zmq_close(b.audit);
    city_destroy(&b.city, false);
    zmq_ctx_term(b.zmq);
    free(units_csv);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    free(deadlines);
    free(calendar);
    bool lost = rc == 0 && b.delivered < b.acked;
    free(b.ticket);
    free(b.ack_latency_us);
    free(b.unit_latency_us);
    return rc == 0 && !lost ? 0 : 1;
}
