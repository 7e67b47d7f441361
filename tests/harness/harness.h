/* harness: real worker processes for integration and crash tests.
 *
 * harness_spawn() starts a program with "--ready-fd N" appended (and
 * "--progress-fd M" when asked), harness_wait_ready() blocks on that pipe
 * until the process writes "ready" (never a timer), and endpoints it
 * announced are read back with harness_endpoint(). Processes are stopped
 * with SIGKILL or SIGTERM and always reaped.
 */
#ifndef DISPATCH_HARNESS_H
#define DISPATCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct harness_proc harness_proc_t;

/* argv is NULL-terminated; argv[0] is a path. want_progress adds a second
 * pipe for the process's progress lines. */
int harness_spawn(const char *const argv[], bool want_progress, harness_proc_t **ret);
/* 0 when "ready" arrived, -ETIMEDOUT, or -ECHILD when the process died. */
int harness_wait_ready(harness_proc_t *proc, int timeout_ms);
const char *harness_endpoint(const harness_proc_t *proc, const char *name);
pid_t harness_pid(const harness_proc_t *proc);

/* Reads one progress line (without newline) into buf. 1 = a line, 0 = none
 * within timeout_ms, -EPIPE when the process closed it (exited). */
int harness_progress_line(harness_proc_t *proc, char *buf, size_t len, int timeout_ms);

/* Sends sig and reaps the process; returns its wait status. */
int harness_kill(harness_proc_t *proc, int sig);
/* SIGTERM, then SIGKILL if it has not exited within timeout_ms; reaps and
 * returns the wait status. */
int harness_stop(harness_proc_t *proc, int timeout_ms);
/* Waits for the process to exit by itself, up to timeout_ms (-ETIMEDOUT). */
int harness_wait_exit(harness_proc_t *proc, int timeout_ms, int *status);
/* Kills (SIGKILL) if still running, reaps, frees. */
void harness_destroy(harness_proc_t **proc);

/* The whole of a file as a NUL-terminated text (malloc'ed; the caller
 * frees it), or NULL when it cannot be read. */
char *harness_read_text(const char *path);

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and durations. */
int64_t harness_now_ms(void);

/* "tcp://127.0.0.1:PORT" with a port free when asked, below the kernel's
 * ephemeral range (20000..31999). A worker restarted on the port it had
 * must find it free: in the ephemeral range, a client reconnecting to the
 * dead port can get that very port as its own local port and connect to
 * itself (TCP simultaneous open), taking it from the restart. */
int harness_tcp_endpoint(char *buf, size_t len);

/* A fresh directory under $TMPDIR (or /tmp), for state dirs. */
int harness_tmpdir(const char *tag, char *buf, size_t len);
/* rm -rf of a directory made by harness_tmpdir. */
int harness_rmtree(const char *path);

/* Path of a built program, from the environment variable named env (set
 * by meson), or fallback. */
const char *harness_program(const char *env, const char *fallback);

#endif
