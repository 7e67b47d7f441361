#include "citydata.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const citydata_districts[CITYDATA_DISTRICTS] = {"chaoyang", "nanguan", "kuancheng"};

/* Street-level categories (street office by street area, district office
 * by default), then city-wide ones, then the co-handled and unowned ones. */
static const char *const street_categories[] = {"sanitation", "noise", "street-vending",
                                                "greening"};
const char *const citydata_citywide[CITYDATA_CITYWIDE_COUNT][2] = {
    {"traffic", "bureau-traffic"},
    {"water-supply", "water-company"},
    {"power-outage", "power-company"},
    {"heating", "heating-company"},
    {"gas", "gas-company"},
    {"telecom", "telecom-company"},
};
#define STREET_CATEGORY_COUNT (sizeof(street_categories) / sizeof(street_categories[0]))

const char *const citydata_categories[] = {
    "sanitation",   "noise",        "street-vending", "greening", "traffic",
    "water-supply", "power-outage", "heating",        "gas",      "telecom",
    "housing",      "road-damage",  "manhole-cover",
};
const size_t citydata_category_count = sizeof(citydata_categories) / sizeof(citydata_categories[0]);

static const char *const enterprises[][2] = {
    {"power-company", "State Grid city power supply company"},
    {"water-company", "City water supply group"},
    {"gas-company", "City gas company"},
    {"heating-company", "City heating group"},
    {"telecom-company", "City telecom branch"},
};
#define ENTERPRISE_COUNT (sizeof(enterprises) / sizeof(enterprises[0]))
#define BUREAU_COUNT                                                                               \
    (CITYDATA_UNITS - 1 -                                                                          \
     CITYDATA_DISTRICTS * (1 + CITYDATA_STREETS * (1 + CITYDATA_COMMUNITIES)) - ENTERPRISE_COUNT)

static const char *const named_bureaus[] = {"bureau-traffic", "bureau-roads", "bureau-housing",
                                            "bureau-environment", "bureau-market"};

typedef struct text {
    char *data;
    size_t len, cap;
} text_t;

__attribute__((format(printf, 2, 3))) static void append(text_t *t, const char *format, ...)
{
    va_list args;
    for (;;) {
        va_start(args, format);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, format,
                          args);
        va_end(args);
        if (t->data && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->data = realloc(t->data, t->cap);
    }
}

void citydata_street(char *buf, size_t len, const char *district, int street)
{
    snprintf(buf, len, "%s-s%02d", district, street);
}

void citydata_community(char *buf, size_t len, const char *district, int street, int community)
{
    snprintf(buf, len, "%s-s%02d-c%02d", district, street, community);
}

char *citydata_units_csv(void)
{
    text_t t = {0};
    append(&t, "id,name,parent_id,level,district,active\n");
    append(&t, "city,City government,,city,,1\n");
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        const char *district = citydata_districts[d];
        append(&t, "office-%s,%s district office,city,district,%s,1\n", district, district,
               district);
        for (int s = 1; s <= CITYDATA_STREETS; s++) {
            char street[64];
            citydata_street(street, sizeof(street), district, s);
            append(&t, "%s,Street office %s,office-%s,street,%s,1\n", street, street, district,
                   district);
            for (int c = 1; c <= CITYDATA_COMMUNITIES; c++) {
                char community[80];
                citydata_community(community, sizeof(community), district, s, c);
                append(&t, "%s,Community %s,%s,community,%s,1\n", community, community, street,
                       district);
            }
        }
    }
    for (size_t b = 0; b < BUREAU_COUNT; b++) {
        if (b < sizeof(named_bureaus) / sizeof(named_bureaus[0]))
            append(&t, "%s,%s,city,bureau,,1\n", named_bureaus[b], named_bureaus[b]);
        else
            append(&t, "bureau-%03zu,City bureau %zu,city,bureau,,1\n", b, b);
    }
    for (size_t e = 0; e < ENTERPRISE_COUNT; e++)
        append(&t, "%s,%s,city,enterprise,,1\n", enterprises[e][0], enterprises[e][1]);
    return t.data;
}

char *citydata_rules_csv(const char *district)
{
    text_t t = {0};
    append(&t, "category,area,lead_unit,assisting_units,priority\n");
    for (size_t c = 0; c < STREET_CATEGORY_COUNT; c++) {
        append(&t, "%s,,office-%s,,0\n", street_categories[c], district);
        for (int s = 1; s <= CITYDATA_STREETS; s++) {
            char street[64];
            citydata_street(street, sizeof(street), district, s);
            append(&t, "%s,%s,%s,,0\n", street_categories[c], street, street);
        }
    }
    for (size_t c = 0; c < CITYDATA_CITYWIDE_COUNT; c++)
        append(&t, "%s,,%s,,0\n", citydata_citywide[c][0], citydata_citywide[c][1]);
    append(&t, "housing,,bureau-housing,,0\n");
    for (int s = 1; s <= CITYDATA_STREETS; s++)
        for (int c = 1; c <= CITYDATA_COMMUNITIES; c++) {
            char community[80];
            citydata_community(community, sizeof(community), district, s, c);
            append(&t, "housing,%s,%s,,0\n", community, community);
        }
    append(&t, "road-damage,,bureau-roads,office-%s,0\n", district);
    return t.data;
}

/* 1 for a street area of district ("<district>-sNN"), 2 for a community
 * ("<district>-sNN-cMM"), 0 for anything else. */
static int parse_area(const char *district, const char *area, int *street, int *community)
{
    size_t len = strlen(district);
    if (strncmp(area, district, len) != 0 || strncmp(area + len, "-s", 2) != 0)
        return 0;
    char *end;
    *street = (int)strtol(area + len + 2, &end, 10);
    if (end == area + len + 2 || *street < 1 || *street > CITYDATA_STREETS)
        return 0;
    if (*end == '\0')
        return 1;
    if (strncmp(end, "-c", 2) != 0)
        return 0;
    const char *digits = end + 2;
    *community = (int)strtol(digits, &end, 10);
    return end != digits && *end == '\0' && *community >= 1 && *community <= CITYDATA_COMMUNITIES
               ? 2
               : 0;
}

void citydata_expected(const char *district, const char *category, const char *area, char *lead,
                       size_t lead_len, char *assist, size_t assist_len)
{
    snprintf(lead, lead_len, "%s", "");
    snprintf(assist, assist_len, "%s", "");
    for (size_t c = 0; c < STREET_CATEGORY_COUNT; c++) {
        if (strcmp(category, street_categories[c]) != 0)
            continue;
        /* A street area has its own rule; anything else falls to the default. */
        int street, community;
        if (parse_area(district, area, &street, &community) == 1)
            snprintf(lead, lead_len, "%s", area);
        else
            snprintf(lead, lead_len, "office-%s", district);
        return;
    }
    for (size_t c = 0; c < CITYDATA_CITYWIDE_COUNT; c++) {
        if (strcmp(category, citydata_citywide[c][0]) == 0) {
            snprintf(lead, lead_len, "%s", citydata_citywide[c][1]);
            return;
        }
    }
    if (strcmp(category, "housing") == 0) {
        int street, community;
        if (parse_area(district, area, &street, &community) == 2)
            snprintf(lead, lead_len, "%s", area);
        else
            snprintf(lead, lead_len, "bureau-housing");
        return;
    }
    if (strcmp(category, "road-damage") == 0) {
        snprintf(lead, lead_len, "bureau-roads");
        snprintf(assist, assist_len, "office-%s", district);
    }
}
