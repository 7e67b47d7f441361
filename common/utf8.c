/* utf8: see utf8.h. */
#include "utf8.h"

size_t utf8_char(const unsigned char *p, size_t left, uint32_t *code_point)
{
    if (left == 0)
        return 0;
    unsigned char c = p[0];
    size_t need;
    uint32_t min, cp;
    if (c < 0x80) {
        need = 0, min = 0, cp = c;
    } else if ((c & 0xe0) == 0xc0) {
        need = 1, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        need = 2, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        need = 3, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (left <= need)
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    if (code_point)
        *code_point = cp;
    return need + 1;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n = utf8_char(p, (size_t)(end - p), NULL);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}
