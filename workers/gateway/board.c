/* board: the ticket table folded from the audit stream; see board.h. */
#include "board.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"
#include "follower.h"
#include "lifecycle.h"

/* Event.body field numbers are 10..33; one slot per number up to 63. */
#define BOARD_EVENT_SLOTS 64

struct board {
    void *zmq;
    char *publish_url, *request_url;
    auth_client_t curve;
    bool has_curve;

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t moved; /* next_seq grew, or stopping */
    bool stopping;

    uint64_t next_seq;
    board_ticket_t *tickets;
    size_t count, capacity;
    uint32_t *slots; /* open addressing: index + 1, 0 = empty */
    size_t slot_count;
    board_stats_t stats;
    calendar_t *calendar; /* for the city's days only */
    int64_t day;          /* the newest city day seen */
    uint64_t day_first_seq;
    char origins[BOARD_ORIGINS_MAX + 1][65]; /* the last one is "other" */
    size_t origin_count;
    uint64_t events[BOARD_ORIGINS_MAX + 1][BOARD_EVENT_SLOTS];
};

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static long slot_of(const board_t *self, const char *id)
{
    if (!self->slot_count)
        return -1;
    size_t mask = self->slot_count - 1;
    for (size_t s = hash_id(id) & mask;; s = (s + 1) & mask) {
        if (!self->slots[s])
            return -1;
        if (strcmp(self->tickets[self->slots[s] - 1].id, id) == 0)
            return (long)(self->slots[s] - 1);
    }
}

static int table_grow(board_t *self)
{
    if (self->count + 1 > self->capacity) {
        size_t next = self->capacity ? self->capacity * 2 : 1024;
        board_ticket_t *bigger = realloc(self->tickets, next * sizeof(*bigger));
        if (!bigger)
            return -ENOMEM;
        self->tickets = bigger;
        self->capacity = next;
    }
    if ((self->count + 1) * 2 > self->slot_count) {
        size_t next = self->slot_count ? self->slot_count * 2 : 2048;
        uint32_t *slots = calloc(next, sizeof(*slots));
        if (!slots)
            return -ENOMEM;
        for (size_t i = 0; i < self->count; i++) {
            size_t s = hash_id(self->tickets[i].id) & (next - 1);
            while (slots[s])
                s = (s + 1) & (next - 1);
            slots[s] = (uint32_t)(i + 1);
        }
        free(self->slots);
        self->slots = slots;
        self->slot_count = next;
    }
    return 0;
}

