/* open311: Open311 GeoReport v2 over intake and the board.
 *
 * POST /requests.json files a ticket through intake's SubmitTicket; the
 * api_key says which client asks (apikeys.h), and the idempotency key sent
 * to intake is "<client>/<key>": the client's `idempotency_key` (or the
 * Idempotency-Key header), or a fresh random one. GET /requests/{id}.json
 * reads intake's GetTicket; GET /requests.json with service_request_id does
 * the same per id, otherwise lists the board (board.h). Intake records a
 * post under "<gateway>/<client>" (the gateway's key is of kind gateway).
 * Caller name and phone never leave through GET: they are never written
 * out; the address and the description are masked as in every public view
 * (mask.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gateway_private.h"
#include "mask.h"
#include "words.h"

#define LIST_MAX 1000
#define IDS_MAX 100
#define DEFAULT_WINDOW_MS (90LL * 24 * 3600 * 1000)

bool open311_jurisdiction_ok(gateway_t *self, const gateway_params_t *params)
{
    const char *j = gateway_param(params, "jurisdiction_id");
    return !j || !*j || strcmp(j, self->jurisdiction) == 0;
}

static const char *status_of(Dispatch__TicketState state)
{
    return gateway_ticket_closed(state) ? "closed" : "open";
}

static const char *state_word(Dispatch__TicketState state, char *buf, size_t len)
{
    if (words_name(&dispatch__ticket_state__descriptor, (int)state, buf, len) < 0)
        snprintf(buf, len, "unknown");
    return buf;
}

/* The HTTP status of an intake refusal. */
static unsigned http_status_of(Dispatch__ErrorCode code)
{
    switch (code) {
    case DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST:
    case DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE:
    case DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD:
    case DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE:
    case DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8:
    case DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_PHONE:
        return 400;
    case DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND:
        return 404;
    case DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT:
        return 409;
    case DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN:
        return 403;
    case DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE:
        return 503;
    case DISPATCH__ERROR_CODE__ERROR_CODE_OK:
    case DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL:
        return 500;
    }
    return 500;
}

static enum MHD_Result respond_refusal(struct MHD_Connection *connection,
                                       const Dispatch__Error *error)
{
    unsigned status = http_status_of(error->code);
    const char *suffix = words_suffix(&dispatch__error_code__descriptor, (int)error->code);
    if (error->field && *error->field)
        return gateway_respond_error(connection, status, "%s (%s): %s", error->message,
                                     error->field, suffix ? suffix : "?");
    return gateway_respond_error(connection, status, "%s: %s", error->message,
                                 suffix ? suffix : "?");
}

static enum MHD_Result respond_upstream(struct MHD_Connection *connection, const char *who, int rc)
{
    if (rc == -ETIMEDOUT)
        return gateway_respond_error(connection, 503, "%s did not answer in time; retry", who);
    return gateway_respond_error(connection, 502, "%s: %s", who, strerror(-rc));
}

/* ---- services ------------------------------------------------------------ */

static json_t *keywords_array(const char *keywords)
{
    return json_string(keywords);
}

enum MHD_Result open311_services(gateway_t *self, struct MHD_Connection *connection)
{
    json_t *list = json_array();
    for (size_t i = 0; i < catalog_service_count(self->catalog); i++) {
        const catalog_service_t *s = catalog_service_at(self->catalog, i);
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:s,s:b,s:s,s:o,s:s}", "service_code", s->code,
                                        "service_name", s->name, "description", s->name, "metadata",
                                        1, "type", "realtime", "keywords",
                                        keywords_array(s->keywords), "group", s->group));
    }
    return gateway_respond_json(connection, 200, list);
}

static json_t *attribute(const char *code, const char *description, bool required, int order,
                         const char *datatype, json_t *values)
{
    json_t *a = json_pack("{s:b,s:s,s:s,s:s,s:b,s:s,s:i}", "variable", 1, "code", code, "datatype",
                          datatype, "datatype_description", "", "required", required, "description",
                          description, "order", order);
    if (values)
        json_object_set_new(a, "values", values);
    return a;
}

