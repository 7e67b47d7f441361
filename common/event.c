#include "event.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "store.h"

int event_next_id(MDB_txn *txn, MDB_dbi meta, const char *origin, const bus_t *bus,
                  char id[EVENT_ID_SIZE])
{
    uint64_t next;
    int rc = store_get_u64(txn, meta, "event.next", 10, 1, &next);
    if (rc == 0)
        rc = store_put_u64(txn, meta, "event.next", 10, next + 1);
    if (rc < 0)
        return rc;
    if (!bus) {
        snprintf(id, EVENT_ID_SIZE, "%s-%llu", origin, (unsigned long long)next);
        return 0;
    }
    const unsigned char *incarnation = bus_incarnation(bus);
    snprintf(id, EVENT_ID_SIZE, "%s-%02x%02x%02x%02x-%llu", origin, incarnation[0], incarnation[1],
             incarnation[2], incarnation[3], (unsigned long long)next);
    return 0;
}

int event_send(bus_t *bus, MDB_txn *txn, bus_link_t *const *links, size_t link_count,
               const Dispatch__Event *event)
{
    void *body = NULL;
    size_t len;
    int rc = codec_encode(&event->base, &body, &len);
    for (size_t i = 0; rc == 0 && i < link_count; i++)
        if (links[i])
            rc = bus_send(bus, txn, links[i], body, len);
    free(body);
    return rc;
}

Dispatch__Event__BodyCase event_set_body(Dispatch__Event *event, ProtobufCMessage *message)
{
    const ProtobufCMessageDescriptor *events = &dispatch__event__descriptor;
    for (unsigned i = 0; i < events->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &events->fields[i];
        if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            field->descriptor == message->descriptor) {
            memcpy((char *)event + field->offset, &message, sizeof(message));
            event->body_case = (Dispatch__Event__BodyCase)field->id;
            return event->body_case;
        }
    }
    return DISPATCH__EVENT__BODY__NOT_SET;
}

int event_decode(const void *body, size_t len, Dispatch__Event **ret, char *err, size_t err_len)
{
    return codec_decode(&dispatch__event__descriptor, body, len, EVENT_MAX_SIZE,
                        (ProtobufCMessage **)ret, err, err_len);
}

void event_free(Dispatch__Event *event)
{
    if (event)
        protobuf_c_message_free_unpacked(&event->base, NULL);
}

const char *event_name(const Dispatch__Event *event)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(&dispatch__event__descriptor, event->body_case);
    return field ? field->name : "unknown";
}