static void copy(char *dst, size_t len, const char *src)
{
    size_t n = src ? strnlen(src, len - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* The ticket id's entry, made (empty, state REGISTERED) when new: events
 * reach audit over several links, so a dispatch may come before the
 * registration it follows. NULL when out of memory. */
static board_ticket_t *ticket_entry(board_t *self, const char *id, int64_t at)
{
    long i = slot_of(self, id);
    if (i >= 0)
        return &self->tickets[i];
    if (table_grow(self) < 0)
        return NULL;
    board_ticket_t *b = &self->tickets[self->count];
    memset(b, 0, sizeof(*b));
    copy(b->id, sizeof(b->id), id);
    b->state = DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED;
    b->registered_at = b->updated_at = at;
    size_t mask = self->slot_count - 1;
    size_t s = hash_id(b->id) & mask;
    while (self->slots[s])
        s = (s + 1) & mask;
    self->slots[s] = (uint32_t)(self->count + 1);
    self->count++;
    return b;
}

static void fold_registered(board_t *self, const Dispatch__Ticket *t, int64_t at)
{
    if (!t || !t->id || !*t->id)
        return;
    board_ticket_t *b = ticket_entry(self, t->id, at);
    if (!b || b->registered)
        return;
    b->registered = true;
    copy(b->category, sizeof(b->category), t->category);
    copy(b->district, sizeof(b->district), t->district);
    copy(b->area, sizeof(b->area), t->area);
    /* A state from events that came first stays; else the one at submit. */
    if (b->state == DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED && t->state)
        b->state = t->state;
    b->channel = t->channel;
    b->kind = t->kind;
    b->urgency = t->urgency;
    if (t->registered_at)
        b->registered_at = t->registered_at;
    if (t->location && t->location->point) {
        b->has_point = true;
        b->lat_e6 = t->location->point->lat_e6;
        b->lon_e6 = t->location->point->lon_e6;
    }
}

static void count_event(board_t *self, const Dispatch__Event *event)
{
    const char *origin = event->origin ? event->origin : "";
    size_t i = 0;
    while (i < self->origin_count && strcmp(self->origins[i], origin) != 0)
        i++;
    if (i == self->origin_count) {
        if (self->origin_count < BOARD_ORIGINS_MAX) {
            copy(self->origins[i], sizeof(self->origins[i]), origin);
            self->origin_count++;
        } else {
            i = BOARD_ORIGINS_MAX;
            copy(self->origins[i], sizeof(self->origins[i]), "other");
        }
    }
    if ((unsigned)event->body_case < BOARD_EVENT_SLOTS)
        self->events[i][event->body_case]++;
}

static void fold(board_t *self, const Dispatch__AuditRecord *record)
{
    const Dispatch__Event *event = record->event;
    self->stats.records++;
    self->stats.last_record_at = record->recorded_at;
    if (!event)
        return;
    count_event(self, event);
    int64_t day = self->calendar ? calendar_day_of(self->calendar, event->at) : 0;
    if (self->calendar && (self->day_first_seq == 0 || day > self->day)) {
        self->day = day;
        self->day_first_seq = record->seq;
    }
    if (event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED) {
        fold_registered(self, event->ticket_registered->ticket, event->at);
        self->stats.tickets = self->count;
        return;
    }
    if (!event->ticket_id || !*event->ticket_id)
        return; /* an event on a report */
    board_ticket_t *b = ticket_entry(self, event->ticket_id, event->at);
    if (!b)
        return;
    if (!b->district[0])
        copy(b->district, sizeof(b->district), event->district);
    self->stats.tickets = self->count;
    b->state = lifecycle_state_after(b->state, event->body_case);
    b->updated_at = event->at;
    if (event->body_case == DISPATCH__EVENT__BODY_TICKET_OVERDUE)
        b->overdue = true;
    if (b->state == DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED ||
        lifecycle_state_final(b->state))
        b->overdue = false;
}

static void *board_run(void *arg)
{
    board_t *self = arg;
    follower_t *follower = NULL;
    for (;;) {
        pthread_mutex_lock(&self->lock);
        bool stopping = self->stopping;
        uint64_t from = self->next_seq;
        pthread_mutex_unlock(&self->lock);
        if (stopping)
            break;
        if (!follower) {
            follower_options_t options = {
                .from_seq = from,
                .rcvhwm = 100000,
                .call_timeout_ms = 1000,
                .curve = self->has_curve ? &self->curve : NULL,
            };
            if (follower_new(self->zmq, self->publish_url, self->request_url, &options, &follower) <
                0) {
                pthread_mutex_lock(&self->lock);
                self->stats.errors++;
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 1;
                if (!self->stopping)
                    pthread_cond_timedwait(&self->moved, &self->lock, &until);
                pthread_mutex_unlock(&self->lock);
                continue;
            }
        }
        const Dispatch__AuditRecord *record;
        int rc = follower_next(follower, 200, &record);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc < 0) {
            /* Start over from where the table is: a new follower replays the rest. */
            follower_destroy(&follower);
            pthread_mutex_lock(&self->lock);
            self->stats.errors++;
            pthread_mutex_unlock(&self->lock);
            continue;
        }
        follower_stats_t fs;
        follower_stats(follower, &fs);
        pthread_mutex_lock(&self->lock);
        if (record->seq == self->next_seq) {
            fold(self, record);
            self->next_seq = record->seq + 1;
        }
        self->stats.live = fs.live;
        self->stats.replayed = fs.replayed;
        pthread_cond_broadcast(&self->moved);
        pthread_mutex_unlock(&self->lock);
    }
    follower_destroy(&follower);
    return NULL;
}

int board_new(void *zmq_context, const char *publish_url, const char *request_url,
              const auth_client_t *curve, const char *time_zone, board_t **ret)
{
    board_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    char text[160];
    snprintf(text, sizeof(text), "[calendar]\ntime_zone = %s\n", time_zone);
    char err[128];
    int rc = calendar_parse_string(text, &self->calendar, err, sizeof(err));
    if (rc < 0) {
        free(self);
        return rc;
    }
    self->zmq = zmq_context;
    self->publish_url = strdup(publish_url);
    self->request_url = strdup(request_url);
    if (curve) {
        self->curve = *curve;
        self->has_curve = true;
    }
    self->next_seq = 1;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->moved, NULL);
    if (!self->publish_url || !self->request_url) {
        board_destroy(&self);
        return -ENOMEM;
    }
    rc = pthread_create(&self->thread, NULL, board_run, self);
    if (rc) {
        board_destroy(&self);
        return -rc;
    }
    self->started = true;
    *ret = self;
    return 0;
}