static json_t *district_values(gateway_t *self)
{
    json_t *values = json_array();
    for (size_t i = 0; i < config_district_count(self->config); i++) {
        const config_district_t *d = config_district_at(self->config, i);
        json_array_append_new(values, json_pack("{s:s,s:s}", "key", d->id, "name", d->name));
    }
    return values;
}

enum MHD_Result open311_service(gateway_t *self, struct MHD_Connection *connection,
                                const char *code)
{
    const catalog_service_t *s = catalog_service_find(self->catalog, code);
    if (!s)
        return gateway_respond_error(connection, 404, "service_code '%.64s' not found", code);
    json_t *attributes = json_array();
    json_array_append_new(attributes,
                          attribute("district",
                                    "District of the city; from the coordinates when not given",
                                    false, 1, "singlevaluelist", district_values(self)));
    json_array_append_new(attributes,
                          attribute("area", "Street or community code inside the district", false,
                                    2, "string", NULL));
    json_t *urgency = json_pack("[{s:s,s:s},{s:s,s:s}]", "key", "normal", "name", "Normal", "key",
                                "urgent", "name", "Urgent (closed within 24 hours)");
    json_array_append_new(attributes, attribute("urgency", "How urgent the matter is", false, 3,
                                                "singlevaluelist", urgency));
    json_t *channels = json_array();
    for (unsigned i = 0; i < dispatch__channel__descriptor.n_values; i++) {
        char word[WORDS_SIZE];
        if (words_name(&dispatch__channel__descriptor,
                       dispatch__channel__descriptor.values[i].value, word, sizeof(word)) == 0)
            json_array_append_new(channels, json_pack("{s:s,s:s}", "key", word, "name", word));
    }
    json_array_append_new(attributes,
                          attribute("channel", "How the request reached the city (default open311)",
                                    false, 4, "singlevaluelist", channels));
    json_t *body = json_pack("{s:s,s:o}", "service_code", s->code, "attributes", attributes);
    return gateway_respond_json(connection, 200, body);
}

/* ---- POST /requests.json ------------------------------------------------- */

static bool parse_degrees(const char *text, double min, double max, double *ret)
{
    if (!text || !*text)
        return false;
    char *end;
    double value = strtod(text, &end);
    if (*end || !isfinite(value) || value < min || value > max)
        return false;
    *ret = value;
    return true;
}

static bool idempotency_valid(const char *key)
{
    for (const char *c = key; *c; c++)
        if (*c <= ' ' || *c > '~')
            return false;
    return *key != '\0';
}

static bool district_known(gateway_t *self, const char *district)
{
    return config_district_find(self->config, district) != NULL;
}

