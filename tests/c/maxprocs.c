/*
 * gr_init and gr_maxprocs: gr_init(3) gives 3 processors and a second gr_init is
 * -EALREADY; gr_maxprocs(n < 1) only queries; gr_maxprocs(n) returns the previous
 * value. With 1 processor at most one goroutine runs at a time; with 4, goroutines
 * that never yield run in parallel. A processor beyond a lowered limit stops even
 * while its goroutines do nothing but yield (a yield's fast path never goes through
 * the scheduler's general path, so the check must come at its periodic one).
 * gr_init(0) takes GR_MAXPROCS, else the CPU count (checked in child processes
 * started with and without GR_MAXPROCS=3).
 */
#include "check.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>

static atomic_int running, max_running, finished;

static void spin(void *arg)
{
    int64_t until = now_ns() + (int64_t)(intptr_t)arg * 1000000;
    int n = atomic_fetch_add(&running, 1) + 1;
    int m = atomic_load(&max_running);
    while (n > m && !atomic_compare_exchange_weak(&max_running, &m, n)) {
    }
    while (now_ns() < until) {
        /* never yields */
        n = atomic_load(&running);
        m = atomic_load(&max_running);
        while (n > m && !atomic_compare_exchange_weak(&max_running, &m, n)) {
        }
    }
    atomic_fetch_sub(&running, 1);
    atomic_fetch_add(&finished, 1);
}

static void run_spinners(int count, int ms)
{
    atomic_store(&max_running, 0);
    atomic_store(&finished, 0);
    for (int i = 0; i < count; i++)
        SPAWN(spin, (void *)(intptr_t)ms);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&finished), count);
}

/* Yielders: each marks itself running for a busy slice of ~20 us, then yields;
   `overlaps` counts the slices that began while another was running. */
static atomic_int y_running, y_stop;
static atomic_long y_overlaps;

static void yielder(void *arg)
{
    (void)arg;
    while (!atomic_load(&y_stop)) {
        if (atomic_fetch_add(&y_running, 1) > 0)
            atomic_fetch_add(&y_overlaps, 1);
        int64_t until = now_ns() + 20000;
        while (now_ns() < until) {
        }
        atomic_fetch_sub(&y_running, 1);
        gr_yield();
    }
}

/* 4 yielders on 2 processors run in parallel; after gr_maxprocs(1), within a bound,
   a window of 100 ms passes with no two running at once. */
static void lowered_while_yielding(void)
{
    CHECK(gr_maxprocs(2) >= 1);
    atomic_store(&y_stop, 0);
    atomic_store(&y_overlaps, 0);
    for (int i = 0; i < 4; i++)
        SPAWN(yielder, NULL);
    int64_t deadline = now_ns() + latency_bound(5000000000LL);
    while (atomic_load(&y_overlaps) == 0) {
        if (now_ns() > deadline)
            FAIL("maxprocs 2: 4 yielders never ran two at once");
        sleep_ms(1);
    }
    CHECK_EQ(gr_maxprocs(1), 2);
    int64_t lowered = now_ns();
    deadline = lowered + latency_bound(5000000000LL);
    for (;;) {
        long before = atomic_load(&y_overlaps);
        sleep_ms(100);
        if (atomic_load(&y_overlaps) == before)
            break;
        if (now_ns() > deadline)
            FAIL("maxprocs 2 -> 1: yielders still ran two at once %.1f s later",
                 (now_ns() - lowered) / 1e9);
    }
    printf("maxprocs 2 -> 1 under 4 yielders: one at a time within %.0f ms\n",
           (now_ns() - lowered) / 1e6);
    atomic_store(&y_stop, 1);
    CHECK_EQ(gr_wait_all(), 0);
}

/* Runs this program again as `maxprocs MODE`, with GR_MAXPROCS=3 or without it. */
static int child(char **argv, char *mode, const char *gr_maxprocs)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (gr_maxprocs)
            setenv("GR_MAXPROCS", gr_maxprocs, 1);
        else
            unsetenv("GR_MAXPROCS");
        char *args[] = { argv[0], mode, NULL };
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    watchdog(30);
    if (argc > 1 && strcmp(argv[1], "env") == 0) {
        CHECK_EQ(gr_init(0), 3);
        CHECK_EQ(gr_maxprocs(0), 3);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "default") == 0) {
        cpu_set_t set;
        CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        int np = gr_init(0);
        if (np != CPU_COUNT(&set) && np != online)
            FAIL("gr_init(0) = %d without GR_MAXPROCS; %d CPUs usable, %ld online", np,
                 CPU_COUNT(&set), online);
        CHECK_EQ(gr_maxprocs(0), np);
        return 0;
    }

    CHECK_EQ(gr_init(3), 3);
    CHECK_EQ(gr_init(3), -EALREADY);
    CHECK_EQ(gr_maxprocs(0), 3);
    CHECK_EQ(gr_maxprocs(-1), 3);

    CHECK_EQ(gr_maxprocs(1), 3);
    CHECK_EQ(gr_maxprocs(0), 1);
    run_spinners(8, 5);
    if (atomic_load(&max_running) != 1)
        FAIL("maxprocs 1, but %d goroutines ran at once", atomic_load(&max_running));
    printf("maxprocs 3 -> 1: 8 goroutines ran one at a time\n");

    CHECK_EQ(gr_maxprocs(4), 1);
    CHECK_EQ(gr_maxprocs(0), 4);
    run_spinners(8, 50);
    if (atomic_load(&max_running) < 2)
        FAIL("maxprocs 4, but never more than %d goroutine ran at once",
             atomic_load(&max_running));
    if (atomic_load(&max_running) > 4)
        FAIL("maxprocs 4, but %d goroutines ran at once", atomic_load(&max_running));
    printf("maxprocs 1 -> 4: %d goroutines ran at once\n", atomic_load(&max_running));

    lowered_while_yielding();

    CHECK_EQ(child(argv, "env", "3"), 0);
    CHECK_EQ(child(argv, "default", NULL), 0);
    puts("ok");
    return 0;
}
