/* citydata: a generated city for tests: a unit registry of realistic shape
 * and the routing rules of each district, with the answer key (which unit a
 * ticket of a given category and area must reach) computed here from the
 * same tables, independently of the router.
 *
 * Registry (exactly CITYDATA_UNITS units): the city government; per district
 * its district office, CITYDATA_STREETS street offices and
 * CITYDATA_COMMUNITIES communities per street; city bureaus; and the
 * enterprises (power, water, gas, heating, telecom).
 *
 * Rules per district: street-level categories by street area (specific),
 * with the district office as the category default; "housing" by community
 * area; city-wide categories to a bureau or an enterprise by default;
 * "road-damage" co-handled (roads bureau leads, the district office
 * assists); "manhole-cover" has no rule: it goes to triage.
 */
#ifndef DISPATCH_CITYDATA_H
#define DISPATCH_CITYDATA_H

#include <stddef.h>

#define CITYDATA_DISTRICTS 3
#define CITYDATA_STREETS 20
#define CITYDATA_COMMUNITIES 48
#define CITYDATA_UNITS 3015

extern const char *const citydata_districts[CITYDATA_DISTRICTS];
extern const char *const citydata_categories[];
extern const size_t citydata_category_count;
/* The categories owned city-wide, each with its one lead unit (a bureau or
 * an enterprise), the same in every district: {category, unit}. */
#define CITYDATA_CITYWIDE_COUNT 6
extern const char *const citydata_citywide[CITYDATA_CITYWIDE_COUNT][2];

/* malloc'ed CSV texts the caller frees. */
char *citydata_units_csv(void);
char *citydata_rules_csv(const char *district);

/* Area codes: a street ("<district>-s07") or a community
 * ("<district>-s07-c12"). */
void citydata_street(char *buf, size_t len, const char *district, int street);
void citydata_community(char *buf, size_t len, const char *district, int street, int community);

/* The unit a ticket must reach ("" = triage), and its assisting unit ("" =
 * none). */
void citydata_expected(const char *district, const char *category, const char *area, char *lead,
                       size_t lead_len, char *assist, size_t assist_len);

#endif
