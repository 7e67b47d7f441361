/* The corpus replayed without libFuzzer: every file named on the command
 * line, or in a directory named there, goes once through the target's
 * LLVMFuzzerTestOneInput(). Built with every target in every build, so the
 * regular suite (plain and sanitizer builds) runs the corpus, crashes found
 * by fuzzing included. A crash, a leak or a sanitizer report fails the
 * test; the exit status is 0 when every input went through. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* REPLAY_TIMES=N: every input N times (a leak of memory or descriptors
 * per input shows then; the count of open descriptors is printed at the
 * end). */
static long times = 1;

static int replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t capacity = 4096, size = 0;
    uint8_t *data = malloc(capacity);
    size_t n;
    while (data && (n = fread(data + size, 1, capacity - size, file)) > 0) {
        size += n;
        if (size == capacity) {
            uint8_t *grown = realloc(data, capacity * 2);
            if (!grown) {
                free(data);
                data = NULL;
                break;
            }
            data = grown;
            capacity *= 2;
        }
    }
    fclose(file);
    if (!data) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    for (long i = 0; i < times; i++)
        LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *path, size_t *count)
{
    DIR *dir = opendir(path);
    if (!dir) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t length = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.')
            continue;
        if (length == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            char **grown = realloc(names, capacity * sizeof(*names));
            if (!grown)
                break;
            names = grown;
        }
        names[length++] = strdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, length, sizeof(*names), by_name);
    int rc = 0;
    for (size_t i = 0; i < length; i++) {
        char file[4096];
        snprintf(file, sizeof(file), "%s/%s", path, names[i]);
        struct stat st;
        if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(file) < 0)
                rc = -1;
            else
                (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    const char *repeat = getenv("REPLAY_TIMES");
    if (repeat && atol(repeat) > 0)
        times = atol(repeat);
    size_t count = 0;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            status = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) < 0)
                status = 1;
        } else if (replay_file(argv[i]) < 0) {
            status = 1;
        } else {
            count++;
        }
    }
    printf("%zu inputs replayed", count);
    if (times > 1) {
        size_t fds = 0;
        DIR *dir = opendir("/proc/self/fd");
        while (dir && readdir(dir))
            fds++;
        if (dir)
            closedir(dir);
        printf(", %ld times each; %zu descriptors open", times, fds > 2 ? fds - 3 : 0);
    }
    printf("\n");
    if (count == 0) {
        fprintf(stderr, "no input: the corpus is missing\n");
        status = 1;
    }
    return status;
}
