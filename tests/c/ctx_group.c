/*
 * Groups (issue 17): gr_group_* as Go's errgroup with a context, a nursery.
 *
 *   1. 100 members, the third fails (-EIO) while the other 99 are parked in
 *      gr_sleep(10 s): the 99 return -ECANCELED, gr_group_wait returns -EIO within
 *      10 ms of the failure, and the group's context says -ECANCELED;
 *   2. gr_group_limit(g, 4): 40 members never run more than 4 at once (and do reach
 *      4); raising the limit lets a waiting gr_group_go in; a plain thread's
 *      gr_group_go blocks it until a slot frees;
 *   3. gr_group_free is -EBUSY while members run (nothing freed), 0 after the wait;
 *   4. gr_group_cancel ends parked members with -ECANCELED, which gr_group_wait
 *      returns; all-successful members give 0; a wait with no members returns 0 at
 *      once; a wait cancels the group's context when it returns (as Go's Wait does);
 *   5. the parent's cancel reaches the members, and a member's own subgroup (made
 *      with gr_group_new(gr_ctx_current())) with its members.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

/* ---------------------------------------------------------------- 1. first failure */

enum { MEMBERS = 100, FAILING = 2 };

struct fail_run {
    int rc[MEMBERS];
    int64_t failed_at;
    atomic_int started;
};

struct member_arg {
    struct fail_run *run;
    int i;
};

static int fail_member(void *arg)
{
    struct member_arg *m = arg;
    atomic_fetch_add(&m->run->started, 1);
    if (m->i == FAILING) {
        /* Fail once the others are parked. */
        while (atomic_load(&m->run->started) < MEMBERS)
            gr_sleep(1 * MS);
        gr_sleep(10 * MS);
        m->run->failed_at = now_ns();
        return -EIO;
    }
    int rc = gr_sleep(10000 * MS);
    m->run->rc[m->i] = rc;
    return rc;
}

static void first_failure_cancels_the_rest(void)
{
    static struct fail_run run;
    static struct member_arg args[MEMBERS];
    gr_group *g = gr_group_new(NULL);
    CHECK(g);
    for (int i = 0; i < MEMBERS; i++) {
        args[i] = (struct member_arg){ &run, i };
        CHECK(gr_group_go(g, fail_member, &args[i]) > 0);
    }
    CHECK_EQ(gr_group_free(g), -EBUSY);
    CHECK_EQ(gr_group_wait(g), -EIO);
    int64_t took = now_ns() - run.failed_at;
    printf("group: failure -> gr_group_wait returned: %.2f ms (99 members cancelled)\n",
           took / 1e6);
    if (took > latency_bound(10 * MS))
        FAIL("gr_group_wait returned %.3f ms after the failure (bound: %.0f ms)", took / 1e6,
             latency_bound(10 * MS) / 1e6);
    for (int i = 0; i < MEMBERS; i++)
        if (i != FAILING && run.rc[i] != -ECANCELED)
            FAIL("member %d's gr_sleep returned %d, expected -ECANCELED", i, run.rc[i]);
    CHECK_EQ(gr_ctx_err(gr_group_ctx(g)), -ECANCELED);
    CHECK_EQ(gr_group_free(g), 0);
}

/* ---------------------------------------------------------------- 2. the limit */

static atomic_int running, max_running;

static int limited_member(void *arg)
{
    (void)arg;
    int now = atomic_fetch_add(&running, 1) + 1;
    int m = atomic_load(&max_running);
    while (now > m && !atomic_compare_exchange_weak(&max_running, &m, now)) {
    }
    gr_sleep(2 * MS);
    atomic_fetch_sub(&running, 1);
    return 0;
}

static gr_chan *hold;

static int held_member(void *arg)
{
    (void)arg;
    long v;
    gr_chan_recv(hold, &v);
    return 0;
}

struct go_later {
    gr_group *g;
    gr_id id;
};

static void go_from_goroutine(void *arg)
{
    struct go_later *l = arg;
    l->id = gr_group_go(l->g, held_member, NULL);
}

static void *go_from_thread(void *arg)
{
    struct go_later *l = arg;
    l->id = gr_group_go(l->g, limited_member, NULL);
    return NULL;
}

