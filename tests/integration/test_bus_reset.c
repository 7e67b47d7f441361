/* A reset state dir on either end of a link, with two real bus-peer
 * processes (DESIGN.md section 3 point 6).
 *
 *  - sender reset: the sender's state dir is wiped and it starts again with
 *    new messages. The receiver refuses its new incarnation: nothing is
 *    applied, nothing leaves the sender's outbox. Restarted with
 *    --accept-incarnation sender, the receiver applies every new message
 *    once.
 *  - sender renamed: the sender's state dir runs under another id. The
 *    receiver refuses it (its incarnation belongs to the old id); restarted
 *    with --accept-incarnation sender2 it goes on from the old id's position.
 *  - receiver reset: the receiver's state dir is wiped. The sender sees
 *    another incarnation in the acks and diverges: its outbox keeps every
 *    unacknowledged message. Restarted with --accept-incarnation receiver,
 *    it delivers them all once.
 *
 * Each ends with 0 lost, 0 applied twice, 0 out of order. The test waits on
 * the processes' progress lines ("bus diverged ...", "done ..."), never on
 * a timer.
 *
 *   test-bus-reset
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "buspeer.h"
#include "harness.h"
#include "store.h"

#define WAIT_MS 30000

typedef struct run {
    const char *program;
    const char *sender_id;
    char dir[512], sender_state[600], receiver_state[600];
    char endpoint[256];
    harness_proc_t *sender, *receiver;
} run_t;

static int fail(const char *what)
{
    fprintf(stderr, "FAIL: %s\n", what);
    return -1;
}

static int start_receiver(run_t *run, const char *accept)
{
    const char *argv[] = {run->program,
                          "receive",
                          "--state",
                          run->receiver_state,
                          "--id",
                          "receiver",
                          "--bind",
                          run->endpoint,
                          accept ? "--accept-incarnation" : NULL,
                          accept,
                          NULL};
    int rc = harness_spawn(argv, true, &run->receiver);
    if (rc == 0)
        rc = harness_wait_ready(run->receiver, WAIT_MS);
    return rc < 0 ? fail("receiver did not become ready") : 0;
}

static int start_sender(run_t *run, uint64_t first, uint64_t count, const char *accept)
{
    char first_text[32], count_text[32];
    snprintf(first_text, sizeof(first_text), "%llu", (unsigned long long)first);
    snprintf(count_text, sizeof(count_text), "%llu", (unsigned long long)count);
    const char *argv[] = {run->program,
                          "send",
                          "--state",
                          run->sender_state,
                          "--id",
                          run->sender_id,
                          "--peer",
                          "receiver",
                          "--connect",
                          run->endpoint,
                          "--first",
                          first_text,
                          "--count",
                          count_text,
                          "--batch",
                          "20",
                          accept ? "--accept-incarnation" : NULL,
                          accept,
                          NULL};
    int rc = harness_spawn(argv, true, &run->sender);
    if (rc == 0)
        rc = harness_wait_ready(run->sender, WAIT_MS);
    return rc < 0 ? fail("sender did not become ready") : 0;
}

/* Reads proc's progress lines until one starts with prefix. */
static int wait_line(harness_proc_t *proc, const char *prefix)
{
    char line[256];
    int rc;
    while ((rc = harness_progress_line(proc, line, sizeof(line), WAIT_MS)) == 1)
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            return 0;
    fprintf(stderr, "FAIL: no progress line \"%s\"\n", prefix);
    return -1;
}

