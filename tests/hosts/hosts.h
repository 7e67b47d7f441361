/* hosts: machines for the hosts test, made of network namespaces.
 *
 * hosts_new() makes one namespace per host ("dh<pid>-<host>") and one for
 * the switch ("dh<pid>-switch"); each host has an eth0 with 10.77.0.<n>/24
 * whose veth peer ("p<n>") is a port of the switch, and lo. The switch is
 * hosts-wire (wire.c): a learning bridge that delays every frame by delay
 * +- jitter ms and drops loss percent of them, on every port for the whole
 * run. Nothing is created in the namespace the test was started in, and no
 * traffic reaches it.
 *
 * Every namespace is removed by hosts_destroy(), and also when the process
 * exits or is ended by SIGTERM / SIGINT before that (meson's timeout);
 * namespaces a killed earlier run left behind (its pid gone) are removed by
 * the next hosts_new(), their processes killed.
 */
#ifndef DISPATCH_HOSTS_H
#define DISPATCH_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hosts hosts_t;

typedef struct hosts_faults {
    int delay_ms, jitter_ms;
    double loss_percent;
} hosts_faults_t;

/* -EPERM (or another negative errno) when namespaces cannot be made here;
 * *why says what failed. */
int hosts_new(const char *const *names, size_t count, const hosts_faults_t *faults, hosts_t **ret,
              char *why, size_t why_len);
void hosts_destroy(hosts_t **self);

/* The namespace of a host ("dh<pid>-<name>") and its address; NULL when
 * there is no such host. */
const char *hosts_netns(const hosts_t *self, const char *name);
const char *hosts_address(const hosts_t *self, const char *name);

/* Sets the host's switch port down (cut off: nothing in or out) or up. */
int hosts_link(hosts_t *self, const char *name, bool up);

/* Cuts the two hosts off from each other (a blackhole route to the other's
 * address on each side), or joins them again; their other links stay. */
int hosts_block(hosts_t *self, const char *a, const char *b, bool blocked);

/* Moves the calling process (before it has threads) into the host's
 * namespace: its sockets are that host's. */
int hosts_enter(const hosts_t *self, const char *name);

#endif
