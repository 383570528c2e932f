/*
 * libgoroutine demo (`make demo`): a million goroutines that each yield three
 * times, then goroutines against pthreads for create + join.
 *
 *   demo [N]    N goroutines in the first part (default 1,000,000)
 */
#define _GNU_SOURCE
#include <goroutine.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long yields_done;

static void three_yields(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        gr_yield();
    atomic_fetch_add_explicit(&yields_done, 3, memory_order_relaxed);
}

static void nothing(void *arg)
{
    (void)arg;
}

static void *thread_nothing(void *arg)
{
    return arg;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A "VmHWM:"-style field of /proc/self/status, in KiB. */
static long status_kib(const char *key)
{
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

/* 1234567 -> "1,234,567" */
static const char *commas(long v, char *buf)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%ld", v), j = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = tmp[i];
    }
    buf[j] = '\0';
    return buf;
}

static void die(const char *what, long rc)
{
    fprintf(stderr, "demo: %s failed: %s\n", what, rc < 0 ? gr_strerror((int)rc) : strerror((int)rc));
    exit(1);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    char a[32], b[32];
    if (n < 1)
        n = 1;

    int procs = gr_init(0);
    if (procs < 0)
        die("gr_init", procs);
    printf("libgoroutine %s: %d processors, %ld CPUs online\n\n", gr_version(),
           procs, sysconf(_SC_NPROCESSORS_ONLN));

    /* Part 1: N goroutines, 3 yields each. */
    long rss0 = status_kib("VmRSS");
    double t0 = now_ms();
    for (long i = 0; i < n; i++) {
        gr_id id = gr_spawn(three_yields, NULL);
        if (id < 0)
            die("gr_spawn", id);
    }
    double t1 = now_ms();
    int rc = gr_wait_all();
    if (rc < 0)
        die("gr_wait_all", rc);
    double t2 = now_ms();
    printf("spawned %s goroutines that yield 3 times each (%s yields)\n", commas(n, a),
           commas(atomic_load(&yields_done), b));
    printf("  spawn:             %8.1f ms\n", t1 - t0);
    printf("  spawn + run + end: %8.1f ms  (%.0f ns per goroutine)\n", t2 - t0,
           (t2 - t0) * 1e6 / n);
    printf("  peak RSS:          %8.1f MiB (%.1f MiB before)\n\n", status_kib("VmHWM") / 1024.0,
           rss0 / 1024.0);

    /* Part 2: create + join, goroutines vs pthreads. */
    long ng = 100000, nt = 10000;
    gr_id *ids = malloc(sizeof *ids * (size_t)ng);
    pthread_t *th = malloc(sizeof *th * (size_t)nt);
    if (!ids || !th)
        die("malloc", 12);
    t0 = now_ms();
    for (long i = 0; i < ng; i++)
        if ((ids[i] = gr_spawn(nothing, NULL)) < 0)
            die("gr_spawn", ids[i]);
    for (long i = 0; i < ng; i++)
        if ((rc = gr_join(ids[i])) < 0)
            die("gr_join", rc);
    double tg = now_ms() - t0;
    t0 = now_ms();
    for (long i = 0; i < nt; i++)
        if ((rc = pthread_create(&th[i], NULL, thread_nothing, NULL)) != 0)
            die("pthread_create", rc);
    for (long i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    double tt = now_ms() - t0;
    printf("create + join:\n");
    printf("  %7s goroutines: %8.1f ms  (%6.0f ns each)\n", commas(ng, a), tg, tg * 1e6 / ng);
    printf("  %7s pthreads:   %8.1f ms  (%6.0f ns each, %.0fx a goroutine)\n", commas(nt, b), tt,
           tt * 1e6 / nt, (tt / nt) / (tg / ng));
    free(ids);
    free(th);
    return 0;
}
