/*
 * Helpers shared by the C test programs in tests/c/ (included first by each).
 *
 * A test prints `ok` as its last line and exits 0 when it passes; on failure it
 * prints "FAIL file:line: what" on stderr and exits 1 (_exit: no atexit handlers
 * run while goroutines may still be running). watchdog() bounds the run time when
 * a program is run by hand; tests/c_tests.rs also kills it after a timeout.
 */
#ifndef GR_TEST_CHECK_H
#define GR_TEST_CHECK_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "goroutine.h"

#define FAIL(...)                                                   \
    do {                                                            \
        fflush(stdout);                                             \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);        \
        fprintf(stderr, __VA_ARGS__);                               \
        fputc('\n', stderr);                                        \
        fflush(stderr);                                             \
        _exit(1);                                                   \
    } while (0)

#define CHECK(cond)                                                 \
    do {                                                            \
        if (!(cond))                                                \
            FAIL("%s", #cond);                                      \
    } while (0)

#define CHECK_EQ(a, b)                                              \
    do {                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);         \
        if (a_ != b_)                                               \
            FAIL("%s is %lld, expected %s = %lld", #a, a_, #b, b_); \
    } while (0)

/* A spawn that must succeed. */
#define SPAWN(fn, arg)                                              \
    ({                                                              \
        gr_id id_ = gr_spawn((fn), (arg));                          \
        if (id_ <= 0)                                               \
            FAIL("gr_spawn(%s) = %lld (%s)", #fn, (long long)id_,   \
                 gr_strerror((int)id_));                            \
        id_;                                                        \
    })

/* Line-buffered stdout, so that what a test printed survives a watchdog or a crash. */
__attribute__((constructor)) static void check_h_line_buffered_stdout(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * A latency bound for this run: `ns` times GR_TEST_LATENCY_SCALE, which
 * tests/c_tests.rs sets under a sanitizer or valgrind (their slowdown, with room),
 * and 1 otherwise. For bounds that say "promptly" (a cancel wakes its goroutine
 * within 1 ms), not for bounds that say "not before" (a deadline is never early).
 */
static inline int64_t latency_bound(int64_t ns)
{
    /* Relaxed atomics: two threads may ask first at once (both compute the same). */
    static long scale;
    long k = __atomic_load_n(&scale, __ATOMIC_RELAXED);
    if (k == 0) {
        const char *s = getenv("GR_TEST_LATENCY_SCALE");
        long v = s ? strtol(s, NULL, 10) : 1;
        k = v >= 1 ? v : 1;
        __atomic_store_n(&scale, k, __ATOMIC_RELAXED);
    }
    return ns * k;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The kernel's thread id: a system call each time (never cached by the compiler). */
static inline long thread_id(void)
{
    return syscall(SYS_gettid);
}

/* A numeric field of /proc/self/status ("VmHWM", "VmRSS", "Threads"), or -1. */
static inline long proc_status(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t n = strlen(key);
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The process's memory maps (lines of /proc/self/maps). */
static inline long map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (!f)
        FAIL("/proc/self/maps: %s", strerror(errno));
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The process's open file descriptors (entries of /proc/self/fd, the directory's
 * own descriptor among them). */
static inline long fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    struct dirent *e;
    if (!d)
        FAIL("/proc/self/fd: %s", strerror(errno));
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* User + system CPU time of the whole process, in microseconds. */
static inline long long cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static inline void watchdog_fired(int sig)
{
    static const char msg[] = "FAIL: watchdog: the test is still running after its time limit\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(3);
}

/* Ends the process with a message if it is still running after `seconds`. */
static inline void watchdog(unsigned seconds)
{
    signal(SIGALRM, watchdog_fired);
    alarm(seconds);
}

/*
 * Waits (up to 10 s) until gr_dump shows goroutine `id` waiting for `reason`
 * ("chan receive", "wait group", "select", ...): only then is it queued on the
 * object (so a test may, say, free the object and expect -EBUSY).
 */
static inline void await_goroutine_waiting(gr_id id, const char *reason)
{
    int fd = memfd_create("gr_dump", MFD_CLOEXEC);
    CHECK(fd >= 0);
    char head[64], want[64];
    snprintf(head, sizeof head, "goroutine %lld (", (long long)id);
    snprintf(want, sizeof want, "[%s", reason); /* then ", N ms]" or "]" */
    static char buf[1 << 16];
    for (int tries = 0; tries < 10000; tries++) {
        CHECK_EQ(ftruncate(fd, 0), 0);
        CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
        CHECK_EQ(gr_dump(fd), 0);
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        CHECK(n >= 0);
        buf[n] = '\0';
        for (char *line = strstr(buf, head); line; line = strstr(line + 1, head)) {
            if (line != buf && line[-1] != '\n')
                continue;
            char *end = strchr(line, '\n');
            if (end)
                *end = '\0';
            char *at = strstr(line, want);
            int found = at && (at[strlen(want)] == ',' || at[strlen(want)] == ']');
            if (end)
                *end = '\n';
            if (found) {
                close(fd);
                return;
            }
        }
        gr_sleep(1000000); /* parks a goroutine, sleeps a plain thread */
    }
    FAIL("goroutine %lld never showed as waiting for %s; last dump:\n%s", (long long)id, reason,
         buf);
}

#endif
