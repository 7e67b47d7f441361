#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_MAX_ENDPOINTS 16
#define HARNESS_BUF 8192

typedef struct line_reader {
    int fd;
    char buf[HARNESS_BUF];
    size_t len;
} line_reader_t;

struct harness_proc {
    pid_t pid;
    bool reaped;
    int status;
    line_reader_t ready, progress;
    size_t endpoint_count;
    char *endpoint_names[HARNESS_MAX_ENDPOINTS];
    char *endpoint_urls[HARNESS_MAX_ENDPOINTS];
};

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *harness_read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = len < 0 ? NULL : malloc((size_t)len + 1);
    if (text)
        text[fread(text, 1, (size_t)len, f)] = '\0';
    fclose(f);
    return text;
}

int harness_spawn(const char *const argv[], bool want_progress, harness_proc_t **ret)
{
    harness_proc_t *proc = calloc(1, sizeof(*proc));
    if (!proc)
        return -ENOMEM;
    int ready[2], progress[2] = {-1, -1};
    if (pipe2(ready, O_CLOEXEC) < 0 || (want_progress && pipe2(progress, O_CLOEXEC) < 0)) {
        free(proc);
        return -errno;
    }
    size_t argc = 0;
    while (argv[argc])
        argc++;
    char ready_arg[16], progress_arg[16];
    snprintf(ready_arg, sizeof(ready_arg), "%d", ready[1]);
    snprintf(progress_arg, sizeof(progress_arg), "%d", progress[1]);
    const char **args = calloc(argc + 5, sizeof(*args));
    memcpy(args, argv, argc * sizeof(*args));
    args[argc++] = "--ready-fd";
    args[argc++] = ready_arg;
    if (want_progress) {
        args[argc++] = "--progress-fd";
        args[argc++] = progress_arg;
    }

    pid_t pid = fork();
    if (pid == 0) {
        /* The child keeps only its own ends, without close-on-exec. */
        fcntl(ready[1], F_SETFD, 0);
        if (want_progress)
            fcntl(progress[1], F_SETFD, 0);
        execv(args[0], (char *const *)args);
        fprintf(stderr, "harness: exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    free(args);
    close(ready[1]);
    if (want_progress)
        close(progress[1]);
    if (pid < 0) {
        close(ready[0]);
        if (want_progress)
            close(progress[0]);
        free(proc);
        return -errno;
    }
    proc->pid = pid;
    proc->ready.fd = ready[0];
    proc->progress.fd = want_progress ? progress[0] : -1;
    *ret = proc;
    return 0;
}

/* Reads a line from reader; 1 = line in out, 0 = timeout, -EPIPE = EOF. */
static int read_line(line_reader_t *reader, char *out, size_t out_len, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        char *newline = memchr(reader->buf, '\n', reader->len);
        if (newline) {
            size_t line_len = (size_t)(newline - reader->buf);
            snprintf(out, out_len, "%.*s", (int)line_len, reader->buf);
            reader->len -= line_len + 1;
            memmove(reader->buf, newline + 1, reader->len);
            return 1;
        }
        if (reader->fd < 0)
            return -EPIPE;
        int wait = (int)(deadline - harness_now_ms());
        if (wait < 0)
            return 0;
        struct pollfd pfd = {.fd = reader->fd, .events = POLLIN};
        int n = poll(&pfd, 1, wait);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        if (reader->len == sizeof(reader->buf))
            reader->len = 0; /* an absurd line: drop it */
        ssize_t got =
            read(reader->fd, reader->buf + reader->len, sizeof(reader->buf) - reader->len);
        if (got <= 0) {
            close(reader->fd);
            reader->fd = -1;
            if (reader->len == 0)
                return -EPIPE;
            reader->buf[reader->len++] = '\n'; /* the last, unterminated line */
            continue;
        }
        reader->len += (size_t)got;
    }
}

int harness_wait_ready(harness_proc_t *proc, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    char line[1024];
    for (;;) {
        int rc = read_line(&proc->ready, line, sizeof(line), (int)(deadline - harness_now_ms()));
        if (rc == 0)
            return -ETIMEDOUT;
        if (rc < 0)
            return -ECHILD;
        if (strcmp(line, "ready") == 0)
            return 0;
        char name[256], url[512];
        if (sscanf(line, "endpoint %255s %511s", name, url) == 2 &&
            proc->endpoint_count < HARNESS_MAX_ENDPOINTS) {
            proc->endpoint_names[proc->endpoint_count] = strdup(name);
            proc->endpoint_urls[proc->endpoint_count] = strdup(url);
            proc->endpoint_count++;
        }
    }
}

const char *harness_endpoint(const harness_proc_t *proc, const char *name)
{
    for (size_t i = 0; i < proc->endpoint_count; i++)
        if (strcmp(proc->endpoint_names[i], name) == 0)
            return proc->endpoint_urls[i];
    return NULL;
}

pid_t harness_pid(const harness_proc_t *proc)
{
    return proc->pid;
}

int harness_progress_line(harness_proc_t *proc, char *buf, size_t len, int timeout_ms)
{
    return read_line(&proc->progress, buf, len, timeout_ms);
}

static int reap(harness_proc_t *proc, int options)
{
    if (proc->reaped)
        return 1;
    pid_t got;
    do
        got = waitpid(proc->pid, &proc->status, options);
    while (got < 0 && errno == EINTR);
    if (got == proc->pid)
        proc->reaped = true;
    return got == proc->pid ? 1 : (got < 0 ? -errno : 0);
}

int harness_kill(harness_proc_t *proc, int sig)
{
    if (!proc->reaped)
        kill(proc->pid, sig);
    reap(proc, 0);
    return proc->status;
}

int harness_wait_exit(harness_proc_t *proc, int timeout_ms, int *status)
{
    /* The process closes its pipes when it exits: wait on them, then reap. */
    char line[256];
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (proc->ready.fd >= 0 && harness_now_ms() < deadline)
        read_line(&proc->ready, line, sizeof(line), (int)(deadline - harness_now_ms()));
    while (proc->progress.fd >= 0 && harness_now_ms() < deadline)
        read_line(&proc->progress, line, sizeof(line), (int)(deadline - harness_now_ms()));
    if (proc->ready.fd >= 0 || proc->progress.fd >= 0)
        return -ETIMEDOUT;
    int rc = reap(proc, 0);
    if (rc < 0)
        return rc;
    if (status)
        *status = proc->status;
    return 0;
}

int harness_stop(harness_proc_t *proc, int timeout_ms)
{
    if (proc->reaped)
        return proc->status;
    kill(proc->pid, SIGTERM);
    int status;
    if (harness_wait_exit(proc, timeout_ms, &status) == 0)
        return status;
    return harness_kill(proc, SIGKILL);
}

void harness_destroy(harness_proc_t **self)
{
    harness_proc_t *proc = *self;
    if (!proc)
        return;
    harness_kill(proc, SIGKILL);
    if (proc->ready.fd >= 0)
        close(proc->ready.fd);
    if (proc->progress.fd >= 0)
        close(proc->progress.fd);
    for (size_t i = 0; i < proc->endpoint_count; i++) {
        free(proc->endpoint_names[i]);
        free(proc->endpoint_urls[i]);
    }
    free(proc);
    *self = NULL;
}

int harness_tcp_endpoint(char *buf, size_t len)
{
    enum { FIRST = 20000, COUNT = 12000 };
    static int next = -1;
    if (next < 0)
        next = (int)((unsigned)getpid() * 7919u % COUNT); /* apart from parallel tests */
    for (int tries = 0; tries < COUNT; tries++) {
        int port = FIRST + next;
        next = (next + 1) % COUNT;
        int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -errno;
        struct sockaddr_in address = {
            .sin_family = AF_INET,
            .sin_port = htons((uint16_t)port),
            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        bool free_now = bind(probe, (struct sockaddr *)&address, sizeof(address)) == 0;
        close(probe);
        if (free_now) {
            snprintf(buf, len, "tcp://127.0.0.1:%d", port);
            return 0;
        }
    }
    return -EADDRINUSE;
}

int harness_tmpdir(const char *tag, char *buf, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/dispatch-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    return mkdtemp(buf) ? 0 : -errno;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int harness_rmtree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

const char *harness_program(const char *env, const char *fallback)
{
    const char *path = getenv(env);
    return path && *path ? path : fallback;
}
