/* The topology file (config.h), then every --set a worker could be given
 * with the same text cut at '=': KEY=VALUE lines after a line "--set". */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define SET_MARK "\n--set\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *sets = strstr(text, SET_MARK);
    if (sets) {
        *sets = '\0';
        sets += strlen(SET_MARK);
    }
    config_t *config = NULL;
    char err[512];
    if (config_parse_string(text, &config, err, sizeof(err)) == 0) {
        for (char *line = sets, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = '\0';
                config_set(config, line, eq + 1, err, sizeof(err));
            }
        }
        for (size_t i = 0; i < config_worker_count(config); i++)
            config_worker_find(config, config_worker_at(config, i)->name);
        for (size_t i = 0; i < config_district_count(config); i++)
            config_district_find(config, config_district_at(config, i)->id);
        config_destroy(&config);
    }
    free(text);
    return 0;
}
