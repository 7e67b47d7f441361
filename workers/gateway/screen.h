/* screen: the big screen of the call hall, served by the gateway.
 *
 *   GET /screen (and /)        the page (web/screen.html), its script and style
 *   GET /screen/events         Server-Sent Events: one event per audit record,
 *                              from ?from=SEQ or the Last-Event-ID header + 1
 *                              (a reconnecting EventSource catches up through
 *                              the audit's replay: nothing missed, nothing twice)
 *   GET /screen/kpi.json       audit's KPI rows of the day (?by=district|unit|
 *                              category|city, ?at=YYYY-MM-DD)
 *   GET /screen/report.json    audit's top categories of the day
 *   GET /screen/config.json    the city, its time zone, districts, services, and
 *                              the first seq of the newest day (day_first_seq)
 *   GET /screen/open.json      the open tickets as the board holds them at seq S:
 *                              a page starts from them and reads the log from
 *                              min(day_first_seq, S + 1), not from seq 1
 *
 * Each event's data is a small JSON object of what the page needs (seq,
 * event, ticket, district, at, and for a registration the channel,
 * category, urgency, kind and coordinates); no personal data.
 */
#ifndef DISPATCH_GATEWAY_SCREEN_H
#define DISPATCH_GATEWAY_SCREEN_H

#include <microhttpd.h>

typedef struct gateway gateway_t;
typedef struct gateway_params gateway_params_t;

enum MHD_Result screen_serve(gateway_t *self, struct MHD_Connection *connection, const char *url,
                             const gateway_params_t *params);

#endif