/* Waits for "done" and a clean exit. */
static int sender_finishes(run_t *run)
{
    int status = -1;
    if (wait_line(run->sender, "done ") < 0 ||
        harness_wait_exit(run->sender, WAIT_MS, &status) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return fail("the sender did not finish cleanly");
    harness_destroy(&run->sender);
    return 0;
}

/* A figure of a store (its process stopped or not: LMDB readers share
 * it): the entries of database db, or with key the u64 under it. -1 when
 * it cannot be read. */
static int64_t store_figure(const char *state, const char *db, const char *key)
{
    store_t *store;
    if (store_open(state, NULL, &store) < 0)
        return -1;
    MDB_dbi dbi;
    MDB_txn *txn = NULL;
    MDB_stat st = {0};
    uint64_t value = 0;
    int rc = store_dbi(store, db, 0, &dbi);
    if (rc == 0)
        rc = store_read_begin(store, &txn);
    if (rc == 0 && key)
        rc = store_get_u64(txn, dbi, key, strlen(key), 0, &value);
    else if (rc == 0)
        rc = store_rc(mdb_stat(txn, dbi, &st));
    store_read_end(&txn);
    store_destroy(&store);
    if (rc < 0)
        return -1;
    return key ? (int64_t)value : (int64_t)st.ms_entries;
}

/* The receiver applied exactly first..last, each once, in order. */
static int verify(run_t *run, uint64_t first, uint64_t last)
{
    buspeer_applied_t a;
    int rc = buspeer_applied(run->receiver_state, &a);
    printf("  applied %llu (%llu..%llu expected), duplicates %llu, out of order %llu, holes %llu\n",
           (unsigned long long)a.count, (unsigned long long)first, (unsigned long long)last,
           (unsigned long long)a.dups, (unsigned long long)a.disorder, (unsigned long long)a.holes);
    if (rc < 0)
        return fail("cannot read the receiver's store");
    if (a.count != last - first + 1 || a.first != first || a.last != last || a.holes != 0)
        return fail("messages lost");
    if (a.dups != 0)
        return fail("messages applied twice");
    if (a.disorder != 0)
        return fail("messages applied out of order");
    return 0;
}

static int setup(run_t *run, const char *program, const char *tag)
{
    *run = (run_t){.program = program, .sender_id = "sender"};
    if (harness_tcp_endpoint(run->endpoint, sizeof(run->endpoint)) < 0)
        return fail("no free port");
    if (harness_tmpdir(tag, run->dir, sizeof(run->dir)) < 0)
        return fail("tmpdir");
    snprintf(run->sender_state, sizeof(run->sender_state), "%s/sender", run->dir);
    snprintf(run->receiver_state, sizeof(run->receiver_state), "%s/receiver", run->dir);
    return 0;
}

static int finish(run_t *run, int rc, const char *name)
{
    harness_destroy(&run->sender);
    harness_destroy(&run->receiver);
    printf("%s: %s\n", name, rc == 0 ? "passed" : "FAILED");
    if (rc == 0)
        harness_rmtree(run->dir);
    else
        fprintf(stderr, "state kept in %s\n", run->dir);
    return rc;
}

/* A link with messages 1..100 delivered, the sender gone. */
static int first_hundred(run_t *run, const char *program, const char *tag)
{
    int rc = setup(run, program, tag);
    if (rc == 0)
        rc = start_receiver(run, NULL);
    if (rc == 0)
        rc = start_sender(run, 1, 100, NULL);
    if (rc == 0)
        rc = sender_finishes(run);
    return rc;
}

static int sender_reset(const char *program)
{
    run_t run;
    int rc = first_hundred(&run, program, "bus-reset-sender");
    /* The sender's state dir is reset: 80 new messages, seqs 1..80 again. */
    if (rc == 0)
        rc = harness_rmtree(run.sender_state) < 0 ? fail("cannot wipe the sender") : 0;
    if (rc == 0)
        rc = start_sender(&run, 101, 80, NULL);
    if (rc == 0)
        rc = wait_line(run.receiver, "bus diverged sender sender-incarnation");
    if (rc == 0)
        rc = wait_line(run.sender, "bus refused receiver");
    if (rc == 0) {
        harness_kill(run.sender, SIGKILL);
        harness_destroy(&run.sender);
        /* Every message generated is still there (stopped at any moment). */
        int64_t generated = store_figure(run.sender_state, "peer.meta", "generated");
        if (generated < 1 || store_figure(run.sender_state, "outbox.receiver", NULL) != generated)
            rc = fail("the sender's outbox lost messages the receiver refused");
        else if (store_figure(run.receiver_state, "peer.applied", NULL) != 100)
            rc = fail("the receiver applied messages of a refused incarnation");
    }
    /* The operator accepts the new incarnation on the receiver. */
    if (rc == 0) {
        harness_kill(run.receiver, SIGKILL);
        harness_destroy(&run.receiver);
        rc = start_receiver(&run, "sender");
    }
    if (rc == 0)
        rc = start_sender(&run, 101, 80, NULL);
    if (rc == 0)
        rc = wait_line(run.receiver, "bus accepted sender sender-incarnation");
    if (rc == 0)
        rc = sender_finishes(&run);
    if (rc == 0) {
        harness_kill(run.receiver, SIGKILL);
        rc = verify(&run, 1, 180);
    }
    return finish(&run, rc, "sender reset");
}

static int receiver_reset(const char *program)
{
    run_t run;
    int rc = first_hundred(&run, program, "bus-reset-receiver");
    /* The receiver's state dir is reset; the sender has 50 more. */
    if (rc == 0) {
        harness_kill(run.receiver, SIGKILL);
        harness_destroy(&run.receiver);
        rc = harness_rmtree(run.receiver_state) < 0 ? fail("cannot wipe the receiver") : 0;
    }
    if (rc == 0)
        rc = start_receiver(&run, NULL);
    if (rc == 0)
        rc = start_sender(&run, 1, 150, NULL);
    if (rc == 0)
        rc = wait_line(run.sender, "bus diverged receiver receiver-incarnation");
    if (rc == 0) {
        harness_kill(run.sender, SIGKILL);
        harness_destroy(&run.sender);
        int64_t generated = store_figure(run.sender_state, "peer.meta", "generated");
        if (generated <= 100 ||
            store_figure(run.sender_state, "outbox.receiver", NULL) != generated - 100)
            rc = fail("the sender's outbox lost messages no receiver applied");
        else if (store_figure(run.receiver_state, "peer.applied", NULL) != 0)
            rc = fail("the new receiver applied messages past a gap");
    }
    /* The operator accepts the new receiver on the sender. */
    if (rc == 0)
        rc = start_sender(&run, 1, 150, "receiver");
    if (rc == 0)
        rc = wait_line(run.sender, "bus accepted receiver receiver-incarnation");
    if (rc == 0)
        rc = sender_finishes(&run);
    if (rc == 0) {
        harness_kill(run.receiver, SIGKILL);
        rc = verify(&run, 101, 150);
    }
    return finish(&run, rc, "receiver reset");
}

static int sender_renamed(const char *program)
{
    run_t run;
    int rc = first_hundred(&run, program, "bus-reset-renamed");
    /* The same state dir runs as "sender2", with 30 more messages. */
    run.sender_id = "sender2";
    if (rc == 0)
        rc = start_sender(&run, 1, 130, NULL);
    if (rc == 0)
        rc = wait_line(run.receiver, "bus diverged sender2 sender-renamed");
    if (rc == 0)
        rc = wait_line(run.sender, "bus refused receiver");
    if (rc == 0) {
        harness_kill(run.sender, SIGKILL);
        harness_destroy(&run.sender);
        int64_t generated = store_figure(run.sender_state, "peer.meta", "generated");
        if (generated <= 100 ||
            store_figure(run.sender_state, "outbox.receiver", NULL) != generated - 100)
            rc = fail("the sender's outbox lost messages the receiver refused");
        else if (store_figure(run.receiver_state, "peer.applied", NULL) != 100)
            rc = fail("the receiver applied messages of a refused name");
    }
    /* The operator accepts the new name on the receiver: the position of
     * "sender" goes on under "sender2". */
    if (rc == 0) {
        harness_kill(run.receiver, SIGKILL);
        harness_destroy(&run.receiver);
        rc = start_receiver(&run, "sender2");
    }
    if (rc == 0)
        rc = start_sender(&run, 1, 130, NULL);
    if (rc == 0)
        rc = wait_line(run.receiver, "bus accepted sender2 sender-renamed");
    if (rc == 0)
        rc = sender_finishes(&run);
    if (rc == 0) {
        harness_kill(run.receiver, SIGKILL);
        rc = verify(&run, 1, 130);
    }
    return finish(&run, rc, "sender renamed");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *program = harness_program("BUS_PEER", "tools/bus-peer");
    int failed = 0;
    failed += sender_reset(program) < 0;
    failed += receiver_reset(program) < 0;
    failed += sender_renamed(program) < 0;
    return failed ? 1 : 0;
}
