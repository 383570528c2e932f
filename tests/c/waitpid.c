/*
 * gr_waitpid: waitpid(2) that parks the goroutine, not its thread. On ONE processor
 * (gr_init(1)), so that "the thread is not blocked" shows: a busy goroutine that
 * counts and yields runs on the same processor while others wait for children.
 *   - 4 goroutines each wait for their own `sleep 0.2` child (the pidfd path):
 *     each gets its pid with a normal exit, all four within ~0.2 s together (not
 *     0.8 s), and the busy goroutine kept running meanwhile (it counted, and never
 *     stalled for more than 100 ms);
 *   - waiting for any child (pid -1, the SIGCHLD path) reaps three children one by
 *     one, with the busy goroutine running; a SIGCHLD handler the program installed
 *     still runs; then -ECHILD when none is left;
 *   - a process group (pid 0) and WUNTRACED (the child stopped by SIGSTOP) work,
 *     and WNOHANG returns 0 while the child runs;
 *   - exit statuses come through (exit 3; killed by SIGTERM); NULL status is fine;
 *   - with SIGCHLD ignored (SIG_IGN: the kernel reaps children itself), waiting for
 *     any child returns -ECHILD once the children have gone, still without stopping
 *     the busy goroutine: in a goroutine with no context (its thread blocks in
 *     waitpid) and in one bound to a context (it looks again between sleeps of up
 *     to 10 ms);
 *   - from a plain thread it is waitpid;
 *   - -EINVAL for unknown options, -ECHILD for a pid that is not a child.
 */
#include "check.h"

#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define MS 1000000LL

extern char **environ;

static pid_t spawn_cmd(const char *cmd)
{
    pid_t pid;
    char *argv[] = { "sh", "-c", (char *)cmd, NULL };
    int rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    if (rc != 0)
        FAIL("posix_spawn(%s): %s", cmd, strerror(rc));
    return pid;
}

/* ------------------------------------------------------------ the busy goroutine */

static atomic_int busy_stop;
static atomic_long busy_count;
static atomic_llong busy_max_gap_ns;

static void busy(void *arg)
{
    (void)arg;
    int64_t last = now_ns();
    while (!atomic_load(&busy_stop)) {
        atomic_fetch_add(&busy_count, 1);
        gr_yield();
        int64_t t = now_ns();
        if (t - last > atomic_load(&busy_max_gap_ns))
            atomic_store(&busy_max_gap_ns, t - last);
        last = t;
    }
}

static gr_id start_busy(void)
{
    atomic_store(&busy_stop, 0);
    atomic_store(&busy_count, 0);
    atomic_store(&busy_max_gap_ns, 0);
    return SPAWN(busy, NULL);
}

static void stop_busy(gr_id id, const char *what)
{
    atomic_store(&busy_stop, 1);
    CHECK_EQ(gr_join(id), 0);
    long n = atomic_load(&busy_count);
    double gap = atomic_load(&busy_max_gap_ns) / 1e6;
    printf("%s: the goroutine beside it ran %ld times, longest stall %.1f ms\n", what, n, gap);
    if (n < 100)
        FAIL("%s: the busy goroutine ran only %ld times: the processor was blocked", what, n);
    if (gap > 100)
        FAIL("%s: the busy goroutine stalled for %.1f ms", what, gap);
}

/* ------------------------------------------------------------ one child each */

enum { KIDS = 4 };

struct kid {
    pid_t pid;
    int rc, status;
};

static void wait_kid(void *arg)
{
    struct kid *k = arg;
    k->pid = spawn_cmd("exec sleep 0.2");
    k->rc = gr_waitpid(k->pid, &k->status, 0);
}

static void test_own_children(void)
{
    struct kid kids[KIDS];
    gr_id b = start_busy();
    int64_t t0 = now_ns();
    gr_id ids[KIDS];
    for (int i = 0; i < KIDS; i++)
        ids[i] = SPAWN(wait_kid, &kids[i]);
    for (int i = 0; i < KIDS; i++)
        CHECK_EQ(gr_join(ids[i]), 0);
    int64_t took = now_ns() - t0;
    stop_busy(b, "4 x sleep 0.2");
    for (int i = 0; i < KIDS; i++) {
        CHECK_EQ(kids[i].rc, kids[i].pid);
        CHECK(WIFEXITED(kids[i].status) && WEXITSTATUS(kids[i].status) == 0);
    }
    printf("4 children of 0.2 s waited for together in %.0f ms\n", took / 1e6);
    CHECK(took >= 200 * MS);
    if (took > 700 * MS)
        FAIL("4 waits of 0.2 s took %.0f ms: they did not wait together", took / 1e6);
}

/* ------------------------------------------------------------ any child */

static atomic_int chld_handler_runs;

static void on_chld(int s)
{
    (void)s;
    atomic_fetch_add(&chld_handler_runs, 1);
}

static int any_rc[3], any_status[3], any_last;
static pid_t any_pids[3];

static void wait_any(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        any_rc[i] = gr_waitpid(-1, &any_status[i], 0);
    any_last = gr_waitpid(-1, NULL, 0);
}