enum MHD_Result open311_post_request(gateway_t *self, struct MHD_Connection *connection,
                                     const gateway_params_t *params)
{
    if (!open311_jurisdiction_ok(self, params))
        return gateway_respond_error(connection, 400, "jurisdiction_id not found");
    const char *api_key = gateway_param(params, "api_key");
    const char *client = api_key ? apikeys_client(self->apikeys, api_key) : NULL;
    if (!client)
        return gateway_respond_error(connection, 403, "api_key %s",
                                     api_key ? "not valid" : "missing");

    const char *code = gateway_param(params, "service_code");
    if (!code || !*code)
        return gateway_respond_error(connection, 400, "service_code missing");
    const catalog_service_t *service = catalog_service_find(self->catalog, code);
    if (!service)
        return gateway_respond_error(connection, 400, "service_code '%.64s' not found", code);

    /* Location: lat and long, or address_string, or address_id. */
    const char *lat_text = gateway_param(params, "lat");
    const char *lon_text = gateway_param(params, "long");
    const char *address = gateway_param(params, "address_string");
    const char *address_id = gateway_param(params, "address_id");
    double lat = 0, lon = 0;
    bool has_point = false;
    if ((lat_text && *lat_text) || (lon_text && *lon_text)) {
        if (!parse_degrees(lat_text, -90, 90, &lat) || !parse_degrees(lon_text, -180, 180, &lon))
            return gateway_respond_error(connection, 400,
                                         "lat and long must both be degrees (-90..90, "
                                         "-180..180)");
        has_point = true;
    }
    if (!has_point && !(address && *address) && !(address_id && *address_id))
        return gateway_respond_error(connection, 400,
                                     "a location is required: lat and long, address_string or "
                                     "address_id");

    const char *district = gateway_param(params, "attribute[district]");
    if (district && *district) {
        if (!district_known(self, district))
            return gateway_respond_error(connection, 400,
                                         "attribute[district] '%.64s' is not a district of %s",
                                         district, config_city(self->config));
    } else {
        district = has_point ? catalog_nearest_district(self->catalog, lat, lon) : NULL;
        if (!district || !district_known(self, district))
            return gateway_respond_error(connection, 400,
                                         "the location cannot be placed in a district: give lat "
                                         "and long, or attribute[district]");
    }

    int channel = DISPATCH__CHANNEL__CHANNEL_OPEN311, kind = service->kind,
        urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    const char *word;
    if ((word = gateway_param(params, "attribute[channel]")) && *word &&
        words_parse(&dispatch__channel__descriptor, word, &channel) < 0)
        return gateway_respond_error(connection, 400, "attribute[channel] '%.32s' unknown", word);
    if ((word = gateway_param(params, "attribute[urgency]")) && *word &&
        words_parse(&dispatch__urgency__descriptor, word, &urgency) < 0)
        return gateway_respond_error(connection, 400, "attribute[urgency] '%.32s' unknown", word);
    if ((word = gateway_param(params, "attribute[kind]")) && *word &&
        words_parse(&dispatch__kind__descriptor, word, &kind) < 0)
        return gateway_respond_error(connection, 400, "attribute[kind] '%.32s' unknown", word);

    /* The idempotency key, per client. */
    const char *key = gateway_param(params, "idempotency_key");
    if (!key || !*key)
        key = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Idempotency-Key");
    char fresh[33];
    if (!key || !*key) {
        uint8_t random[16];
        if (getrandom(random, sizeof(random), 0) != sizeof(random))
            return gateway_respond_error(connection, 500, "no randomness for a request key");
        for (size_t i = 0; i < sizeof(random); i++)
            snprintf(fresh + 2 * i, 3, "%02x", random[i]);
        key = fresh;
    }
    char request_id[80];
    if (!idempotency_valid(key) ||
        (size_t)snprintf(request_id, sizeof(request_id), "%s/%s", client, key) > 64)
        return gateway_respond_error(connection, 400,
                                     "idempotency_key must be printable ASCII, at most %zu bytes",
                                     (size_t)63 - strlen(client));

    /* Who calls: first and last name, phone (intake checks the phone). */
    const char *first = gateway_param(params, "first_name"),
               *last = gateway_param(params, "last_name");
    char name[256];
    snprintf(name, sizeof(name), "%s%s%s", first ? first : "",
             first && *first && last && *last ? " " : "", last ? last : "");
    const char *description = gateway_param(params, "description");
    const char *media = gateway_param(params, "media_url");
    char *text = NULL;
    if (asprintf(&text, "%s%s%s", description && *description ? description : service->name,
                 media && *media ? "\nmedia: " : "", media && *media ? media : "") < 0)
        return gateway_respond_error(connection, 500, "out of memory");
    char address_text[300] = "";
    if (address && *address)
        snprintf(address_text, sizeof(address_text), "%s", address);
    else if (address_id && *address_id)
        snprintf(address_text, sizeof(address_text), "address_id %s", address_id);
    if (address && strlen(address) > 256) {
        free(text);
        return gateway_respond_error(connection, 400, "address_string is over 256 bytes");
    }

    Dispatch__GeoPoint point = DISPATCH__GEO_POINT__INIT;
    point.lat_e6 = (int32_t)lround(lat * 1e6);
    point.lon_e6 = (int32_t)lround(lon * 1e6);
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    location.address = address_text;
    location.point = has_point ? &point : NULL;
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    submit.client_request_id = request_id;
    submit.channel = (Dispatch__Channel)channel;
    submit.kind = (Dispatch__Kind)kind;
    submit.category = (char *)service->code;
    submit.urgency = (Dispatch__Urgency)urgency;
    submit.district = (char *)district;
    const char *area = gateway_param(params, "attribute[area]");
    submit.area = (char *)(area ? area : "");
    submit.location = &location;
    submit.caller_name = name;
    const char *phone = gateway_param(params, "phone");
    submit.caller_phone = (char *)(phone ? phone : "");
    submit.description = text;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = (char *)client; /* intake records "<gateway>/<client>" */
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit;

    Dispatch__Reply *reply = NULL;
    int rc = gateway_pool_call(self, &gateway_intake_for(self, NULL)->pool, &request.base,
                               &dispatch__reply__descriptor, (ProtobufCMessage **)&reply);
    free(text);
    if (rc < 0)
        return respond_upstream(connection, "intake", rc);
    enum MHD_Result result;
    if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT) {
        const Dispatch__SubmitReply *s = reply->submit;
        char state[WORDS_SIZE], notice[256];
        state_word(s->state, state, sizeof(state));
        if (s->master_id && *s->master_id)
            snprintf(notice, sizeof(notice), "%s: duplicate of %s", state, s->master_id);
        else
            snprintf(notice, sizeof(notice), "%s", state);
        atomic_fetch_add(s->created ? &self->submits : &self->submit_retries, 1);
        json_t *body =
            json_pack("[{s:s,s:s,s:n,s:s}]", "service_request_id", s->ticket_id, "service_notice",
                      notice, "account_id", "lookup_code", s->lookup_code ? s->lookup_code : "");
        result = gateway_respond_json(connection, s->created ? 201 : 200, body);
    } else if (reply->body_case == DISPATCH__REPLY__BODY_ERROR && reply->error) {
        atomic_fetch_add(&self->refusals, 1);
        result = respond_refusal(connection, reply->error);
    } else {
        result = gateway_respond_error(connection, 502, "intake answered with no submit reply");
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return result;
}

