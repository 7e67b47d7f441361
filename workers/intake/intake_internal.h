/* intake_internal: what the intake's files share. The invariants of the
 * intake's databases are written at the top of intake.c. */
#ifndef DISPATCH_INTAKE_INTERNAL_H
#define DISPATCH_INTAKE_INTERNAL_H

#include <stdbool.h>

#include "city_lists.h"
#include "endpoint.h"
#include "ids.h"
#include "intake.h"
#include "intake_state.pb-c.h"
#include "peers.h"
#include "refusal.h"

#define HISTORY_KEY_SIZE (LIMIT_ID + 1 + 4)
/* A lookup code: 10 symbols of 32 (50 bits), no 0/O or 1/I to misread. */
#define LOOKUP_CODE_LENGTH 10
#define DEFAULT_ACTOR "intake"
#define MINUTE_MS 60000

typedef Dispatch__Intake__TicketRecord ticket_record_t;

struct intake {
    store_t *store;
    bus_t *bus;
    const config_t *config;
    char name[CONFIG_NAME_MAX + 1];
    char prefix[IDS_PREFIX_MAX + 1];
    const char *timezone;
    int64_t duplicate_window_ms; /* 0 = no duplicate detection */
    uint64_t max_backlog;        /* refuse submits past this router backlog */
    MDB_dbi tickets, history, requests, duplicates, counters, meta;
    peers_t *peers;         /* the routers and audit its events go to */
    city_lists_t *lists;    /* the city's categories and areas; NULL: none checked */
    Dispatch__Reply *reply; /* the last reply, until the next request */

    /* The worker loop's part; NULL / unused when handlers are called
     * directly. */
    endpoint_t *endpoint;
    bool batch_applied; /* apply() ran in this loop iteration */
};

/* A ticket being changed: the loaded record owns its strings; `ticket` is a
 * shallow copy whose fields may point at other strings (the request's, an
 * event's) until it is saved. */
typedef struct ticket_work {
    ticket_record_t *loaded;
    Dispatch__Ticket ticket;
    uint32_t history_count;
    bool duplicate_master;
    const char *lookup_code; /* opens the public status; "" for none */
} ticket_work_t;

/* intake.c: records. work_load() gives -ENOENT when the ticket is not
 * ours, -EBADMSG when its record does not decode. */
int intake_work_load(intake_t *self, MDB_txn *txn, const char *id, ticket_work_t *work);
int intake_work_save(intake_t *self, MDB_txn *txn, ticket_work_t *work);
void intake_work_release(ticket_work_t *work);
size_t intake_history_key(const char *id, uint32_t index, unsigned char key[HISTORY_KEY_SIZE]);
int intake_history_append(intake_t *self, MDB_txn *txn, ticket_work_t *work,
                          const Dispatch__HistoryEntry *entry);
int intake_emit(intake_t *self, MDB_txn *txn, ticket_work_t *work, ProtobufCMessage *body,
                const char *actor, int64_t now_ms);
int intake_ticket_id_next(intake_t *self, MDB_txn *txn, int64_t now_ms, char id[IDS_TICKET_SIZE]);

/* Frees the last reply. */
void intake_reply_drop(intake_t *self);

/* intake_duplicates.c */
enum { INTAKE_MATCH_PHONE, INTAKE_MATCH_ADDRESS, INTAKE_MATCH_KINDS };
int intake_duplicate_find(intake_t *self, MDB_txn *txn, const Dispatch__Ticket *ticket,
                          int64_t now_ms, ticket_work_t *master, int *match);
int intake_duplicate_index(intake_t *self, MDB_txn *txn, ticket_work_t *work);
int intake_duplicate_unindex(intake_t *self, MDB_txn *txn, ticket_work_t *work);
const char *intake_match_reason(int match);

#endif