static void test_any_child(void)
{
    struct sigaction sa = { 0 };
    sa.sa_handler = on_chld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    CHECK_EQ(sigaction(SIGCHLD, &sa, NULL), 0);
    gr_id b = start_busy();
    any_pids[0] = spawn_cmd("exec sleep 0.1");
    any_pids[1] = spawn_cmd("exit 3");
    any_pids[2] = spawn_cmd("exec sleep 0.3");
    gr_id w = SPAWN(wait_any, NULL);
    CHECK_EQ(gr_join(w), 0);
    stop_busy(b, "waiting for any child");
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        int j;
        for (j = 0; j < 3; j++)
            if (any_rc[i] == any_pids[j])
                break;
        if (j == 3)
            FAIL("gr_waitpid(-1) returned %d, not one of the children", any_rc[i]);
        seen |= 1 << j;
        CHECK(WIFEXITED(any_status[i]));
        CHECK_EQ(WEXITSTATUS(any_status[i]), j == 1 ? 3 : 0);
    }
    CHECK_EQ(seen, 7);
    CHECK_EQ(any_rc[2], any_pids[2]); /* the longest last */
    CHECK_EQ(any_last, -ECHILD);
    CHECK(atomic_load(&chld_handler_runs) >= 1);
    printf("any child: 3 reaped in order of exit; the program's SIGCHLD handler ran %d "
           "times\n", atomic_load(&chld_handler_runs));
    signal(SIGCHLD, SIG_DFL);
}

/* ------------------------------------------------------------ groups, stops, options */

static void test_options(void)
{
    int st = 0;
    /* WNOHANG on a running child, then its exit. */
    pid_t p = spawn_cmd("exec sleep 0.1");
    CHECK_EQ(gr_waitpid(p, &st, WNOHANG), 0);
    CHECK_EQ(gr_waitpid(p, NULL, 0), p);
    CHECK_EQ(gr_waitpid(p, &st, WNOHANG), -ECHILD);

    /* Killed by a signal. */
    p = spawn_cmd("exec sleep 10");
    CHECK_EQ(kill(p, SIGTERM), 0);
    CHECK_EQ(gr_waitpid(p, &st, 0), p);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

    /* The caller's process group (children inherit it). */
    p = spawn_cmd("exec sleep 0.05");
    CHECK_EQ(gr_waitpid(0, &st, 0), p);
    CHECK(WIFEXITED(st));

    /* Stopped (WUNTRACED), then continued and killed. */
    p = spawn_cmd("exec sleep 10");
    CHECK_EQ(kill(p, SIGSTOP), 0);
    CHECK_EQ(gr_waitpid(p, &st, WUNTRACED), p);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK_EQ(kill(p, SIGKILL), 0);
    CHECK_EQ(kill(p, SIGCONT), 0);
    CHECK_EQ(gr_waitpid(p, &st, 0), p);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* Errors. */
    CHECK_EQ(gr_waitpid(-1, &st, 0x40000), -EINVAL);
    CHECK_EQ(gr_waitpid(getpid(), &st, 0), -ECHILD);
    CHECK_EQ(gr_waitpid(1, &st, WNOHANG), -ECHILD);
    CHECK_EQ(gr_waitpid(-1, &st, 0), -ECHILD);
    printf("options: WNOHANG, process group, WUNTRACED, statuses and errors as waitpid\n");
}

/* ------------------------------------------------------------ SIGCHLD ignored */

static int ign_rc;

static void wait_any_ignored(void *arg)
{
    (void)arg;
    ign_rc = gr_waitpid(-1, NULL, 0);
}

/* One child `sleep 0.2` waited for as any child with SIGCHLD ignored, by a goroutine
 * in `ctx` (NULL: none), the busy goroutine running meanwhile. */
static void wait_any_ignored_in(gr_ctx *ctx, const char *what)
{
    gr_id b = start_busy();
    spawn_cmd("exec sleep 0.2");
    int64_t t0 = now_ns();
    gr_id w = ctx ? gr_spawn_ctx(ctx, wait_any_ignored, NULL) : SPAWN(wait_any_ignored, NULL);
    CHECK(w > 0);
    CHECK_EQ(gr_join(w), 0);
    int64_t took = now_ns() - t0;
    stop_busy(b, what);
    CHECK_EQ(ign_rc, -ECHILD); /* reaped by the kernel; the wait ends with it */
    CHECK(took >= 150 * MS);
    if (took > latency_bound(1000 * MS))
        FAIL("%s: the wait ended %lld ms after it began (the child lived 200 ms)", what,
             (long long)(took / MS));
}

static void test_sigchld_ignored(void)
{
    signal(SIGCHLD, SIG_IGN);
    wait_any_ignored_in(NULL, "SIGCHLD ignored");
    gr_ctx *ctx = gr_ctx_new(NULL);
    CHECK(ctx);
    wait_any_ignored_in(ctx, "SIGCHLD ignored, in a context");
    CHECK_EQ(gr_ctx_free(ctx), 0);
    signal(SIGCHLD, SIG_DFL);
}

/* ------------------------------------------------------------ plain thread */

static void *plain_waiter(void *arg)
{
    (void)arg;
    int st = 0;
    pid_t p = spawn_cmd("exit 7");
    CHECK_EQ(gr_waitpid(p, &st, 0), p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    return NULL;
}

static void run(void *arg)
{
    (void)arg;
    test_own_children();
    test_any_child();
    test_options();
    test_sigchld_ignored();
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(1), 1);
    CHECK_EQ(gr_main(run, NULL), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, plain_waiter, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    puts("ok");
    return 0;
}