/* ---- GET /requests ------------------------------------------------------- */

static const char *service_name(gateway_t *self, const char *code)
{
    const catalog_service_t *s = catalog_service_find(self->catalog, code);
    return s ? s->name : code;
}

static json_t *request_from_ticket(gateway_t *self, const Dispatch__TicketView *view)
{
    const Dispatch__Ticket *t = view->ticket;
    char state[WORDS_SIZE], requested[32], updated[32], expected[32] = "";
    state_word(t->state, state, sizeof(state));
    gateway_format_time(t->registered_at, requested, sizeof(requested));
    gateway_format_time(t->updated_at ? t->updated_at : t->registered_at, updated, sizeof(updated));
    if (t->deadline_handle)
        gateway_format_time(t->deadline_handle, expected, sizeof(expected));
    const char *address = t->location && t->location->address ? t->location->address : "";
    const char *description = t->description ? t->description : "";
    char *masked_address = malloc(strlen(address) + 1),
         *masked_description = malloc(strlen(description) + 1);
    json_t *r = NULL;
    if (masked_address && masked_description) {
        mask_address(address, masked_address, strlen(address) + 1);
        mask_text(description, masked_description, strlen(description) + 1);
        char notes[128];
        if (t->master_id && *t->master_id)
            snprintf(notes, sizeof(notes), "%s: duplicate of %s", state, t->master_id);
        else
            snprintf(notes, sizeof(notes), "%s", state);
        r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s*}", "service_request_id", t->id,
                      "status", status_of(t->state), "status_notes", notes, "service_name",
                      service_name(self, t->category ? t->category : ""), "service_code",
                      t->category ? t->category : "", "description", masked_description,
                      "agency_responsible", t->assigned_unit ? t->assigned_unit : "",
                      "requested_datetime", requested, "updated_datetime", updated,
                      "expected_datetime", *expected ? expected : NULL);
        if (r) {
            json_object_set_new(r, "address", json_string(masked_address));
            json_object_set_new(r, "district", json_string(t->district ? t->district : ""));
            if (t->location && t->location->point) {
                json_object_set_new(r, "lat", json_real(t->location->point->lat_e6 / 1e6));
                json_object_set_new(r, "long", json_real(t->location->point->lon_e6 / 1e6));
            }
        }
    }
    free(masked_address);
    free(masked_description);
    return r;
}

