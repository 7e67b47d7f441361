/* mask: hide a caller's phone number and name wherever the role does not
 * need them (audit stream, reports, logs). DESIGN.md section 6.
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
 *
 * Output: at most len - 1 bytes and a NUL (nothing when len is 0). When out
 * is too small the result is cut short, never in the middle of a UTF-8
 * character, and a cut result reveals no more than the whole one. A NULL
 * input is treated as "".
 */
#ifndef DISPATCH_MASK_H
#define DISPATCH_MASK_H

#include <stddef.h>

void mask_phone(const char *in, char *out, size_t len);
void mask_name(const char *utf8_in, char *out, size_t len);

#endif
