/* The bus's receiving side: what arrives on a worker's bus endpoint, frame
 * by frame (BusHeader, then the body), through a real ROUTER socket
 * (inproc), into a batch applied by audit's bus handler and acknowledged.
 *
 * An input is one or more messages (cut at SCRATCH_SEPARATOR); a message's
 * first byte picks the sender's routing id (intake-1, router-cy,
 * escalation-cy), the rest is its frames, cut at BUS_FRAME_SEPARATOR. Each
 * input gets a new bus on audit's store (same committed state, no memory
 * of the inputs before) and its batch is aborted. The senders' sockets
 * stay: a socket closed is destroyed later by ZeroMQ's reaper thread, and
 * four new ones per input outran it (1023 sockets, "Too many open files",
 * after 144,000 inputs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "audit.h"
#include "fuzz.h"
#include "scratch.h"

#define BUS_FRAME_SEPARATOR "\xfa\xce\xb0\x0c"
#define BUS_FRAME_SEPARATOR_LEN 4
#define SENDERS 3

static const char *const senders[SENDERS] = {"intake-1", "router-cy", "escalation-cy"};

typedef struct run {
    scratch_city_t *city;
    void *const *dealers;
    size_t sent;
} run_t;

static void *dealers[SENDERS];

static void dealers_open(void *zmq)
{
    for (size_t i = 0; i < SENDERS; i++) {
        dealers[i] = zmq_socket(zmq, ZMQ_DEALER);
        int linger = 0;
        zmq_setsockopt(dealers[i], ZMQ_LINGER, &linger, sizeof(linger));
        zmq_setsockopt(dealers[i], ZMQ_ROUTING_ID, senders[i], strlen(senders[i]));
    }
}

/* The acks of the input before, or its frames never read. */
static void dealers_drain(void)
{
    for (size_t i = 0; i < SENDERS; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        while (zmq_msg_recv(&msg, dealers[i], ZMQ_DONTWAIT) >= 0)
            ;
        zmq_msg_close(&msg);
    }
}

static void send_message(const uint8_t *data, size_t size, void *ctx)
{
    run_t *run = ctx;
    if (size < 1)
        return;
    void *socket = run->dealers[data[0] % SENDERS];
    const uint8_t *start = data + 1, *end = data + size;
    for (;;) {
        const uint8_t *cut =
            memmem(start, (size_t)(end - start), BUS_FRAME_SEPARATOR, BUS_FRAME_SEPARATOR_LEN);
        if (!cut) {
            zmq_send(socket, start, (size_t)(end - start), ZMQ_DONTWAIT);
            break;
        }
        zmq_send(socket, start, (size_t)(cut - start), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        start = cut + BUS_FRAME_SEPARATOR_LEN;
    }
    run->sent++;
}

static int batch_apply(MDB_txn *txn, void *ctx)
{
    bus_t *bus = ctx;
    int rc = bus_batch_apply(bus, txn);
    return rc < 0 ? rc : -ECANCELED; /* never commit: the next input starts the same */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long inputs;
    scratch_city_t *city = scratch_city();
    bus_t *bus;
    int rc = bus_new(city->zmq, city->audit.store, "audit", NULL, &bus);
    if (rc < 0) {
        fprintf(stderr, "bus: %s\n", store_strerror(rc));
        abort();
    }
    char url[64];
    snprintf(url, sizeof(url), "inproc://fuzz-bus-%lu", inputs++);
    if ((rc = bus_listen(bus, url, audit_apply_event, city->audit_app)) < 0) {
        fprintf(stderr, "bus listen: %s\n", strerror(-rc));
        abort();
    }
    if (!dealers[0])
        dealers_open(city->zmq);
    run_t run = {.city = city, .dealers = dealers};
    for (size_t i = 0; i < SENDERS; i++)
        zmq_connect(dealers[i], url);
    scratch_split(data, size, send_message, &run);

    /* What was sent is queued on the inproc pipes already: drain it all. */
    int64_t now = bus_now_ms();
    for (int round = 0; round < 64; round++) {
        zmq_pollitem_t items[16];
        size_t count = bus_pollitems(bus, items, 16);
        zmq_poll(items, (int)count, 0);
        if (bus_drain(bus, now) < 0)
            break;
        bool ready = bus_batch_ready(bus);
        rc = ready ? store_write(city->audit.store, batch_apply, bus) : 0;
        bus_batch_done(bus, rc);
        bus_tick(bus, now);
        if (!ready)
            break;
    }
    for (size_t i = 0; i < SENDERS; i++)
        zmq_disconnect(dealers[i], url);
    dealers_drain();
    bus_destroy(&bus);
    return 0;
}
