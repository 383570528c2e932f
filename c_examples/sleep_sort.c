/*
 * Sleep sort: 10,000 goroutines, one per number; each sleeps in proportion to its
 * number, then appends it to the output. The output comes out sorted because the
 * timers fire in order, and 10,000 sleeping goroutines cost next to nothing.
 *
 *   sleep_sort [N] [UNIT_US]   sort N pseudo-random numbers in 0..199 (default
 *                              10,000), sleeping UNIT_US microseconds per unit
 *                              (default 10,000: 10 ms, about 2 s in all); prints
 *                              the sorted numbers 20 to a line, then checks the
 *                              order and the multiset and prints "ok" (exit 0)
 *   sleep_sort --selftest      the same with 20 ms units (the tests run it beside
 *                              other programs on 2 CPUs, where a worker thread can
 *                              be descheduled for 10 ms), printing only a summary
 *                              and "ok"
 *
 * Every goroutine sleeps until the same start time plus its number's delay (a
 * deadline, not "now + delay"), so the time it takes to spawn 10,000 of them does
 * not skew the order. Two numbers one unit apart come out swapped only if one
 * goroutine wakes a whole unit later than the other: the unit is 10 ms so that a
 * loaded machine does not do that.
 *
 * Build: gcc -O2 -pthread -I include sleep_sort.c -L target/release -lgoroutine
 */
#define _GNU_SOURCE
#include <goroutine.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RANGE 200

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t start_ns, unit_ns;
static int *out;
static atomic_size_t nout;           /* the order of wake-up is the order of this count */
static _Atomic int64_t worst_late_ns;

static void sleeper(void *arg)
{
    int v = (int)(intptr_t)arg;
    int64_t deadline = start_ns + v * unit_ns;
    int64_t left = deadline - now_ns();
    if (left > 0)
        gr_sleep(left);
    out[atomic_fetch_add(&nout, 1)] = v;
    int64_t late = now_ns() - deadline;
    int64_t w = atomic_load(&worst_late_ns);
    while (late > w && !atomic_compare_exchange_weak(&worst_late_ns, &w, late)) {
    }
}

int main(int argc, char **argv)
{
    int quiet = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    int n = !quiet && argc > 1 ? atoi(argv[1]) : 10000;
    long unit_us = quiet ? 20000 : argc > 2 ? atol(argv[2]) : 10000;
    if (n <= 0 || unit_us <= 0) {
        fprintf(stderr, "usage: sleep_sort [N] [UNIT_US] | --selftest\n");
        return 2;
    }
    unit_ns = unit_us * 1000;
    int *in = malloc(sizeof(int) * (size_t)n);
    out = malloc(sizeof(int) * (size_t)n);
    if (!in || !out) {
        fprintf(stderr, "sleep_sort: out of memory\n");
        return 1;
    }
    uint32_t s = 12345;
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        in[i] = (int)((s >> 8) % RANGE);
    }

    /* Start 100 ms from now: time enough to spawn them all. */
    int64_t t0 = now_ns();
    start_ns = t0 + 100 * 1000000LL;
    for (int i = 0; i < n; i++) {
        gr_id id = gr_spawn(sleeper, (void *)(intptr_t)in[i]);
        if (id < 0) {
            fprintf(stderr, "sleep_sort: spawn: %s\n", gr_strerror((int)id));
            return 1;
        }
    }
    double spawn_ms = (now_ns() - t0) / 1e6;
    if (gr_wait_all() != 0) {
        fprintf(stderr, "sleep_sort: gr_wait_all failed\n");
        return 1;
    }
    double total_ms = (now_ns() - t0) / 1e6;
    size_t count_out = atomic_load(&nout);

    if (!quiet) {
        for (size_t i = 0; i < count_out; i++)
            printf("%d%c", out[i], (i % 20 == 19 || i + 1 == count_out) ? '\n' : ' ');
    }

    /* Check: n numbers, in order, the same multiset as the input. */
    int bad = 0;
    if (count_out != (size_t)n) {
        fprintf(stderr, "sleep_sort: %zu numbers out, %d in\n", count_out, n);
        bad = 1;
    }
    size_t inversions = 0;
    for (size_t i = 1; i < count_out; i++)
        if (out[i] < out[i - 1]) {
            if (inversions++ < 5)
                fprintf(stderr, "sleep_sort: out of order at %zu: %d after %d\n", i, out[i], out[i - 1]);
        }
    long count[RANGE] = { 0 };
    for (int i = 0; i < n; i++)
        count[in[i]]++;
    for (size_t i = 0; i < count_out; i++)
        count[out[i]]--;
    for (int v = 0; v < RANGE; v++)
        if (count[v] != 0) {
            fprintf(stderr, "sleep_sort: %d appears %ld times too %s\n", v, labs(count[v]),
                    count[v] > 0 ? "few" : "many");
            bad = 1;
            break;
        }
    printf("sleep_sort: %d goroutines spawned in %.1f ms; sorted in %.0f ms; latest wake-up "
           "%.3f ms after its deadline; %zu out of order\n", n, spawn_ms, total_ms,
           atomic_load(&worst_late_ns) / 1e6, inversions);
    if (inversions > 0 || bad)
        return 1;
    puts("ok");
    return 0;
}