static bool ticket_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

/* The ticket's Open311 record into *ret (new reference), or an HTTP status
 * with its description. */
static unsigned fetch_request(gateway_t *self, const char *id, json_t **ret, char *err,
                              size_t err_len)
{
    *ret = NULL;
    if (!ticket_id_valid(id)) {
        snprintf(err, err_len, "service_request_id '%.64s' not found", id);
        return 404;
    }
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = (char *)id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    Dispatch__Reply *reply = NULL;
    int rc = gateway_pool_call(self, &gateway_intake_for(self, id)->pool, &request.base,
                               &dispatch__reply__descriptor, (ProtobufCMessage **)&reply);
    if (rc < 0) {
        snprintf(err, err_len, "intake: %s",
                 rc == -ETIMEDOUT ? "no answer in time; retry" : strerror(-rc));
        return rc == -ETIMEDOUT ? 503 : 502;
    }
    unsigned status = 200;
    if (reply->body_case == DISPATCH__REPLY__BODY_TICKET && reply->ticket &&
        reply->ticket->ticket) {
        *ret = request_from_ticket(self, reply->ticket);
        if (!*ret) {
            snprintf(err, err_len, "the ticket could not be written as JSON");
            status = 500;
        }
    } else if (reply->body_case == DISPATCH__REPLY__BODY_ERROR && reply->error) {
        status = http_status_of(reply->error->code);
        if (status == 404)
            snprintf(err, err_len, "service_request_id '%.64s' not found", id);
        else
            snprintf(err, err_len, "%s", reply->error->message);
    } else {
        snprintf(err, err_len, "intake answered with no ticket");
        status = 502;
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return status;
}

enum MHD_Result open311_get_request(gateway_t *self, struct MHD_Connection *connection,
                                    const char *id)
{
    json_t *r;
    char err[512];
    unsigned status = fetch_request(self, id, &r, err, sizeof(err));
    if (status != 200)
        return gateway_respond_error(connection, status, "%s", err);
    json_t *list = json_array();
    json_array_append_new(list, r);
    return gateway_respond_json(connection, 200, list);
}

/* What GET /requests.json filters the board by. */
typedef struct list_filter {
    char codes[16][65];
    size_t code_count;
    int64_t start_ms, end_ms;
    int status;             /* 0 any, 1 open, 2 closed */
    board_ticket_t *copies; /* a ring of the LIST_MAX newest matches */
    size_t total;
} list_filter_t;

static bool list_collect(void *ctx, const board_ticket_t *ticket)
{
    list_filter_t *f = ctx;
    if (ticket->registered_at < f->start_ms || ticket->registered_at > f->end_ms)
        return true;
    if (f->code_count) {
        bool found = false;
        for (size_t i = 0; i < f->code_count && !found; i++)
            found = strcmp(f->codes[i], ticket->category) == 0;
        if (!found)
            return true;
    }
    if (f->status) {
        bool closed = gateway_ticket_closed(ticket->state);
        if ((f->status == 2) != closed)
            return true;
    }
    f->copies[f->total % LIST_MAX] = *ticket;
    f->total++;
    return true;
}

static json_t *request_from_board(gateway_t *self, const board_ticket_t *t)
{
    char state[WORDS_SIZE], requested[32], updated[32];
    state_word(t->state, state, sizeof(state));
    gateway_format_time(t->registered_at, requested, sizeof(requested));
    gateway_format_time(t->updated_at, updated, sizeof(updated));
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "service_request_id", t->id,
                          "status", status_of(t->state), "status_notes", state, "service_name",
                          service_name(self, t->category), "service_code", t->category,
                          "requested_datetime", requested, "updated_datetime", updated, "district",
                          t->district);
    if (r && t->has_point) {
        json_object_set_new(r, "lat", json_real(t->lat_e6 / 1e6));
        json_object_set_new(r, "long", json_real(t->lon_e6 / 1e6));
    }
    return r;
}

