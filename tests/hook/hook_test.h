/*
 * Helpers for the hook layer's C tests (the programs in tests/hook/, run by tests/hook.rs): the
 * checks of tests/c/check.h, a sampler of the process's peak thread count, elapsed
 * time, and loopback sockets. The programs use plain libc calls only (read, poll,
 * usleep...), as an unchanged program would: the layer is either linked in or
 * preloaded, and the tests check what the calls do on goroutines.
 */
#ifndef GR_HOOK_TEST_H
#define GR_HOOK_TEST_H

#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* The process's thread count now (Threads: in /proc/self/status). */
static inline long threads_now(void)
{
    return proc_status("Threads");
}

/* Peak thread count while a workload runs: a plain thread reads /proc/self/status
 * every millisecond. Its own thread is counted in `before` too, so peak - before is
 * what the workload added. */
struct peak {
    pthread_t t;
    atomic_int stop;
    long before, peak;
};

static inline void *peak_sampler(void *arg)
{
    struct peak *p = arg;
    while (!atomic_load(&p->stop)) {
        long n = threads_now();
        if (n > p->peak)
            p->peak = n;
        sleep_ms(1);
    }
    return NULL;
}

static inline void warm_up_goroutine(void *arg)
{
    (void)arg;
}

/* Starts sampling, after one goroutine has run (so that the runtime's first worker
 * thread, which any program that uses goroutines has, is in `before`). */
static inline void peak_start(struct peak *p)
{
    CHECK_EQ(gr_join(SPAWN(warm_up_goroutine, NULL)), 0);
    atomic_store(&p->stop, 0);
    p->peak = 0;
    CHECK_EQ(pthread_create(&p->t, NULL, peak_sampler, p), 0);
    sleep_ms(5);
    p->before = threads_now();
}

/* The threads the workload added at its peak. */
static inline long peak_stop(struct peak *p)
{
    long n = threads_now();
    if (n > p->peak)
        p->peak = n;
    atomic_store(&p->stop, 1);
    pthread_join(p->t, NULL);
    return p->peak - p->before;
}

static inline double seconds_since(int64_t t0)
{
    return (double)(now_ns() - t0) / 1e9;
}

/* A measured workload: wall time, and the thread count before and at its peak. */
struct workload {
    double seconds;
    long before, peak, added;
    long rescues; /* sysmon's rescues meanwhile (gr_stats): each may start a thread */
};

/* Spawns `server` (if not NULL) and then n goroutines of `client` (given their index),
 * waits for every goroutine, and returns the time taken and the threads added. */
static inline struct workload run_workload(void (*server)(void *), int n, void (*client)(void *))
{
    struct peak pk;
    peak_start(&pk);
    struct gr_stats st0 = {.size = sizeof st0}, st1 = {.size = sizeof st1};
    CHECK_EQ(gr_stats(&st0), 0);
    int64_t t0 = now_ns();
    if (server)
        SPAWN(server, NULL);
    for (int i = 0; i < n; i++)
        SPAWN(client, (void *)(intptr_t)i);
    CHECK_EQ(gr_wait_all(), 0);
    struct workload w = {.seconds = seconds_since(t0)};
    w.added = peak_stop(&pk);
    CHECK_EQ(gr_stats(&st1), 0);
    w.rescues = (long)(st1.sysmon_rescues - st0.sysmon_rescues);
    w.before = pk.before;
    w.peak = pk.peak;
    return w;
}

/* A goroutine that reads one byte from waited_fd and leaves the outcome in
 * wait_errno: the errno of a failed read, or 1000 + the count. */
static int waited_fd;
static atomic_int wait_errno;

static inline void fd_waiter(void *arg)
{
    (void)arg;
    char c;
    errno = 0;
    ssize_t n = read(waited_fd, &c, 1);
    atomic_store(&wait_errno, n < 0 ? errno : 1000 + (int)n);
}

/* A TCP listener on 127.0.0.1 at a port the kernel picks; its port in *port. */
static inline int listen_loopback(int *port, int backlog)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    int one = 1;
    CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(s, backlog), 0);
    socklen_t len = sizeof a;
    CHECK_EQ(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

/* A blocking TCP connection to 127.0.0.1:port. */
static inline int connect_loopback(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        FAIL("connect to port %d: %s", port, strerror(errno));
    return s;
}

/* The system call a thread is blocked in (first field of
 * /proc/self/task/TID/syscall), or -1 if it is running. */
static inline long blocked_syscall(long tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -2;
    long nr = -1;
    if (fgets(buf, sizeof buf, f) && strncmp(buf, "running", 7) != 0)
        nr = strtol(buf, NULL, 10);
    fclose(f);
    return nr;
}

#endif
