#include "hosts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define HOSTS_MAX 15
#define HOSTS_RUN_DIR "/run/netns"

typedef struct host {
    char name[32];
    char netns[48];
    char address[16];
} host_t;

struct hosts {
    host_t hosts[HOSTS_MAX];
    size_t count;
    char switch_netns[48];
    harness_proc_t *wire;
};

/* The one set of hosts of this process, for the exit and signal paths. */
static hosts_t *current;

static const char *ip_program(void)
{
    return harness_program("IP_BIN", "/sbin/ip");
}

/* Runs ip with the words of a line; its exit code (127: could not run). */
static int ip(bool quiet, const char *format, ...) __attribute__((format(printf, 2, 3)));
static int ip(bool quiet, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    const char *argv[32];
    size_t argc = 0;
    argv[argc++] = ip_program();
    for (char *word = strtok(line, " "); word && argc < 31; word = strtok(NULL, " "))
        argv[argc++] = word;
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return 127;
    if (pid == 0) {
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, STDERR_FILENO);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

/* Kills what still runs in a namespace, then removes it. */
static void remove_netns(const char *netns)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/%.250s", HOSTS_RUN_DIR, netns);
    if (access(path, F_OK) != 0)
        return;
    /* "ip netns pids" lists them; a test's own workers are already gone
     * unless it died. */
    int pipefd[2];
    if (pipe(pipefd) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            dup2(pipefd[1], STDOUT_FILENO);
            close(pipefd[0]);
            close(pipefd[1]);
            execl(ip_program(), ip_program(), "netns", "pids", netns, (char *)NULL);
            _exit(127);
        }
        close(pipefd[1]);
        FILE *out = fdopen(pipefd[0], "r");
        char line[32];
        while (out && fgets(line, sizeof(line), out)) {
            pid_t victim = (pid_t)strtol(line, NULL, 10);
            if (victim > 1 && victim != getpid())
                kill(victim, SIGKILL);
        }
        if (out)
            fclose(out);
        else
            close(pipefd[0]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    ip(true, "netns del %s", netns);
}

/* Namespaces "dh<pid>-..." of runs whose process is gone. */
static void remove_stale(void)
{
    DIR *dir = opendir(HOSTS_RUN_DIR);
    if (!dir)
        return;
    char names[64][256];
    size_t count = 0;
    for (struct dirent *entry; (entry = readdir(dir)) && count < 64;) {
        long pid;
        int used = 0;
        if (sscanf(entry->d_name, "dh%ld-%n", &pid, &used) != 1 || used == 0)
            continue;
        if (pid == getpid() || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
            continue;
        snprintf(names[count++], sizeof(names[0]), "%.200s", entry->d_name);
    }
    closedir(dir);
    for (size_t i = 0; i < count; i++)
        remove_netns(names[i]);
}

void hosts_destroy(hosts_t **self)
{
    hosts_t *hosts = *self;
    if (!hosts)
        return;
    if (hosts->wire) {
        harness_stop(hosts->wire, 5000);
        harness_destroy(&hosts->wire);
    }
    for (size_t i = 0; i < hosts->count; i++)
        remove_netns(hosts->hosts[i].netns);
    remove_netns(hosts->switch_netns);
    if (current == hosts)
        current = NULL;
    free(hosts);
    *self = NULL;
}

static void destroy_current(void)
{
    hosts_destroy(&current);
}

static void on_signal(int sig)
{
    destroy_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int setup(hosts_t *hosts, const hosts_faults_t *faults, char *why, size_t why_len)
{
    if (ip(false, "netns add %s", hosts->switch_netns) != 0) {
        snprintf(why, why_len, "ip netns add %s failed (not root, or no network namespaces)",
                 hosts->switch_netns);
        return -EPERM;
    }
    if (ip(false, "-n %s link set lo up", hosts->switch_netns) != 0) {
        snprintf(why, why_len, "lo of the switch namespace");
        return -EIO;
    }
    for (size_t i = 0; i < hosts->count; i++) {
        const host_t *h = &hosts->hosts[i];
        if (ip(false, "netns add %s", h->netns) != 0 ||
            ip(false, "-n %s link add p%zu type veth peer name eth0 netns %s", hosts->switch_netns,
               i + 1, h->netns) != 0 ||
            ip(false, "-n %s addr add %s/24 dev eth0", h->netns, h->address) != 0 ||
            ip(false, "-n %s link set eth0 up", h->netns) != 0 ||
            ip(false, "-n %s link set lo up", h->netns) != 0 ||
            ip(false, "-n %s link set p%zu up", hosts->switch_netns, i + 1) != 0) {
            snprintf(why, why_len, "host %s: a namespace, veth pair or address failed", h->name);
            return -EIO;
        }
    }
    char delay[24], jitter[24], loss[24], port_names[HOSTS_MAX][8];
    snprintf(delay, sizeof(delay), "%d", faults->delay_ms);
    snprintf(jitter, sizeof(jitter), "%d", faults->jitter_ms);
    snprintf(loss, sizeof(loss), "%g", faults->loss_percent);
    const char *argv[16 + 2 * HOSTS_MAX];
    size_t argc = 0;
    argv[argc++] = ip_program();
    argv[argc++] = "netns";
    argv[argc++] = "exec";
    argv[argc++] = hosts->switch_netns;
    argv[argc++] = harness_program("HOSTS_WIRE", "tests/hosts/hosts-wire");
    for (size_t i = 0; i < hosts->count; i++) {
        snprintf(port_names[i], sizeof(port_names[i]), "p%zu", i + 1);
        argv[argc++] = "--port";
        argv[argc++] = port_names[i];
    }
    argv[argc++] = "--delay-ms";
    argv[argc++] = delay;
    argv[argc++] = "--jitter-ms";
    argv[argc++] = jitter;
    argv[argc++] = "--loss";
    argv[argc++] = loss;
    argv[argc] = NULL;
    int rc = harness_spawn(argv, false, &hosts->wire);
    if (rc == 0)
        rc = harness_wait_ready(hosts->wire, 10000);
    if (rc < 0)
        snprintf(why, why_len, "hosts-wire did not start: %s", strerror(-rc));
    return rc;
}

int hosts_new(const char *const *names, size_t count, const hosts_faults_t *faults, hosts_t **ret,
              char *why, size_t why_len)
{
    if (count > HOSTS_MAX || current)
        return -EINVAL;
    hosts_t *hosts = calloc(1, sizeof(*hosts));
    if (!hosts)
        return -ENOMEM;
    remove_stale();
    long pid = (long)getpid();
    snprintf(hosts->switch_netns, sizeof(hosts->switch_netns), "dh%ld-switch", pid);
    for (size_t i = 0; i < count; i++) {
        host_t *h = &hosts->hosts[i];
        snprintf(h->name, sizeof(h->name), "%s", names[i]);
        snprintf(h->netns, sizeof(h->netns), "dh%ld-%s", pid, names[i]);
        snprintf(h->address, sizeof(h->address), "10.77.0.%zu", i + 1);
    }
    hosts->count = count;
    current = hosts;
    static bool hooked;
    if (!hooked) {
        atexit(destroy_current);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        hooked = true;
    }
    int rc = setup(hosts, faults, why, why_len);
    if (rc < 0) {
        hosts_destroy(&hosts);
        return rc;
    }
    *ret = hosts;
    return 0;
}

static const host_t *find(const hosts_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->hosts[i].name, name) == 0)
            return &self->hosts[i];
    return NULL;
}

const char *hosts_netns(const hosts_t *self, const char *name)
{
    const host_t *h = find(self, name);
    return h ? h->netns : NULL;
}

const char *hosts_address(const hosts_t *self, const char *name)
{
    const host_t *h = find(self, name);
    return h ? h->address : NULL;
}

int hosts_link(hosts_t *self, const char *name, bool up)
{
    const host_t *h = find(self, name);
    if (!h)
        return -ENOENT;
    return ip(false, "-n %s link set p%ld %s", self->switch_netns, (long)(h - self->hosts) + 1,
              up ? "up" : "down") == 0
               ? 0
               : -EIO;
}

int hosts_block(hosts_t *self, const char *a, const char *b, bool blocked)
{
    const host_t *ha = find(self, a), *hb = find(self, b);
    if (!ha || !hb)
        return -ENOENT;
    const char *verb = blocked ? "add" : "del";
    bool ok = ip(false, "-n %s route %s blackhole %s/32", ha->netns, verb, hb->address) == 0;
    ok = ip(false, "-n %s route %s blackhole %s/32", hb->netns, verb, ha->address) == 0 && ok;
    return ok ? 0 : -EIO;
}

int hosts_enter(const hosts_t *self, const char *name)
{
    const host_t *h = find(self, name);
    if (!h)
        return -ENOENT;
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", HOSTS_RUN_DIR, h->netns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}
