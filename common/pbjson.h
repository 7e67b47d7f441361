/* pbjson: any protobuf-c message as JSON, by walking its descriptor.
 *
 * The output follows the proto3 JSON mapping, with these choices:
 *   - field names are the names written in the .proto file (snake_case,
 *     "caller_phone"), not lowerCamelCase; proto3 JSON parsers accept both;
 *   - a field at its default (0, "", false, enum value 0, empty list, absent
 *     message) is left out; a oneof member is written only when it is the
 *     chosen one, and then even at its default; proto2 `optional` fields are
 *     written when their has_ flag is set, proto2 `required` ones always;
 *   - enums as the name of their value ("TICKET_STATE_DISPATCHED"); a value
 *     the enum does not declare as its number;
 *   - int64, sint64, sfixed64, uint64, fixed64 as decimal strings; 32-bit
 *     integers as numbers; float and double as numbers, non-finite ones as
 *     "NaN", "Infinity", "-Infinity";
 *   - bytes as standard base64 with padding;
 *   - repeated fields as arrays, nested messages as objects (map fields,
 *     which protobuf-c holds as repeated entry messages, as arrays of
 *     {"key":..,"value":..} objects);
 *   - strings: '"', '\' and control characters escaped (\n, \t, \u001b,
 *     ...); valid UTF-8 is written as is; a byte that is not part of valid
 *     UTF-8 is written as \ufffd, so the output is always valid JSON.
 * Everything is written on one line, without spaces, and without a final
 * newline; fields in the order of the descriptor (field number order).
 */
#ifndef DISPATCH_PBJSON_H
#define DISPATCH_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

/* Writes msg to out. Returns 0, -EINVAL when msg is NULL, or -EIO when
 * writing to out failed (ferror). */
int pbjson_write(FILE *out, const ProtobufCMessage *msg);

/* Writes one JSON string literal (quotes included) for len bytes of text,
 * escaped as above. */
void pbjson_write_string(FILE *out, const char *text, size_t len);

#endif
