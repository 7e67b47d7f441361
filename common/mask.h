/* mask: hide a caller's personal data wherever the role does not need it
 * (audit stream, reports, logs; address and free text in public views).
 * DESIGN.md section 6, docs/protocol.md section 7.2.
 *
 * What is revealed, at most:
 *   - phone: with 11 or more digits the first 3 and the last 4
 *     ("13812341234" -> "138****1234"); with fewer, the last 2, and never
 *     more than half of the digits ("88881234" -> "******34", "12" -> "*2").
 *     Never more than 7 digits. Each hidden digit becomes one '*'; the
 *     separators + - ( ) . and space stay; any other character (letters,
 *     full-width digits, bytes that are not UTF-8) becomes one '*' per
 *     character, so nothing but the kept digits can leak.
 *   - name: the first character when it is a printable UTF-8 character;
 *     every other character (code point, or byte that is not UTF-8) becomes
 *     one '*' ("张三丰" -> "张**", "Maria Lopez" -> "M**********").
 *     Leading and trailing ASCII whitespace is dropped first.
 *   - address: the first 6 characters, and never more than half of them,
 *     for the city and district a public view may show
 *     ("北京市朝阳区建国路88号" -> "北京市朝阳区******",
 *     "12 Main Street" -> "12 Mai********"); a kept character that is not
 *     printable UTF-8 becomes '*', and so does every further character.
 *     Leading and trailing ASCII whitespace is dropped first.
 *   - text (free text): its length only: every character becomes one '*'.
 *     Leading and trailing ASCII whitespace is dropped first.
 *
 * Output: at most len - 1 bytes and a NUL (nothing when len is 0). When out
 * is too small the result is cut short, never in the middle of a UTF-8
 * character, and a cut result reveals no more than the whole one. A NULL
 * input is treated as "". The whole result is never longer than the input,
 * so a buffer of strlen(in) + 1 bytes always holds it.
 *
 * Which fields of a message hold which kind of personal data is written in
 * proto/dispatch.proto ("personal: <kind>" on the field's line), and the
 * build turns it into personal_fields.h, which mask_message() walks by.
 */
#ifndef DISPATCH_MASK_H
#define DISPATCH_MASK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "personal_fields.h"

void mask_phone(const char *in, char *out, size_t len);
void mask_name(const char *utf8_in, char *out, size_t len);
void mask_address(const char *utf8_in, char *out, size_t len);
void mask_text(const char *utf8_in, char *out, size_t len);
/* The mask of one kind (one bit of personal_kind_t); "" for any other. */
void mask_as(personal_kind_t kind, const char *utf8_in, char *out, size_t len);

/* Masks in place, in msg and every sub-message at any depth, each string
 * field marked personal with a kind in `kinds` (a set of personal_kind_t
 * bits, e.g. PERSONAL_PHONE | PERSONAL_NAME), and drops every unknown field
 * (a field this build does not know cannot be masked). Other fields are left
 * as they are, whatever their names.
 *
 * msg must be writable all through, as one from protobuf_c_message_unpack()
 * is: a masked string is rewritten in its own buffer (the result is never
 * longer), and the unknown fields are freed with free(), so msg must have
 * been unpacked with the default allocator. Never fails: when a long text
 * cannot get its scratch buffer, every byte of it becomes '*'. */
void mask_message(ProtobufCMessage *msg, unsigned kinds);

#endif