static void limit(void)
{
    gr_group *g = gr_group_new(NULL);
    CHECK_EQ(gr_group_limit(g, 4), 0);
    for (int i = 0; i < 40; i++)
        CHECK(gr_group_go(g, limited_member, NULL) > 0);
    CHECK_EQ(gr_group_wait(g), 0);
    printf("group: limit 4, 40 members: at most %d ran at once\n", atomic_load(&max_running));
    CHECK_EQ(atomic_load(&max_running), 4);
    CHECK_EQ(gr_group_free(g), 0);

    /* Raising the limit lets a waiting gr_group_go in. */
    hold = gr_chan_new(sizeof(long), 0);
    g = gr_group_new(NULL);
    CHECK_EQ(gr_group_limit(g, 1), 0);
    CHECK(gr_group_go(g, held_member, NULL) > 0);
    struct go_later l = { g, 0 };
    gr_id waiter = SPAWN(go_from_goroutine, &l);
    await_goroutine_waiting(waiter, "wait group");
    CHECK_EQ(l.id, 0);
    CHECK_EQ(gr_group_limit(g, 2), 0);
    CHECK_EQ(gr_join(waiter), 0);
    CHECK(l.id > 0);

    /* A plain thread's gr_group_go blocks the thread until a slot frees. */
    struct go_later t = { g, 0 };
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, go_from_thread, &t), 0);
    gr_sleep(30 * MS);
    CHECK_EQ(t.id, 0);
    long v = 0;
    CHECK_EQ(gr_chan_send(hold, &v), 0); /* one held member ends: its slot goes */
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(t.id > 0);
    CHECK_EQ(gr_chan_send(hold, &v), 0);
    CHECK_EQ(gr_group_wait(g), 0);
    CHECK_EQ(gr_group_free(g), 0);
    CHECK_EQ(gr_chan_free(hold), 0);
}

/* ---------------------------------------------------------------- 3-4. cancel, wait */

static int sleep_member(void *arg)
{
    (void)arg;
    return gr_sleep(10000 * MS);
}

static int ok_member(void *arg)
{
    (void)arg;
    gr_sleep(1 * MS);
    return 0;
}

static void cancel_and_wait(void)
{
    gr_group *g = gr_group_new(NULL);
    CHECK_EQ(gr_group_wait(g), 0); /* no members: at once */
    CHECK_EQ(gr_ctx_err(gr_group_ctx(g)), -ECANCELED); /* the wait cancels the context */
    CHECK_EQ(gr_group_free(g), 0);
    g = gr_group_new(NULL);
    gr_id ids[10];
    for (int i = 0; i < 10; i++)
        CHECK((ids[i] = gr_group_go(g, sleep_member, NULL)) > 0);
    await_goroutine_waiting(ids[9], "sleep");
    CHECK_EQ(gr_group_free(g), -EBUSY);
    CHECK_EQ(gr_group_cancel(g), 0);
    CHECK_EQ(gr_group_wait(g), -ECANCELED);
    CHECK_EQ(gr_group_free(g), 0);

    g = gr_group_new(NULL);
    for (int i = 0; i < 10; i++)
        CHECK(gr_group_go(g, ok_member, NULL) > 0);
    CHECK_EQ(gr_ctx_err(gr_group_ctx(g)), 0);
    CHECK_EQ(gr_group_wait(g), 0);
    CHECK_EQ(gr_ctx_err(gr_group_ctx(g)), -ECANCELED); /* the wait cancels it */
    CHECK_EQ(gr_group_free(g), 0);
}

/* ---------------------------------------------------------------- 5. the tree */

static atomic_int inner_cancelled;

static int inner_member(void *arg)
{
    (void)arg;
    int rc = gr_sleep(10000 * MS);
    if (rc == -ECANCELED)
        atomic_fetch_add(&inner_cancelled, 1);
    return rc;
}

static int outer_member(void *arg)
{
    (void)arg;
    gr_group *sub = gr_group_new(gr_ctx_current());
    CHECK(sub);
    for (int i = 0; i < 5; i++)
        CHECK(gr_group_go(sub, inner_member, NULL) > 0);
    /* Our own wait returns -ECANCELED at once when the parent is cancelled; the
     * members end at once too: wait for them without parking, then free. */
    int rc = gr_group_wait(sub);
    while (gr_group_free(sub) == -EBUSY)
        gr_yield();
    return rc;
}

static void tree(void)
{
    gr_ctx *parent = gr_ctx_new(NULL);
    gr_group *g = gr_group_new(parent);
    for (int i = 0; i < 4; i++)
        CHECK(gr_group_go(g, outer_member, NULL) > 0);
    gr_sleep(30 * MS);
    CHECK_EQ(gr_ctx_cancel(parent), 0);
    CHECK_EQ(gr_group_wait(g), -ECANCELED);
    CHECK_EQ(atomic_load(&inner_cancelled), 20);
    CHECK_EQ(gr_group_free(g), 0);
    CHECK_EQ(gr_ctx_free(parent), 0);
}

static void run(void *arg)
{
    (void)arg;
    first_failure_cancels_the_rest();
    limit();
    cancel_and_wait();
    tree();
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_main(run, NULL), 0);
    printf("ok\n");
    return 0;
}
