/*
 * Pipes and fd lifetimes under the hook layer, on one processor:
 * - a blocking pipe read parks: another goroutine on the same processor keeps
 *   running while it waits (and sysmon never had to rescue the processor);
 * - a 1 MiB write to a blocking pipe returns 1 MiB (a blocking write completes),
 *   while a reader goroutine drains it;
 * - read(-1) gives EBADF; the pipe's flags stay the program's (F_GETFL);
 * - close of an fd a goroutine waits on wakes it with EBADF; so does dup2 onto it;
 * - a new pipe under a closed fd's number inherits no readiness (its reader parks
 *   until data comes);
 * - a plain thread's blocking read is untouched: it blocks in the kernel's read.
 */
#include "hook_test.h"

#include <sys/syscall.h>

static int p[2];
static atomic_long spins;
static atomic_int reader_done;

static void reader(void *arg)
{
    (void)arg;
    char c = 0;
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(c, 'x');
    atomic_store(&reader_done, 1);
}

static void spinner(void *arg)
{
    (void)arg;
    /* Runs only if the reader parked: one processor. */
    while (atomic_fetch_add(&spins, 1) < 1000)
        gr_yield();
    CHECK_EQ(atomic_load(&reader_done), 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
}

#define BIG (1 << 20)
static char big[BIG];

static void drain(void *arg)
{
    (void)arg;
    static char buf[BIG];
    size_t got = 0;
    while (got < BIG) {
        ssize_t n = read(p[0], buf + got, BIG - got);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK(memcmp(buf, big, BIG) == 0);
}

static void big_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < BIG; i++)
        big[i] = (char)(i * 7);
    CHECK_EQ(write(p[1], big, BIG), BIG);
}


static void lifetimes(void *arg)
{
    (void)arg;
    char c;
    errno = 0;
    CHECK_EQ(read(-1, &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(write(-1, &c, 1), -1);
    CHECK_EQ(errno, EBADF);

    /* close wakes a waiter with EBADF. */
    int q[2];
    CHECK_EQ(pipe(q), 0);
    CHECK_EQ(fcntl(q[0], F_GETFL) & O_NONBLOCK, 0);
    waited_fd = q[0];
    atomic_store(&wait_errno, 0);
    gr_id w = SPAWN(fd_waiter, NULL);
    await_goroutine_waiting(w, "IO wait");
    int64_t t0 = now_ns();
    CHECK_EQ(close(q[0]), 0);
    CHECK_EQ(gr_join(w), 0);
    CHECK(now_ns() - t0 < 100000000);
    CHECK_EQ(atomic_load(&wait_errno), EBADF);

    /* A new pipe under the same number: no stale readiness. */
    int r[2];
    CHECK_EQ(pipe(r), 0);
    CHECK_EQ(r[0], q[0]);
    waited_fd = r[0];
    atomic_store(&wait_errno, 0);
    w = SPAWN(fd_waiter, NULL);
    await_goroutine_waiting(w, "IO wait");
    sleep_ms(50);
    CHECK_EQ(atomic_load(&wait_errno), 0);
    CHECK_EQ(write(r[1], "y", 1), 1);
    CHECK_EQ(gr_join(w), 0);
    CHECK_EQ(atomic_load(&wait_errno), 1001);

    /* dup2 onto a waited fd closes it: EBADF too. */
    atomic_store(&wait_errno, 0);
    w = SPAWN(fd_waiter, NULL);
    await_goroutine_waiting(w, "IO wait");
    CHECK_EQ(dup2(q[1], r[0]), r[0]);
    CHECK_EQ(gr_join(w), 0);
    CHECK_EQ(atomic_load(&wait_errno), EBADF);
    close(q[1]);
    close(r[0]);
    close(r[1]);
}

static int plain_pipe[2];
static atomic_long plain_tid;

static void *plain_reader(void *arg)
{
    (void)arg;
    atomic_store(&plain_tid, thread_id());
    char c;
    CHECK_EQ(read(plain_pipe[0], &c, 1), 1);
    CHECK_EQ(c, 'z');
    return NULL;
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(1), 1);
    struct peak pk;
    peak_start(&pk);
    CHECK_EQ(pipe(p), 0);
    struct gr_stats st0 = {.size = sizeof st0};
    CHECK_EQ(gr_stats(&st0), 0);
    SPAWN(reader, NULL);
    SPAWN(spinner, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    struct gr_stats st1 = {.size = sizeof st1};
    CHECK_EQ(gr_stats(&st1), 0);
    CHECK_EQ(st1.sysmon_rescues, st0.sysmon_rescues);
    printf("blocking pipe read parked while another goroutine yielded %ld times\n",
           atomic_load(&spins));

    SPAWN(drain, NULL);
    SPAWN(big_writer, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    CHECK_EQ(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);

    SPAWN(lifetimes, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    long added = peak_stop(&pk);
    printf("threads added: %ld\n", added);
    CHECK_EQ(added, 0);

    /* A plain thread: read(2) itself blocks its thread in the kernel. */
    CHECK_EQ(pipe(plain_pipe), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, plain_reader, NULL), 0);
    while (!atomic_load(&plain_tid))
        sleep_ms(1);
    long nr = -1;
    for (int i = 0; i < 2000 && nr != SYS_read; i++) {
        sleep_ms(1);
        nr = blocked_syscall(atomic_load(&plain_tid));
    }
    CHECK_EQ(nr, SYS_read);
    CHECK_EQ(write(plain_pipe[1], "z", 1), 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    puts("ok");
    return 0;
}
