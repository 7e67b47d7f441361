/* hosts-wire: the switch of the hosts test, with the faults of a wide-area
 * link on every port.
 *
 *   hosts-wire --port IFNAME... [--delay-ms N] [--jitter-ms N] [--loss PERCENT]
 *              [--seed N] [--ready-fd N]
 *
 * It runs in the switch's network namespace, where each host's veth pair
 * has its other end (IFNAME). It learns which MAC address is behind which
 * port, as a bridge does, and forwards every frame after delay +- jitter
 * milliseconds (uniform, drawn per frame: frames overtake each other, so the
 * link reorders) unless it drops it (loss percent). It is what `tc qdisc add
 * ... netem delay 50ms 20ms loss 2%` on every port of a bridge would do,
 * for kernels built without netem. A port whose link is down (`ip link set
 * IFNAME down`) neither sends nor receives: that cuts its host off.
 *
 * Frames are read and written with their virtio-net header (PACKET_VNET_HDR),
 * so a veth's checksum offload and segmentation pass through unchanged.
 * "ready" on --ready-fd once every port is open; SIGTERM ends it and the
 * counters go to stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WIRE_MAX_PORTS 16
#define WIRE_MAX_MACS 256
#define WIRE_FRAME_MAX (65536 + 64)
#define WIRE_VNET_HDR 10 /* struct virtio_net_hdr */

typedef struct port {
    char name[IFNAMSIZ];
    int fd;
    uint64_t received, sent, dropped;
} port_t;

typedef struct frame {
    int64_t due_us;
    uint64_t order; /* ties: first in, first out */
    int from;
    size_t len;
    unsigned char *data; /* vnet header + Ethernet frame */
} frame_t;

typedef struct mac_entry {
    unsigned char mac[ETH_ALEN];
    int port;
} mac_entry_t;

static port_t ports[WIRE_MAX_PORTS];
static int port_count;
static frame_t *heap;
static size_t heap_len, heap_cap;
static mac_entry_t macs[WIRE_MAX_MACS];
static size_t mac_count;
static volatile sig_atomic_t stopping;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool earlier(const frame_t *a, const frame_t *b)
{
    return a->due_us < b->due_us || (a->due_us == b->due_us && a->order < b->order);
}

static int heap_push(frame_t frame)
{
    if (heap_len == heap_cap) {
        size_t cap = heap_cap ? heap_cap * 2 : 1024;
        frame_t *grown = realloc(heap, cap * sizeof(*heap));
        if (!grown)
            return -ENOMEM;
        heap = grown;
        heap_cap = cap;
    }
    size_t i = heap_len++;
    heap[i] = frame;
    while (i > 0 && earlier(&heap[i], &heap[(i - 1) / 2])) {
        frame_t t = heap[i];
        heap[i] = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    return 0;
}

static frame_t heap_pop(void)
{
    frame_t top = heap[0];
    heap[0] = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && earlier(&heap[l], &heap[m]))
            m = l;
        if (r < heap_len && earlier(&heap[r], &heap[m]))
            m = r;
        if (m == i)
            break;
        frame_t t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
    return top;
}

static void learn(const unsigned char *mac, int port)
{
    if (mac[0] & 1)
        return; /* a group address is nobody's */
    for (size_t i = 0; i < mac_count; i++) {
        if (memcmp(macs[i].mac, mac, ETH_ALEN) == 0) {
            macs[i].port = port; /* a host moved: the newest port wins */
            return;
        }
    }
    if (mac_count < WIRE_MAX_MACS) {
        memcpy(macs[mac_count].mac, mac, ETH_ALEN);
        macs[mac_count++].port = port;
    }
}

static int port_of(const unsigned char *mac)
{
    if (mac[0] & 1)
        return -1;
    for (size_t i = 0; i < mac_count; i++)
        if (memcmp(macs[i].mac, mac, ETH_ALEN) == 0)
            return macs[i].port;
    return -1;
}

