/*
 * Sleeps under the hook layer: 1,000 goroutines each call usleep(100 ms) on one
 * processor; they all sleep at once (about 0.1 s in all, under 0.6 s) and no thread
 * is added (without the layer each usleep holds a thread: 28 s, 2 -> 16 threads).
 * Then what libc promises of each sleep call on a goroutine: nanosleep's EINVAL, an
 * absolute clock_nanosleep in the past returning at once, sleep(1) taking a second
 * while another goroutine runs on the same processor.
 */
#include "hook_test.h"

#include <sys/select.h>

static atomic_int slept;

static void usleeper(void *arg)
{
    (void)arg;
    CHECK_EQ(usleep(100000), 0);
    atomic_fetch_add(&slept, 1);
}

static atomic_long ticks;
static atomic_int stop_ticking;

static void ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_ticking)) {
        atomic_fetch_add(&ticks, 1);
        struct timespec ts = {0, 1000000};
        CHECK_EQ(nanosleep(&ts, NULL), 0);
    }
}

static void calls(void *arg)
{
    (void)arg;
    struct timespec bad = {0, 1000000000L}, neg = {-1, 0};
    errno = 0;
    CHECK_EQ(nanosleep(&bad, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(nanosleep(&neg, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);

    /* Absolute, in the past: at once; 50 ms ahead: 50 ms. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t t0 = now_ns();
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, NULL), 0);
    CHECK(now_ns() - t0 < 20000000);
    now.tv_nsec += 50000000;
    if (now.tv_nsec >= 1000000000) {
        now.tv_sec++;
        now.tv_nsec -= 1000000000;
    }
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, NULL), 0);
    double s = seconds_since(t0);
    CHECK(s >= 0.049 && s < 0.25); /* a sanity bound: the machine may be loaded */

    /* sleep(1) parks: the ticker on the same processor keeps ticking. */
    long before = atomic_load(&ticks);
    t0 = now_ns();
    CHECK_EQ(sleep(1), 0u);
    s = seconds_since(t0);
    CHECK(s >= 0.999 && s < 1.5);
    long ran = atomic_load(&ticks) - before;
    printf("sleep(1): %.3f s, the other goroutine ticked %ld times meanwhile\n", s, ran);
    CHECK(ran > 300);

    /* select with no fds is a sleep too (and updates its timeout). */
    struct timeval tv = {0, 30000};
    t0 = now_ns();
    CHECK_EQ(select(0, NULL, NULL, NULL, &tv), 0);
    s = seconds_since(t0);
    CHECK(s >= 0.029 && s < 0.25);
    CHECK(tv.tv_sec == 0 && tv.tv_usec == 0);
    atomic_store(&stop_ticking, 1);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(1), 1);
    struct workload w = run_workload(NULL, 1000, usleeper);
    printf("1,000 goroutines x usleep(100 ms), 1 proc: %.3f s, threads %ld -> %ld (+%ld)\n",
           w.seconds, w.before, w.peak, w.added);
    CHECK_EQ(atomic_load(&slept), 1000);
    CHECK(w.seconds >= 0.1 && w.seconds < 0.6);
    CHECK_EQ(w.added, 0);

    SPAWN(ticker, NULL);
    SPAWN(calls, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
