/*
 * gr_block_io timeouts, in a goroutine and on a plain thread:
 *   - a 50 ms timeout on an empty pipe returns -ETIMEDOUT after 50..150 ms
 *     (10 goroutines at once, and 5 in a row);
 *   - timeout 0 only polls: -ETIMEDOUT at once when not ready, the mask when ready;
 *   - a negative timeout (-1, INT64_MIN) waits for ever: a late writer wakes it;
 *   - huge timeouts saturate instead of overflowing into "already expired":
 *     INT64_MAX, INT64_MAX - 1 and a year on a pipe that becomes readable 100 ms
 *     later return GR_READ after >= 100 ms;
 *   - a ready fd returns its mask at once whatever the timeout; GR_READ|GR_WRITE on
 *     a pipe write end reports only GR_WRITE;
 *   - gr_sleep with huge values does not return early either.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL

static void timeout_50ms(int fd, const char *who)
{
    int64_t t0 = now_ns();
    int rc = gr_block_io(fd, GR_READ, 50 * MS);
    int64_t dt = now_ns() - t0;
    if (rc != -ETIMEDOUT)
        FAIL("%s: gr_block_io(empty pipe, 50 ms) = %d (%s)", who, rc, gr_strerror(rc));
    if (dt < 50 * MS || dt > 150 * MS)
        FAIL("%s: a 50 ms timeout took %.3f ms", who, dt / 1e6);
}

struct timed {
    int fd;
    double ms;
};

static void one_timeout(void *arg)
{
    struct timed *t = arg;
    int64_t t0 = now_ns();
    timeout_50ms(t->fd, "goroutine");
    t->ms = (now_ns() - t0) / 1e6;
}

/* Writes one byte to fd after `ms` (a goroutine sleeps; the runtime keeps running). */
struct late {
    int fd;
    int ms;
};

static void late_writer(void *arg)
{
    struct late *l = arg;
    CHECK_EQ(gr_sleep(l->ms * MS), 0);
    CHECK_EQ(gr_write(l->fd, "x", 1), 1);
}

static void *late_writer_thread(void *arg)
{
    struct late *l = arg;
    sleep_ms(l->ms);
    CHECK_EQ(write(l->fd, "x", 1), 1);
    return NULL;
}

static void drain(int fd)
{
    char buf[64];
    CHECK(read(fd, buf, sizeof buf) > 0);
}

/* Waits with `timeout` on a pipe that becomes readable after 100 ms. */
static void wait_late(int p[2], int64_t timeout, int in_goroutine, const char *what)
{
    struct late l = { p[1], 100 };
    pthread_t th;
    gr_id w = 0;
    if (in_goroutine)
        w = SPAWN(late_writer, &l);
    else
        CHECK_EQ(pthread_create(&th, NULL, late_writer_thread, &l), 0);
    int64_t t0 = now_ns();
    int rc = gr_block_io(p[0], GR_READ, timeout);
    int64_t dt = now_ns() - t0;
    if (rc != GR_READ)
        FAIL("%s: gr_block_io(pipe, %s) = %d (%s)", what, in_goroutine ? "goroutine" : "thread", rc,
             gr_strerror(rc));
    if (dt < 95 * MS || dt > 1000 * MS)
        FAIL("%s: woke after %.3f ms, expected ~100 ms", what, dt / 1e6);
    if (in_goroutine)
        CHECK_EQ(gr_join(w), 0);
    else
        CHECK_EQ(pthread_join(th, NULL), 0);
    drain(p[0]);
}

static void checks(int in_goroutine)
{
    const char *who = in_goroutine ? "goroutine" : "plain thread";
    int p[2];
    CHECK_EQ(pipe(p), 0);

    /* Accuracy, a few in a row. */
    for (int i = 0; i < 5; i++)
        timeout_50ms(p[0], who);

    /* Timeout 0 polls. */
    int64_t t0 = now_ns();
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(gr_block_io(p[0], GR_READ, 0), -ETIMEDOUT);
    int64_t per = (now_ns() - t0) / 1000;
    if (per > 1 * MS)
        FAIL("%s: a poll with timeout 0 took %lld ns", who, (long long)per);
    CHECK_EQ(gr_block_io(p[1], GR_WRITE, 0), GR_WRITE);
    CHECK_EQ(gr_block_io(p[1], GR_READ | GR_WRITE, 0), GR_WRITE);
    CHECK_EQ(write(p[1], "a", 1), 1);
    CHECK_EQ(gr_block_io(p[0], GR_READ, 0), GR_READ);
    CHECK_EQ(gr_block_io(p[0], GR_READ | GR_WRITE, 0), GR_READ);
    /* Ready: returns at once whatever the timeout. */
    t0 = now_ns();
    CHECK_EQ(gr_block_io(p[0], GR_READ, -1), GR_READ);
    CHECK_EQ(gr_block_io(p[0], GR_READ, INT64_MAX), GR_READ);
    CHECK_EQ(gr_block_io(p[1], GR_WRITE, 50 * MS), GR_WRITE);
    CHECK(now_ns() - t0 < 20 * MS);
    drain(p[0]);

    /* Negative and huge timeouts with a late writer. */
    wait_late(p, -1, in_goroutine, "timeout -1");
    wait_late(p, INT64_MIN, in_goroutine, "timeout INT64_MIN");
    wait_late(p, INT64_MAX, in_goroutine, "timeout INT64_MAX");
    wait_late(p, INT64_MAX - 1, in_goroutine, "timeout INT64_MAX - 1");
    wait_late(p, 365LL * 24 * 3600 * 1000000000LL, in_goroutine, "timeout 1 year");
    wait_late(p, 2 * 1000 * MS, in_goroutine, "timeout 2 s");

    /* After all that, a short timeout still times out correctly (no stale readiness). */
    timeout_50ms(p[0], who);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
    printf("%s: timeouts ok\n", who);
}

static atomic_int huge_sleeper_woke;

static void huge_sleeper(void *arg)
{
    gr_sleep(*(int64_t *)arg);
    atomic_fetch_add(&huge_sleeper_woke, 1);
}

static void many_at_once(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct timed t[10];
    gr_id ids[10];
    for (int i = 0; i < 10; i++) {
        t[i].fd = p[0];
        ids[i] = SPAWN(one_timeout, &t[i]);
    }
    double max = 0;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(gr_join(ids[i]), 0);
        if (t[i].ms > max)
            max = t[i].ms;
    }
    printf("10 concurrent 50 ms timeouts on one fd: slowest %.3f ms\n", max);
    CHECK_EQ(gr_close(p[0]), 0);
    CHECK_EQ(gr_close(p[1]), 0);
}

static void in_goroutine(void *arg)
{
    (void)arg;
    checks(1);
    many_at_once();
}

int main(void)
{
    watchdog(40);
    CHECK_EQ(gr_main(in_goroutine, NULL), 0);
    checks(0);

    /* Huge sleeps saturate: none of these goroutines wakes within 200 ms. */
    static int64_t huge[] = { INT64_MAX, INT64_MAX - 1, 365LL * 24 * 3600 * 1000000000LL,
                              INT64_MAX / 2 + 1 };
    for (int i = 0; i < 4; i++)
        SPAWN(huge_sleeper, &huge[i]);
    sleep_ms(200);
    CHECK_EQ(atomic_load(&huge_sleeper_woke), 0);
    puts("ok");
    return 0; /* the huge sleepers are still asleep: exit() ends them */
}