static int open_port(port_t *port)
{
    unsigned index = if_nametoindex(port->name);
    if (index == 0)
        return -errno;
    port->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (port->fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(port->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
        return -errno;
#ifdef PACKET_IGNORE_OUTGOING
    setsockopt(port->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
#endif
    struct sockaddr_ll address = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = (int)index,
    };
    if (bind(port->fd, (struct sockaddr *)&address, sizeof(address)) < 0)
        return -errno;
    return 0;
}

static void send_to(int to, const frame_t *frame)
{
    if (send(ports[to].fd, frame->data, frame->len, MSG_DONTWAIT) < 0)
        ports[to].dropped++; /* link down, or its queue full: lost, as on a wire */
    else
        ports[to].sent++;
}

static void deliver(const frame_t *frame)
{
    const unsigned char *ethernet = frame->data + WIRE_VNET_HDR;
    int to = port_of(ethernet);
    if (to >= 0) {
        if (to != frame->from)
            send_to(to, frame);
        return;
    }
    for (int i = 0; i < port_count; i++)
        if (i != frame->from)
            send_to(i, frame);
}

/* Uniform in [0, 1). */
static double draw(void)
{
    return (double)random() / ((double)RAND_MAX + 1.0);
}

static void on_signal(int sig)
{
    stopping = 1;
}

int main(int argc, char **argv)
{
    long delay_ms = 50, jitter_ms = 20, ready_fd = -1;
    double loss = 2.0;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    static const struct option options[] = {
        {"port", required_argument, NULL, 'p'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"jitter-ms", required_argument, NULL, 'j'},
        {"loss", required_argument, NULL, 'l'},
        {"seed", required_argument, NULL, 's'},
        {"ready-fd", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (port_count == WIRE_MAX_PORTS) {
                fprintf(stderr, "hosts-wire: at most %d ports\n", WIRE_MAX_PORTS);
                return 2;
            }
            snprintf(ports[port_count++].name, IFNAMSIZ, "%s", optarg);
            break;
        case 'd':
            delay_ms = strtol(optarg, NULL, 10);
            break;
        case 'j':
            jitter_ms = strtol(optarg, NULL, 10);
            break;
        case 'l':
            loss = strtod(optarg, NULL);
            break;
        case 's':
            seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            ready_fd = strtol(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (port_count < 2 || jitter_ms > delay_ms || loss < 0 || loss > 100) {
        fprintf(stderr, "usage: hosts-wire --port IF --port IF... [--delay-ms N] [--jitter-ms N "
                        "(<= delay)] [--loss PERCENT] [--seed N] [--ready-fd N]\n");
        return 2;
    }
    srandom(seed);
    for (int i = 0; i < port_count; i++) {
        int rc = open_port(&ports[i]);
        if (rc < 0) {
            fprintf(stderr, "hosts-wire: port %s: %s\n", ports[i].name, strerror(-rc));
            return 1;
        }
    }
    struct sigaction action = {.sa_handler = on_signal};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    if (ready_fd >= 0) {
        if (write((int)ready_fd, "ready\n", 6) != 6)
            return 1;
        close((int)ready_fd);
    }

    static unsigned char buf[WIRE_FRAME_MAX];
    struct pollfd fds[WIRE_MAX_PORTS];
    uint64_t order = 0, lost = 0;
    while (!stopping) {
        int64_t now = now_us();
        while (heap_len > 0 && heap[0].due_us <= now) {
            frame_t frame = heap_pop();
            deliver(&frame);
            free(frame.data);
        }
        int wait = heap_len > 0 ? (int)((heap[0].due_us - now + 999) / 1000) : 1000;
        for (int i = 0; i < port_count; i++)
            fds[i] = (struct pollfd){.fd = ports[i].fd, .events = POLLIN};
        if (poll(fds, (nfds_t)port_count, wait) <= 0)
            continue;
        for (int i = 0; i < port_count; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            for (int burst = 0; burst < 64; burst++) {
                struct sockaddr_ll from;
                socklen_t from_len = sizeof(from);
                ssize_t got =
                    recvfrom(ports[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);
                if (got < 0)
                    break;
                if (from.sll_pkttype == PACKET_OUTGOING ||
                    got < WIRE_VNET_HDR + (ssize_t)sizeof(struct ether_header))
                    continue;
                ports[i].received++;
                learn(buf + WIRE_VNET_HDR + ETH_ALEN, i);
                if (draw() * 100.0 < loss) {
                    lost++;
                    continue;
                }
                frame_t frame = {.from = i, .len = (size_t)got, .order = order++};
                double offset = (2.0 * draw() - 1.0) * (double)jitter_ms;
                frame.due_us = now_us() + (int64_t)(((double)delay_ms + offset) * 1000.0);
                frame.data = malloc((size_t)got);
                if (!frame.data)
                    continue;
                memcpy(frame.data, buf, (size_t)got);
                if (heap_push(frame) < 0)
                    free(frame.data);
            }
        }
    }
    for (int i = 0; i < port_count; i++)
        fprintf(stderr, "hosts-wire: %s received %llu, sent %llu, unsendable %llu\n", ports[i].name,
                (unsigned long long)ports[i].received, (unsigned long long)ports[i].sent,
                (unsigned long long)ports[i].dropped);
    fprintf(stderr, "hosts-wire: %llu frames lost on purpose\n", (unsigned long long)lost);
    return 0;
}
