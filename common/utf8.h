/* utf8: strict UTF-8 decoding, one character at a time.
 *
 * Strict as protobuf requires of strings: no overlong forms, no UTF-16
 * surrogates (U+D800..U+DFFF), nothing past U+10FFFF. Used wherever text
 * is checked (codec), cut (refusals, masks) or shown (JSON, terminals).
 */
#ifndef DISPATCH_UTF8_H
#define DISPATCH_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 character at p, of the `left` bytes
 * there; 0 when they do not start one (left 0 included). *code_point (may
 * be NULL) receives it. */
size_t utf8_char(const unsigned char *p, size_t left, uint32_t *code_point);

/* True when the len bytes at s are valid UTF-8 throughout. */
bool utf8_valid(const char *s, size_t len);

#endif
