#include "csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct csv {
    FILE *file;
    unsigned long line;
    char raw[CSV_LINE_MAX + 2];
    char fields[CSV_LINE_MAX + 1];
};

int csv_open(const char *path, csv_t **ret)
{
    csv_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->file = fopen(path, "r");
    if (!self->file) {
        int rc = -errno;
        free(self);
        return rc;
    }
    *ret = self;
    return 0;
}

void csv_destroy(csv_t **self)
{
    if (!*self)
        return;
    if ((*self)->file)
        fclose((*self)->file);
    free(*self);
    *self = NULL;
}

unsigned long csv_line(const csv_t *self)
{
    return self->line;
}

/* Reads one physical line without its end; 1, 0 at EOF, or < 0. */
static int read_line(csv_t *self, size_t *len, char *err, size_t err_len)
{
    if (!fgets(self->raw, sizeof(self->raw), self->file)) {
        if (ferror(self->file)) {
            snprintf(err, err_len, "line %lu: read error", self->line + 1);
            return -EIO;
        }
        return 0;
    }
    self->line++;
    size_t n = strlen(self->raw);
    if (n > 0 && self->raw[n - 1] == '\n')
        n--;
    else if (!feof(self->file)) {
        snprintf(err, err_len, "line %lu: longer than %d bytes", self->line, CSV_LINE_MAX);
        return -E2BIG;
    }
    if (n > 0 && self->raw[n - 1] == '\r')
        n--;
    self->raw[n] = '\0';
    if (memchr(self->raw, '\0', n)) {
        snprintf(err, err_len, "line %lu: NUL byte", self->line);
        return -EINVAL;
    }
    *len = n;
    return 1;
}

/* Splits raw into NUL-terminated fields stored one after the other. */
static int split(csv_t *self, size_t len, const char **fields, size_t *count, char *err,
                 size_t err_len)
{
    const char *in = self->raw, *end = self->raw + len;
    char *out = self->fields;
    size_t n = 0;
    for (;;) {
        if (n == CSV_FIELDS_MAX) {
            snprintf(err, err_len, "line %lu: more than %d fields", self->line, CSV_FIELDS_MAX);
            return -E2BIG;
        }
        fields[n++] = out;
        if (in < end && *in == '"') {
            in++;
            for (;;) {
                if (in == end) {
                    snprintf(err, err_len, "line %lu: field %zu: unterminated quote", self->line,
                             n);
                    return -EINVAL;
                }
                if (*in == '"') {
                    if (in + 1 < end && in[1] == '"') {
                        *out++ = '"';
                        in += 2;
                        continue;
                    }
                    in++;
                    break;
                }
                *out++ = *in++;
            }
            if (in < end && *in != ',') {
                snprintf(err, err_len, "line %lu: field %zu: text after the closing quote",
                         self->line, n);
                return -EINVAL;
            }
        } else {
            while (in < end && *in != ',') {
                if (*in == '"') {
                    snprintf(err, err_len, "line %lu: field %zu: quote inside an unquoted field",
                             self->line, n);
                    return -EINVAL;
                }
                *out++ = *in++;
            }
        }
        *out++ = '\0';
        if (in == end)
            break;
        in++; /* the comma */
    }
    *count = n;
    return 1;
}

int csv_next(csv_t *self, const char **fields, size_t *count, char *err, size_t err_len)
{
    for (;;) {
        size_t len;
        int rc = read_line(self, &len, err, err_len);
        if (rc <= 0)
            return rc;
        char *start = self->raw;
        if (self->line == 1 && len >= 3 && memcmp(start, "\xef\xbb\xbf", 3) == 0) {
            memmove(start, start + 3, len - 2);
            len -= 3;
        }
        if (len == 0 || start[0] == '#')
            continue;
        return split(self, len, fields, count, err, err_len);
    }
}
