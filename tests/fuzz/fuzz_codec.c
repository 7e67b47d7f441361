/* Every message a peer or a client decodes that no handler target covers:
 * the replies and deliveries clients read (dispatchctl, unit sessions,
 * followers of the audit stream), the bus's header and ack, and the
 * requests again through the plain decoder. The first byte picks the
 * message; what decodes is masked (as the stream and reports do), written
 * as JSON (as dispatchctl prints it) and encoded again. */
#include <stdio.h>
#include <stdlib.h>

#include "bus.pb-c.h"
#include "codec.h"
#include "dispatch.pb-c.h"
#include "event.h"
#include "fuzz.h"
#include "mask.h"
#include "pbjson.h"

static const ProtobufCMessageDescriptor *const descriptors[] = {
    &dispatch__reply__descriptor,         &dispatch__admin_reply__descriptor,
    &dispatch__audit_reply__descriptor,   &dispatch__replay_reply__descriptor,
    &dispatch__unit_delivery__descriptor, &dispatch__audit_record__descriptor,
    &dispatch__event__descriptor,         &dispatch__bus__bus_header__descriptor,
    &dispatch__bus__bus_ack__descriptor,  &dispatch__request__descriptor,
    &dispatch__admin_request__descriptor, &dispatch__audit_query__descriptor,
    &dispatch__unit_action__descriptor,   &dispatch__ticket__descriptor,
};
#define DESCRIPTOR_COUNT (sizeof(descriptors) / sizeof(descriptors[0]))

static FILE *sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!sink)
        sink = fopen("/dev/null", "w");
    const ProtobufCMessageDescriptor *descriptor = descriptors[data[0] % DESCRIPTOR_COUNT];
    ProtobufCMessage *msg = NULL;
    char err[256];
    if (codec_decode(descriptor, data + 1, size - 1, 256 * 1024, &msg, err, sizeof(err)) == 0) {
        if (sink)
            pbjson_write(sink, msg);
        mask_message(msg, ~0u);
        void *buf = NULL;
        size_t len;
        if (codec_encode(msg, &buf, &len) == 0)
            free(buf);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    if (descriptor == &dispatch__event__descriptor) {
        Dispatch__Event *event = NULL;
        if (event_decode(data + 1, size - 1, &event, err, sizeof(err)) == 0)
            event_free(event);
    }
    return 0;
}