void board_destroy(board_t **self)
{
    if (!self || !*self)
        return;
    board_t *b = *self;
    if (b->started) {
        pthread_mutex_lock(&b->lock);
        b->stopping = true;
        pthread_cond_broadcast(&b->moved);
        pthread_mutex_unlock(&b->lock);
        pthread_join(b->thread, NULL);
    }
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->moved);
    free(b->publish_url);
    free(b->request_url);
    free(b->tickets);
    free(b->slots);
    calendar_destroy(&b->calendar);
    free(b);
    *self = NULL;
}

uint64_t board_next_seq(board_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t seq = self->next_seq;
    pthread_mutex_unlock(&self->lock);
    return seq;
}

int board_wait(board_t *self, uint64_t seq, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    while (self->next_seq <= seq && !self->stopping && rc == 0)
        rc = pthread_cond_timedwait(&self->moved, &self->lock, &until);
    bool reached = self->next_seq > seq;
    pthread_mutex_unlock(&self->lock);
    return reached ? 0 : -ETIMEDOUT;
}

int board_find(board_t *self, const char *id, board_ticket_t *ret)
{
    pthread_mutex_lock(&self->lock);
    long i = slot_of(self, id);
    if (i >= 0)
        *ret = self->tickets[i];
    pthread_mutex_unlock(&self->lock);
    return i >= 0 ? 0 : -ENOENT;
}

uint64_t board_each(board_t *self, bool (*fn)(void *ctx, const board_ticket_t *ticket), void *ctx)
{
    pthread_mutex_lock(&self->lock);
    uint64_t seq = self->next_seq;
    for (size_t i = 0; i < self->count; i++)
        if (!fn(ctx, &self->tickets[i]))
            break;
    pthread_mutex_unlock(&self->lock);
    return seq;
}

uint64_t board_day_first_seq(board_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t seq = self->day_first_seq;
    pthread_mutex_unlock(&self->lock);
    return seq;
}

void board_stats(board_t *self, board_stats_t *ret)
{
    pthread_mutex_lock(&self->lock);
    *ret = self->stats;
    pthread_mutex_unlock(&self->lock);
}

void board_each_event_count(board_t *self,
                            void (*fn)(void *ctx, const char *origin,
                                       Dispatch__Event__BodyCase body, uint64_t count),
                            void *ctx)
{
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i <= BOARD_ORIGINS_MAX; i++) {
        if (i >= self->origin_count && i != BOARD_ORIGINS_MAX)
            continue;
        for (unsigned b = 0; b < BOARD_EVENT_SLOTS; b++)
            if (self->events[i][b])
                fn(ctx, self->origins[i], (Dispatch__Event__BodyCase)b, self->events[i][b]);
    }
    pthread_mutex_unlock(&self->lock);
}