static enum MHD_Result get_by_ids(gateway_t *self, struct MHD_Connection *connection,
                                  const char *ids)
{
    char *copy = strdup(ids), *save = NULL;
    if (!copy)
        return gateway_respond_error(connection, 500, "out of memory");
    json_t *list = json_array();
    size_t count = 0;
    unsigned failure = 0;
    char err[512] = "";
    for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        while (*id == ' ')
            id++;
        if (++count > IDS_MAX) {
            failure = 400;
            snprintf(err, sizeof(err), "at most %d service_request_id values", IDS_MAX);
            break;
        }
        json_t *r;
        unsigned status = fetch_request(self, id, &r, err, sizeof(err));
        if (status == 200)
            json_array_append_new(list, r);
        else if (status != 404) { /* an unknown id is left out of a list */
            failure = status;
            break;
        }
    }
    free(copy);
    if (failure) {
        json_decref(list);
        return gateway_respond_error(connection, failure, "%s", err);
    }
    return gateway_respond_json(connection, 200, list);
}

enum MHD_Result open311_get_requests(gateway_t *self, struct MHD_Connection *connection,
                                     const gateway_params_t *params)
{
    if (!open311_jurisdiction_ok(self, params))
        return gateway_respond_error(connection, 404, "jurisdiction_id not found");
    const char *ids = gateway_param(params, "service_request_id");
    if (ids && *ids)
        return get_by_ids(self, connection, ids);
    if (!self->board)
        return gateway_respond_error(connection, 501,
                                     "listing requests needs the audit stream; the topology has "
                                     "no audit: ask by service_request_id");
    list_filter_t f = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    const char *text;
    if ((text = gateway_param(params, "service_code")) && *text) {
        char buf[1100];
        snprintf(buf, sizeof(buf), "%s", text);
        char *save = NULL;
        for (char *code = strtok_r(buf, ",", &save); code; code = strtok_r(NULL, ",", &save)) {
            if (f.code_count == 16 || strlen(code) > 64)
                return gateway_respond_error(connection, 400,
                                             "service_code: at most 16 codes of 64 bytes");
            if (!catalog_service_find(self->catalog, code))
                return gateway_respond_error(connection, 400, "service_code '%.64s' not found",
                                             code);
            snprintf(f.codes[f.code_count++], sizeof(f.codes[0]), "%s", code);
        }
    }
    if ((text = gateway_param(params, "start_date")) && *text &&
        gateway_parse_time(text, &f.start_ms) < 0)
        return gateway_respond_error(connection, 400, "start_date '%.40s' is not a W3C date-time",
                                     text);
    if ((text = gateway_param(params, "end_date")) && *text &&
        gateway_parse_time(text, &f.end_ms) < 0)
        return gateway_respond_error(connection, 400, "end_date '%.40s' is not a W3C date-time",
                                     text);
    /* The specification's default: the 90 days up to end_date. */
    if (f.start_ms == INT64_MIN && f.end_ms != INT64_MAX)
        f.start_ms = f.end_ms - DEFAULT_WINDOW_MS;
    if (f.start_ms > f.end_ms)
        return gateway_respond_error(connection, 400, "start_date is after end_date");
    if ((text = gateway_param(params, "status")) && *text) {
        if (strcmp(text, "open") == 0)
            f.status = 1;
        else if (strcmp(text, "closed") == 0)
            f.status = 2;
        else if (strcmp(text, "open,closed") != 0 && strcmp(text, "closed,open") != 0)
            return gateway_respond_error(connection, 400,
                                         "status must be open or closed, not '%.32s'", text);
    }
    f.copies = malloc(LIST_MAX * sizeof(*f.copies));
    if (!f.copies)
        return gateway_respond_error(connection, 500, "out of memory");
    board_each(self->board, list_collect, &f);
    json_t *list = json_array();
    size_t n = f.total < LIST_MAX ? f.total : LIST_MAX;
    /* Newest first, at most LIST_MAX. */
    for (size_t k = 0; k < n; k++)
        json_array_append_new(list,
                              request_from_board(self, &f.copies[(f.total - 1 - k) % LIST_MAX]));
    free(f.copies);
    return gateway_respond_json(connection, 200, list);
}
