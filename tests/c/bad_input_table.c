/*
 * The table-driven bad-input test (reliability catalogue entries 7, 8, 9 and 11):
 * one table of bad inputs covering EVERY function include/goroutine.h declares,
 * each row with the result the header documents (a negative errno value, NULL, or
 * a defined value), and a check that the runtime still works after the table.
 *
 * Rows are macro lines that call the named function directly, so the name recorded
 * for coverage is always the function called. At the end the program reads the
 * header (found from this file's path) and fails when a declared gr_* function has
 * no row; a function that takes no bad input (gr_yield, gr_version, ...) gets a
 * NO_BAD_INPUT row that calls it and checks its documented result.
 *
 * The table runs in four contexts, each followed by a "still usable" check (spawn,
 * channel hand-off, join, wait_all):
 *   1. the main thread, the runtime running (after lifecycle checks before any init:
 *      gr_count, gr_self, gr_shutdown, gr_join and gr_stats work before init without
 *      starting the runtime, then gr_init(2) is 2 and a second gr_init -EALREADY);
 *   2. inside a goroutine;
 *   3. a pthread that never used the runtime before;
 *   4. the main thread after gr_shutdown (twice: a second shutdown is 0); gr_init
 *      starts it again (2 processors; again -EALREADY the second time). Then which
 *      calls start the runtime lazily: gr_wait_all and gr_maxprocs do (a gr_init
 *      after them is -EALREADY), gr_count and gr_stats do not.
 * Freed-while-waited-on rows park a goroutine on the object, wait until gr_dump
 * shows it waiting there (await_goroutine_waiting, check.h), expect -EBUSY from the free, then release the waiter and
 * check it got what it waited for (nobody is lost).
 *
 * The gr_py_* rows run without gr_py_init (a C program has no interpreter): every
 * one of them must then refuse (-EINVAL, NULL or 0) without touching Python.
 */
#include "check.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------- the table engine */

#define MAX_FUNCS 192

static const char *covered[MAX_FUNCS];
static int n_covered;
static int rows_run;     /* rows checked in this context */
static int rows_first;   /* rows in the first full pass (distinct bad inputs) */
static const char *context = "?";

static void cover(const char *fn)
{
    for (int i = 0; i < n_covered; i++)
        if (strcmp(covered[i], fn) == 0)
            return;
    if (n_covered == MAX_FUNCS)
        FAIL("more than %d functions covered", MAX_FUNCS);
    covered[n_covered++] = fn;
}

static void row_result(const char *fn, const char *what, long long got, long long want)
{
    cover(fn);
    rows_run++;
    if (got != want)
        FAIL("[%s] %s with %s: got %lld (%s), documented %lld (%s)", context, fn, what, got,
             gr_strerror((int)got), want, gr_strerror((int)want));
}

static void row_holds(const char *fn, const char *what, int holds, long long got)
{
    cover(fn);
    rows_run++;
    if (!holds)
        FAIL("[%s] %s with %s: result %lld is not the documented one", context, fn, what, got);
}

/* `fn args` must return exactly `want` (pointers compare as integers: NULL is 0). */
#define ROW(fn, args, want, what) \
    row_result(#fn, what, (long long)(intptr_t)(fn args), (long long)(intptr_t)(want))

/* `fn args` must satisfy `cond`, an expression over its result `r`. */
#define ROW_IF(fn, args, cond, what)                                  \
    do {                                                              \
        __auto_type r = fn args;                                      \
        row_holds(#fn, what, (cond), (long long)(intptr_t)r);         \
    } while (0)

/* A function that cannot get bad input: called, and its documented result checked. */
#define NO_BAD_INPUT(fn, args, cond) ROW_IF(fn, args, cond, "no bad input: " #cond)
#define NO_BAD_INPUT_VOID(fn, args, why) \
    do {                                 \
        fn args;                         \
        row_holds(#fn, why, 1, 0);       \
    } while (0)

/* ---------------------------------------------------------------- helpers */

static int in_goroutine(void)
{
    return gr_self() > 0;
}

static void noop(void *arg)
{
    (void)arg;
}

struct waiter {
    gr_chan *chan;
    gr_wg *wg;
    gr_mutex *mutex;
    gr_rwmutex *rw;
    gr_cond *cond;
    gr_sem *sem;
    gr_timer *timer;
    long value;
    int rc;
};

static void recv_waiter(void *arg)
{
    struct waiter *w = arg;
    w->rc = gr_chan_recv(w->chan, &w->value);
}

static void send_waiter(void *arg)
{
    struct waiter *w = arg;
    w->rc = gr_chan_send(w->chan, &w->value);
}

static void select_waiter(void *arg)
{
    struct waiter *w = arg;
    gr_case c = { w->chan, GR_RECV, &w->value, 0 };
    w->rc = gr_select(&c, 1, -1);
}

static void wg_waiter(void *arg)
{
    struct waiter *w = arg;
    w->rc = gr_wg_wait(w->wg);
}

static void mutex_waiter(void *arg)
{
    struct waiter *w = arg;
    long v;
    w->rc = gr_mutex_lock(w->mutex);
    /* Holds the mutex until told to let go. */
    if (w->rc == 0 && gr_chan_recv(w->chan, &v) == 0)
        w->rc = gr_mutex_unlock(w->mutex);
    else
        w->rc = -1;
}

static void rwmutex_waiter(void *arg)
{
    struct waiter *w = arg;
    w->rc = gr_rwmutex_rlock(w->rw);
    if (w->rc == 0)
        w->rc = gr_rwmutex_runlock(w->rw);
}

static void cond_waiter(void *arg)
{
    struct waiter *w = arg;
    CHECK_EQ(gr_mutex_lock(w->mutex), 0);
    w->rc = gr_cond_wait(w->cond);
    CHECK_EQ(gr_mutex_unlock(w->mutex), 0);
}

static void sem_waiter(void *arg)
{
    struct waiter *w = arg;
    w->rc = gr_sem_acquire(w->sem, 1);
}

static void timer_waiter(void *arg)
{
    struct waiter *w = arg;
    int64_t when;
    w->rc = gr_chan_recv(gr_timer_chan(w->timer), &when);
}

/* ---------------------------------------------------------------- the rows */

static void rows_core(void)
{
    NO_BAD_INPUT(gr_version, (), r != NULL && r[0] != '\0');
    ROW_IF(gr_strerror, (INT_MIN), r != NULL && r[0] != '\0', "INT_MIN (unknown code)");
    ROW_IF(gr_strerror, (12345), r != NULL && r[0] != '\0', "a positive unknown code");
    ROW_IF(gr_strerror, (-4095), r != NULL && r[0] != '\0', "-4095");

    int np = gr_maxprocs(0);
    CHECK(np > 0);
    ROW(gr_maxprocs, (-5), np, "n < 1 only queries");
    ROW(gr_maxprocs, (INT_MIN), np, "INT_MIN only queries");
    ROW(gr_init, (0), -EALREADY, "runtime already running");
    ROW(gr_init, (INT_MIN), -EALREADY, "INT_MIN while running (nothing changes)");
    CHECK_EQ(gr_maxprocs(0), np);

    ROW(gr_main, (NULL, NULL), -EINVAL, "NULL fn");
    ROW(gr_spawn, (NULL, NULL), -EINVAL, "NULL fn");
    ROW(gr_spawn, (NULL, (void *)1), -EINVAL, "NULL fn with an argument");
    gr_attr attr = { 0, "x", 0 };
    ROW(gr_spawn_attr, (NULL, NULL, &attr), -EINVAL, "NULL fn");
    attr.stack_size = 1;
    ROW(gr_spawn_attr, (noop, NULL, &attr), -EINVAL, "stack_size 1");
    attr.stack_size = 32 * 1024 - 1;
    ROW(gr_spawn_attr, (noop, NULL, &attr), -EINVAL, "stack_size 32 KiB - 1");
    attr.stack_size = ((size_t)1 << 30) + 1;
    ROW(gr_spawn_attr, (noop, NULL, &attr), -EINVAL, "stack_size 1 GiB + 1");
    attr.stack_size = SIZE_MAX;
    ROW(gr_spawn_attr, (noop, NULL, &attr), -EINVAL, "stack_size SIZE_MAX");
    attr.stack_size = 0;
    attr.flags = 1;
    ROW(gr_spawn_attr, (noop, NULL, &attr), -EINVAL, "nonzero flags");

    ROW(gr_join, (0), -EINVAL, "id 0");
    ROW(gr_join, (-1), -EINVAL, "id -1");
    ROW(gr_join, (INT64_MIN), -EINVAL, "id INT64_MIN");
    ROW(gr_join, (INT64_MAX), -ESRCH, "an id never issued");
    if (in_goroutine())
        ROW(gr_join, (gr_self()), -EDEADLK, "itself");

    NO_BAD_INPUT_VOID(gr_yield, (), "no bad input: returns (sched_yield on a plain thread)");
    NO_BAD_INPUT(gr_self, (), in_goroutine() ? r > 0 : r == 0);
    NO_BAD_INPUT(gr_count, (), r < 1000);
    if (!in_goroutine())
        ROW(gr_lock_thread, (), -EPERM, "a plain thread");
    ROW(gr_unlock_thread, (), -EPERM, "not locked");
    ROW(gr_stats, (NULL), -EINVAL, "NULL");
    struct gr_stats unsized = { .size = 0 }, short_size = { .size = sizeof short_size - 8 };
    ROW(gr_stats, (&unsized), -EINVAL, "size 0 (not set)");
    ROW(gr_stats, (&short_size), -EINVAL, "size below the first struct with a size");

    int p[2];
    CHECK_EQ(pipe(p), 0);
    ROW(gr_dump, (-1), -EBADF, "fd -1");
    ROW(gr_dump, (p[0]), -EBADF, "a pipe's read end");

    ROW(gr_sleep, (-1), 0, "negative ns (just yields)");
    ROW(gr_sleep, (INT64_MIN), 0, "INT64_MIN ns (just yields)");

    ROW(gr_wait_all, (), 0, "nothing left to wait for (from a goroutine: only itself)");
    if (in_goroutine())
        ROW(gr_shutdown, (), -EBUSY, "called from a goroutine");
    close(p[0]);
    close(p[1]);
}

static void rows_io(void)
{
    int p[2], closed[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(pipe(closed), 0);
    close(closed[0]);
    close(closed[1]);
    char buf[8] = { 0 };

    ROW(gr_block_io, (-1, GR_READ, 0), -EBADF, "fd -1");
    ROW(gr_block_io, (INT_MAX, GR_READ, 0), -EBADF, "fd INT_MAX");
    ROW(gr_block_io, (closed[0], GR_READ, -1), -EBADF, "a closed fd, no timeout");
    ROW(gr_block_io, (p[0], 0, 0), -EINVAL, "no event bits");
    ROW(gr_block_io, (p[0], 4, 0), -EINVAL, "unknown event bit 4");
    ROW(gr_block_io, (p[0], -1, 0), -EINVAL, "event mask -1");
    ROW(gr_block_io, (p[0], GR_READ, 0), -ETIMEDOUT, "timeout 0 on an empty pipe");

    struct pollfd pf = { .fd = closed[0], .events = POLLIN };
    ROW(gr_poll, (NULL, 1, 0), -EINVAL, "NULL fds, nfds 1");
    ROW(gr_poll, (NULL, 0, 0), 0, "no fds, timeout 0");
    ROW(gr_poll, (&pf, 1, 0), 1, "a closed fd (POLLNVAL)");
    CHECK_EQ(pf.revents, POLLNVAL);
    ROW(gr_poll, (&pf, (size_t)1 << 40, 0), -EINVAL, "nfds above RLIMIT_NOFILE");

    ROW(gr_io_wait, (-1, GR_READ, 0), -EBADF, "fd -1");
    ROW(gr_io_wait, (closed[0], GR_READ, -1), -EBADF, "a closed fd, no timeout");
    ROW(gr_io_wait, (p[0], 0, 0), -EINVAL, "no event bits");
    ROW(gr_io_wait, (p[0], 4, 0), -EINVAL, "unknown event bit 4");
    ROW(gr_io_wait, (p[0], GR_READ, 0), -ETIMEDOUT, "timeout 0 on an empty pipe");

    int adopted[2];
    CHECK_EQ(pipe(adopted), 0);
    ROW(gr_io_adopt, (-1), -EBADF, "fd -1");
    ROW(gr_io_adopt, (1 << 20), -EBADF, "fd 2^20, beyond the netpoller's table");
    ROW(gr_io_adopt, (adopted[0]), 0, "a new pipe");
    ROW(gr_io_note_short_read, (-1), -EBADF, "fd -1");
    ROW(gr_io_note_short_read, (1 << 20), 0, "fd 2^20, beyond the netpoller's table");
    ROW(gr_io_note_short_read, (closed[0]), 0, "a closed fd");
    ROW(gr_io_note_short_read, (adopted[0]), 0, "an adopted pipe (not TCP)");
    ROW(gr_io_read_drained, (-1), -EBADF, "fd -1");
    ROW(gr_io_read_drained, (1 << 20), 0, "fd 2^20, beyond the netpoller's table");
    ROW(gr_io_read_drained, (adopted[0]), 0, "an adopted pipe after a short read");
    CHECK_EQ(gr_close(adopted[0]), 0);
    CHECK_EQ(gr_close(adopted[1]), 0);

    ROW(gr_read, (-1, buf, 1), -EBADF, "fd -1");
    ROW(gr_read, (p[0], NULL, 5), -EINVAL, "NULL buffer, n > 0");
    ROW(gr_write, (-1, buf, 1), -EBADF, "fd -1");
    ROW(gr_write, (p[1], NULL, 5), -EINVAL, "NULL buffer, n > 0");
    ROW(gr_accept, (-1, NULL, NULL), -EBADF, "fd -1");
    ROW(gr_accept, (p[0], NULL, NULL), -ENOTSOCK, "a pipe");
    struct sockaddr_in sa = { .sin_family = AF_INET };
    ROW(gr_connect, (-1, (struct sockaddr *)&sa, sizeof sa), -EBADF, "fd -1");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    ROW(gr_connect, (s, NULL, 0), -EINVAL, "NULL address");
    close(s);
    ROW(gr_close, (-1), -EBADF, "fd -1");
    ROW(gr_close, (closed[0]), -EBADF, "a closed fd");
    ROW(gr_blocking, (NULL, NULL), -EINVAL, "NULL fn");
    close(p[0]);
    close(p[1]);
}

static void rows_python(void)
{
    struct gr_py_api api;
    memset(&api, 0, sizeof api);
    ROW(gr_py_init, (NULL), -EINVAL, "NULL");
    api.size = sizeof api - 1;
    ROW(gr_py_init, (&api), -EINVAL, "wrong size");
    api.size = sizeof api;
    ROW(gr_py_init, (&api), -EINVAL, "NULL fields");

    ROW(gr_py_builtin, ("go"), NULL, "before gr_py_init");
    ROW(gr_py_builtin, (NULL), NULL, "NULL name");
    gr_py_home *home = gr_py_home_new();
    row_holds("gr_py_home_new", "no bad input: a home", home != NULL, 0);
    ROW(gr_py_home_free, (NULL), -EINVAL, "NULL");
    ROW(gr_py_home_alive, (NULL), 0, "NULL");
    ROW(gr_py_home_alive, (home), 0, "a new home");
    ROW(gr_py_run, (NULL, 0), -EINVAL, "NULL home");
    ROW(gr_py_run, (home, 0), -EINVAL, "before gr_py_init");
    ROW(gr_py_home_daemons, (NULL), 0, "NULL");
    ROW(gr_py_home_daemons, (home), 0, "a new home");
    ROW(gr_py_home_take_fatal, (home), NULL, "before gr_py_init");
    ROW(gr_py_spawn, (NULL, (void *)&api, (void *)&api, NULL, NULL, 0, NULL), NULL, "NULL home");
    ROW(gr_py_spawn, (home, NULL, (void *)&api, NULL, NULL, 0, NULL), NULL, "NULL callable");
    ROW(gr_py_spawn, (home, (void *)&api, (void *)&api, NULL, "x", 0, NULL), NULL, "before gr_py_init");
    ROW(gr_py_home_free, (home), 0, "an empty home (frees it)");


    gr_chan *c8 = gr_chan_new(8, 1), *c4 = gr_chan_new(4, 1);
    CHECK(c8 != NULL && c4 != NULL);
    ROW(gr_py_chan_free, (NULL), -EINVAL, "NULL");
    ROW(gr_py_chan_free, (c4), -EINVAL, "a 4-byte channel");
    ROW(gr_py_chan_free, (c8), -EINVAL, "before gr_py_init (nothing freed)");
    CHECK_EQ(gr_chan_len(c8), 0);
    CHECK_EQ(gr_chan_free(c8), 0);
    CHECK_EQ(gr_chan_free(c4), 0);
    ROW(gr_py_wg_wait, (NULL), -EINVAL, "NULL");
    ROW(gr_py_mutex_lock, (NULL), -EINVAL, "NULL");
    ROW(gr_py_write_unraisable, (NULL, NULL, NULL), -EINVAL, "NULLs before gr_py_init");

    ROW(gr_py_rwmutex_lock, (NULL, 0), -EINVAL, "NULL");
    ROW(gr_py_cond_wait, (NULL, 0), -EINVAL, "NULL");
    ROW(gr_py_sem_acquire, (NULL, 1, 0), -EINVAL, "NULL");
    gr_rwmutex *rw = gr_rwmutex_new();
    gr_mutex *m = gr_mutex_new();
    gr_cond *cv = gr_cond_new(m);
    gr_sem *sem = gr_sem_new(1);
    CHECK(rw && m && cv && sem);
    ROW(gr_py_rwmutex_lock, (rw, 1), -EINVAL, "before gr_py_init (not locked)");
    ROW(gr_rwmutex_trylock, (rw), 0, "still free after the refusal");
    CHECK_EQ(gr_rwmutex_unlock(rw), 0);
    ROW(gr_py_cond_wait, (cv, 0), -EINVAL, "before gr_py_init");
    ROW(gr_py_sem_acquire, (sem, 1, 0), -EINVAL, "before gr_py_init (nothing taken)");
    ROW(gr_sem_try_acquire, (sem, 1), 1, "the token still free after the refusal");
    CHECK_EQ(gr_sem_release(sem, 1), 0);
    CHECK_EQ(gr_sem_free(sem), 0);
    CHECK_EQ(gr_cond_free(cv), 0);
    CHECK_EQ(gr_mutex_free(m), 0);
    CHECK_EQ(gr_rwmutex_free(rw), 0);
}

static void rows_channels(void)
{
    long v = 7;
    ROW(gr_chan_new, (SIZE_MAX, 2), NULL, "elem_size * capacity overflows");
    ROW(gr_chan_new, (8, SIZE_MAX), NULL, "capacity SIZE_MAX");
    gr_chan *c = gr_chan_new(sizeof(long), 1);
    CHECK(c != NULL);
    ROW(gr_chan_send, (NULL, &v), -EINVAL, "NULL channel");
    ROW(gr_chan_send, (c, NULL), -EINVAL, "NULL elem, element size 8");
    ROW(gr_chan_recv, (NULL, &v), -EINVAL, "NULL channel");
    ROW(gr_chan_recv, (c, NULL), -EINVAL, "NULL elem, element size 8");
    ROW(gr_chan_try_send, (NULL, &v), -EINVAL, "NULL channel");
    ROW(gr_chan_try_recv, (NULL, &v), -EINVAL, "NULL channel");
    ROW(gr_chan_try_recv, (c, &v), -EAGAIN, "an empty channel");
    CHECK_EQ(gr_chan_try_send(c, &v), 0);
    ROW(gr_chan_try_send, (c, &v), -EAGAIN, "a full channel");
    ROW(gr_chan_len, (NULL), 0, "NULL");
    ROW(gr_chan_cap, (NULL), 0, "NULL");
    ROW(gr_chan_close, (NULL), -EINVAL, "NULL");
    CHECK_EQ(gr_chan_close(c), 0);
    ROW(gr_chan_close, (c), -EPIPE, "closed twice");
    ROW(gr_chan_send, (c, &v), -EPIPE, "a closed channel");
    ROW(gr_chan_try_send, (c, &v), -EPIPE, "a closed channel");
    v = 0;
    CHECK_EQ(gr_chan_recv(c, &v), 0); /* the buffered value drains first */
    CHECK_EQ(v, 7);
    ROW(gr_chan_recv, (c, &v), -EPIPE, "closed and drained");
    ROW(gr_chan_try_recv, (c, &v), -EPIPE, "closed and drained");

    gr_case cases[2] = { { c, GR_RECV, &v, 0 }, { c, GR_RECV, &v, 0 } };
    ROW(gr_select, (NULL, 1, 0), -EINVAL, "NULL cases, n = 1");
    ROW(gr_select, (NULL, 0, -1), -EINVAL, "n = 0, wait for ever");
    ROW(gr_select, (NULL, 0, 0), -EAGAIN, "n = 0, try");
    cases[1].chan = NULL;
    ROW(gr_select, (cases, 2, 0), -EINVAL, "a NULL channel");
    cases[1].chan = c;
    cases[1].op = 0;
    ROW(gr_select, (cases, 2, 0), -EINVAL, "op 0");
    cases[1].op = 3;
    ROW(gr_select, (cases, 2, 0), -EINVAL, "op 3 (GR_SEND|GR_RECV)");
    cases[1].op = GR_SEND;
    cases[1].elem = NULL;
    ROW(gr_select, (cases, 2, 0), -EINVAL, "a NULL elem, element size 8");
    ROW(gr_chan_free, (NULL), -EINVAL, "NULL");
    CHECK_EQ(gr_chan_free(c), 0);
}

static void rows_sync(void)
{
    gr_wg *wg = gr_wg_new();
    row_holds("gr_wg_new", "no bad input: a wait group", wg != NULL, 0);
    ROW(gr_wg_add, (NULL, 1), -EINVAL, "NULL");
    ROW(gr_wg_add, (wg, -1), -EINVAL, "counter below zero");
    CHECK_EQ(gr_wg_add(wg, 1), 0);
    ROW(gr_wg_add, (wg, INT64_MAX), -EINVAL, "counter overflow");
    ROW(gr_wg_add, (wg, INT64_MIN), -EINVAL, "INT64_MIN");
    CHECK_EQ(gr_wg_done(wg), 0); /* nothing changed: the counter was 1 */
    ROW(gr_wg_done, (NULL), -EINVAL, "NULL");
    ROW(gr_wg_done, (wg), -EINVAL, "counter already 0");
    ROW(gr_wg_wait, (NULL), -EINVAL, "NULL");
    ROW(gr_wg_wait, (wg), 0, "counter 0 (returns at once)");
    ROW(gr_wg_free, (NULL), -EINVAL, "NULL");
    CHECK_EQ(gr_wg_free(wg), 0);

    gr_mutex *m = gr_mutex_new();
    row_holds("gr_mutex_new", "no bad input: a mutex", m != NULL, 0);
    ROW(gr_mutex_lock, (NULL), -EINVAL, "NULL");
    ROW(gr_mutex_trylock, (NULL), -EINVAL, "NULL");
    ROW(gr_mutex_unlock, (NULL), -EINVAL, "NULL");
    ROW(gr_mutex_unlock, (m), -EPERM, "not locked");
    ROW(gr_mutex_free, (NULL), -EINVAL, "NULL");
    CHECK_EQ(gr_mutex_lock(m), 0);
    ROW(gr_mutex_trylock, (m), -EBUSY, "held");
    ROW(gr_mutex_free, (m), -EBUSY, "locked");
    CHECK_EQ(gr_mutex_unlock(m), 0);
    ROW(gr_mutex_unlock, (m), -EPERM, "unlocked twice");
    CHECK_EQ(gr_mutex_free(m), 0);
}

/* Timers, the rest of sync, semaphores, signals and child processes (issue 17). */
static void rows_toolbox(void)
{
    ROW(gr_timer_new, (1000, -1), NULL, "negative period");
    ROW(gr_timer_chan, (NULL), NULL, "NULL");
    ROW(gr_timer_stop, (NULL), -EINVAL, "NULL");
    ROW(gr_timer_reset, (NULL, 0, 0), -EINVAL, "NULL");
    ROW(gr_timer_free, (NULL), -EINVAL, "NULL");
    gr_timer *t = gr_timer_new(INT64_MAX, 0);
    row_holds("gr_timer_new", "INT64_MAX ns (saturates: never fires)", t != NULL, 0);
    ROW(gr_timer_reset, (t, 0, -5), -EINVAL, "negative period");
    ROW(gr_timer_stop, (t), 1, "pending (the bad reset changed nothing)");
    ROW(gr_timer_stop, (t), 0, "stopped twice");
    ROW(gr_timer_reset, (t, INT64_MIN, INT64_MAX), 0, "INT64_MIN ns (at once), INT64_MAX period");
    ROW(gr_timer_free, (t), 0, "a ticker that fired or is about to");

    ROW(gr_rwmutex_rlock, (NULL), -EINVAL, "NULL");
    ROW(gr_rwmutex_tryrlock, (NULL), -EINVAL, "NULL");
    ROW(gr_rwmutex_runlock, (NULL), -EINVAL, "NULL");
    ROW(gr_rwmutex_lock, (NULL), -EINVAL, "NULL");
    ROW(gr_rwmutex_trylock, (NULL), -EINVAL, "NULL");
    ROW(gr_rwmutex_unlock, (NULL), -EINVAL, "NULL");
    ROW(gr_rwmutex_free, (NULL), -EINVAL, "NULL");
    gr_rwmutex *rw = gr_rwmutex_new();
    row_holds("gr_rwmutex_new", "no bad input: a rwmutex", rw != NULL, 0);
    ROW(gr_rwmutex_runlock, (rw), -EPERM, "not read-locked");
    ROW(gr_rwmutex_unlock, (rw), -EPERM, "not write-locked");
    CHECK_EQ(gr_rwmutex_rlock(rw), 0);
    ROW(gr_rwmutex_trylock, (rw), -EBUSY, "read-held");
    ROW(gr_rwmutex_free, (rw), -EBUSY, "read-held");
    CHECK_EQ(gr_rwmutex_runlock(rw), 0);
    CHECK_EQ(gr_rwmutex_lock(rw), 0);
    ROW(gr_rwmutex_tryrlock, (rw), -EBUSY, "write-held");
    ROW(gr_rwmutex_runlock, (rw), -EPERM, "write-held, not read-locked");
    CHECK_EQ(gr_rwmutex_unlock(rw), 0);
    CHECK_EQ(gr_rwmutex_free(rw), 0);

    gr_mutex *m = gr_mutex_new();
    CHECK(m != NULL);
    ROW(gr_cond_new, (NULL), NULL, "NULL mutex");
    gr_cond *cv = gr_cond_new(m);
    row_holds("gr_cond_new", "no bad input: a cond", cv != NULL, 0);
    ROW(gr_cond_wait, (NULL), -EINVAL, "NULL");
    ROW(gr_cond_wait, (cv), -EPERM, "the mutex not locked");
    ROW(gr_cond_wait_timeout, (NULL, 0), -EINVAL, "NULL");
    ROW(gr_cond_wait_timeout, (cv, INT64_MIN), -EPERM, "the mutex not locked, no limit");
    CHECK_EQ(gr_mutex_lock(m), 0);
    ROW(gr_cond_wait_timeout, (cv, 0), -ETIMEDOUT, "timeout 0 (the mutex held again)");
    ROW(gr_mutex_trylock, (m), -EBUSY, "held again after the timed-out wait");
    CHECK_EQ(gr_mutex_unlock(m), 0);
    ROW(gr_cond_signal, (NULL), -EINVAL, "NULL");
    ROW(gr_cond_signal, (cv), 0, "nobody waits");
    ROW(gr_cond_broadcast, (NULL), -EINVAL, "NULL");
    ROW(gr_cond_broadcast, (cv), 0, "nobody waits");
    ROW(gr_cond_free, (NULL), -EINVAL, "NULL");
    CHECK_EQ(gr_cond_free(cv), 0);
    CHECK_EQ(gr_mutex_free(m), 0);

    gr_once o = GR_ONCE_INIT;
    ROW(gr_once_do, (NULL, noop, NULL), -EINVAL, "NULL once");
    ROW(gr_once_do, (&o, NULL, NULL), -EINVAL, "NULL function");
    ROW(gr_once_do, (&o, noop, NULL), 0, "runs noop");
    ROW(gr_once_do, (&o, NULL, NULL), -EINVAL, "NULL function, once done");

    ROW(gr_sem_new, (-1), NULL, "negative size");
    ROW(gr_sem_acquire, (NULL, 1), -EINVAL, "NULL");
    ROW(gr_sem_acquire_timeout, (NULL, 1, 0), -EINVAL, "NULL");
    ROW(gr_sem_try_acquire, (NULL, 1), -EINVAL, "NULL");
    ROW(gr_sem_release, (NULL, 1), -EINVAL, "NULL");
    ROW(gr_sem_free, (NULL), -EINVAL, "NULL");
    gr_sem *sem = gr_sem_new(2);
    row_holds("gr_sem_new", "no bad input: a semaphore", sem != NULL, 0);
    ROW(gr_sem_acquire, (sem, -1), -EINVAL, "negative n");
    ROW(gr_sem_acquire, (sem, 3), -EINVAL, "more than the size");
    ROW(gr_sem_acquire, (sem, INT64_MAX), -EINVAL, "INT64_MAX");
    ROW(gr_sem_acquire_timeout, (sem, 3, -1), -EINVAL, "more than the size");
    ROW(gr_sem_try_acquire, (sem, INT64_MIN), -EINVAL, "INT64_MIN");
    ROW(gr_sem_try_acquire, (sem, 3), 0, "more than the size (never free)");
    ROW(gr_sem_release, (sem, 1), -EINVAL, "more than taken");
    ROW(gr_sem_release, (sem, INT64_MAX), -EINVAL, "INT64_MAX");
    ROW(gr_sem_release, (sem, -1), -EINVAL, "negative n");
    CHECK_EQ(gr_sem_acquire(sem, 2), 0);
    ROW(gr_sem_acquire_timeout, (sem, 1, 0), -ETIMEDOUT, "timeout 0, none free");
    CHECK_EQ(gr_sem_release(sem, 2), 0);
    CHECK_EQ(gr_sem_free(sem), 0);

    gr_chan *ic = gr_chan_new(sizeof(int), 1), *lc = gr_chan_new(sizeof(long), 1);
    CHECK(ic != NULL && lc != NULL);
    ROW(gr_signal_notify, (NULL, SIGUSR1), -EINVAL, "NULL channel");
    ROW(gr_signal_notify, (lc, SIGUSR1), -EINVAL, "8-byte elements");
    ROW(gr_signal_notify, (ic, 0), -EINVAL, "signal 0");
    ROW(gr_signal_notify, (ic, 65), -EINVAL, "signal 65");
    ROW(gr_signal_notify, (ic, INT_MIN), -EINVAL, "INT_MIN");
    ROW(gr_signal_notify, (ic, SIGKILL), -EINVAL, "SIGKILL");
    ROW(gr_signal_notify, (ic, SIGSTOP), -EINVAL, "SIGSTOP");
    ROW(gr_signal_notify, (ic, SIGSEGV), -EINVAL, "SIGSEGV (the runtime's)");
    ROW(gr_signal_notify, (ic, SIGBUS), -EINVAL, "SIGBUS");
    ROW(gr_signal_notify, (ic, SIGFPE), -EINVAL, "SIGFPE");
    ROW(gr_signal_notify, (ic, SIGILL), -EINVAL, "SIGILL");
    ROW(gr_signal_stop, (NULL), -EINVAL, "NULL");
    ROW(gr_signal_stop, (ic), 0, "not registered");
    CHECK_EQ(gr_chan_free(ic), 0);
    CHECK_EQ(gr_chan_free(lc), 0);

    int st = 12345;
    ROW(gr_waitpid, (-1, &st, 0x40000), -EINVAL, "an unknown option");
    ROW(gr_waitpid, (-1, &st, -1), -EINVAL, "options -1");
    ROW(gr_waitpid, (getpid(), &st, 0), -ECHILD, "itself");
    ROW(gr_waitpid, (INT_MAX, NULL, 0), -ECHILD, "pid INT_MAX, NULL status");
    ROW(gr_waitpid, (INT_MIN, &st, WNOHANG), -ESRCH, "pid INT_MIN (the kernel's answer)");
    CHECK_EQ(st, 12345); /* untouched */
}

static int task_ok(void *arg)
{
    (void)arg;
    return 0;
}

static int task_hold(void *arg)
{
    long v;
    return gr_chan_recv(arg, &v);
}

static void rows_contexts(void)
{
    gr_ctx *c = gr_ctx_new(NULL);
    row_holds("gr_ctx_new", "NULL parent: a root", c != NULL && gr_ctx_err(c) == 0, 0);
    ROW_IF(gr_ctx_with_timeout, (NULL, INT64_MIN), r != NULL && gr_ctx_err(r) == -ETIMEDOUT &&
                                                      gr_ctx_free(r) == 0,
           "NULL parent, INT64_MIN ns: expired at once");
    ROW_IF(gr_ctx_with_timeout, (c, INT64_MAX), r != NULL && gr_ctx_err(r) == 0 &&
                                                   gr_ctx_free(r) == 0,
           "INT64_MAX ns saturates");
    ROW(gr_ctx_cancel, (NULL), -EINVAL, "NULL");
    ROW(gr_ctx_err, (NULL), -EINVAL, "NULL");
    ROW(gr_ctx_done, (NULL), NULL, "NULL");
    ROW(gr_ctx_free, (NULL), -EINVAL, "NULL");
    ROW(gr_spawn_ctx, (NULL, noop, NULL), -EINVAL, "NULL ctx");
    ROW(gr_spawn_ctx, (c, NULL, NULL), -EINVAL, "NULL fn");
    NO_BAD_INPUT(gr_ctx_current, (), r == NULL); /* nothing here is bound to one */
    gr_ctx *prev = (gr_ctx *)1;
    ROW(gr_ctx_swap, (c, NULL), -EINVAL, "NULL prev");
    if (in_goroutine()) {
        ROW(gr_ctx_swap, (NULL, &prev), 0, "NULL ctx: unbinds (it was unbound)");
        CHECK(prev == NULL);
    } else {
        ROW(gr_ctx_swap, (c, &prev), -EPERM, "a plain thread");
        CHECK(prev == (gr_ctx *)1);
    }
    CHECK_EQ(gr_ctx_cancel(c), 0);
    ROW(gr_ctx_cancel, (c), 0, "cancelled twice");
    CHECK_EQ(gr_ctx_err(c), -ECANCELED);
    CHECK_EQ(gr_ctx_free(c), 0);

    gr_group *g = gr_group_new(NULL);
    row_holds("gr_group_new", "NULL parent: a root context", g != NULL, 0);
    ROW(gr_group_limit, (NULL, 1), -EINVAL, "NULL");
    ROW(gr_group_limit, (g, -1), -EINVAL, "n < 0");
    ROW(gr_group_limit, (g, INT_MIN), -EINVAL, "INT_MIN");
    ROW(gr_group_limit, (g, 0), 0, "0: no limit");
    ROW(gr_group_go, (NULL, task_ok, NULL), -EINVAL, "NULL group");
    ROW(gr_group_go, (g, NULL, NULL), -EINVAL, "NULL fn");
    ROW(gr_group_wait, (NULL), -EINVAL, "NULL");
    ROW(gr_group_wait, (g), 0, "no members (returns at once)");
    ROW(gr_group_ctx, (NULL), NULL, "NULL");
    ROW(gr_group_cancel, (NULL), -EINVAL, "NULL");
    ROW(gr_group_free, (NULL), -EINVAL, "NULL");
    CHECK_EQ(gr_group_free(g), 0);
}

/* Objects freed while goroutines wait on them: -EBUSY, and the waiters are not lost. */
static void rows_freed_while_waited_on(void)
{
    struct waiter w = { 0 };
    gr_id id;

    w.chan = gr_chan_new(sizeof(long), 0);
    id = SPAWN(recv_waiter, &w);
    await_goroutine_waiting(id, "chan receive");
    ROW(gr_chan_free, (w.chan), -EBUSY, "a receiver waits");
    ROW(gr_shutdown, (), -EBUSY, "a goroutine is parked");
    long v = 42;
    CHECK_EQ(gr_chan_send(w.chan, &v), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(w.value, 42);

    w.value = 43;
    id = SPAWN(send_waiter, &w);
    await_goroutine_waiting(id, "chan send");
    ROW(gr_chan_free, (w.chan), -EBUSY, "a sender waits");
    v = 0;
    CHECK_EQ(gr_chan_recv(w.chan, &v), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(v, 43);

    id = SPAWN(select_waiter, &w);
    await_goroutine_waiting(id, "select");
    ROW(gr_chan_free, (w.chan), -EBUSY, "a select waits");
    CHECK_EQ(gr_chan_close(w.chan), 0); /* wakes it: case 0 fires, closed */
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(gr_chan_free(w.chan), 0);

    w.wg = gr_wg_new();
    CHECK_EQ(gr_wg_add(w.wg, 1), 0);
    w.rc = -1;
    id = SPAWN(wg_waiter, &w);
    await_goroutine_waiting(id, "wait group");
    ROW(gr_wg_free, (w.wg), -EBUSY, "a goroutine waits");
    CHECK_EQ(gr_wg_done(w.wg), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(gr_wg_free(w.wg), 0);

    w.mutex = gr_mutex_new();
    w.chan = gr_chan_new(sizeof(long), 1);
    CHECK_EQ(gr_mutex_lock(w.mutex), 0);
    w.rc = -1;
    id = SPAWN(mutex_waiter, &w);
    await_goroutine_waiting(id, "mutex");
    ROW(gr_mutex_free, (w.mutex), -EBUSY, "locked, a goroutine waits");
    CHECK_EQ(gr_mutex_unlock(w.mutex), 0);
    /* Unlocked: the waiter was woken but may not have run yet. Until it has taken
       the lock (and it then holds it until told) the mutex is still in use. */
    ROW(gr_mutex_free, (w.mutex), -EBUSY, "unlocked, the woken waiter has not taken it yet");
    CHECK_EQ(gr_chan_send(w.chan, &v), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(gr_mutex_free(w.mutex), 0);
    CHECK_EQ(gr_chan_free(w.chan), 0);

    w.rw = gr_rwmutex_new();
    CHECK_EQ(gr_rwmutex_lock(w.rw), 0);
    w.rc = -1;
    id = SPAWN(rwmutex_waiter, &w);
    await_goroutine_waiting(id, "rwmutex read");
    ROW(gr_rwmutex_free, (w.rw), -EBUSY, "write-locked, a reader waits");
    CHECK_EQ(gr_rwmutex_unlock(w.rw), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(gr_rwmutex_free(w.rw), 0);

    w.mutex = gr_mutex_new();
    w.cond = gr_cond_new(w.mutex);
    w.rc = -1;
    id = SPAWN(cond_waiter, &w);
    await_goroutine_waiting(id, "cond wait");
    ROW(gr_cond_free, (w.cond), -EBUSY, "a goroutine waits");
    CHECK_EQ(gr_cond_signal(w.cond), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(gr_cond_free(w.cond), 0);
    CHECK_EQ(gr_mutex_free(w.mutex), 0);

    w.sem = gr_sem_new(1);
    CHECK_EQ(gr_sem_acquire(w.sem, 1), 0);
    w.rc = -1;
    id = SPAWN(sem_waiter, &w);
    await_goroutine_waiting(id, "semaphore");
    ROW(gr_sem_free, (w.sem), -EBUSY, "a goroutine waits");
    CHECK_EQ(gr_sem_release(w.sem, 1), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(gr_sem_free(w.sem), 0);

    w.timer = gr_timer_new(INT64_MAX, 0);
    w.rc = -1;
    id = SPAWN(timer_waiter, &w);
    await_goroutine_waiting(id, "chan receive");
    ROW(gr_timer_free, (w.timer), -EBUSY, "a goroutine waits on its channel");
    CHECK_EQ(gr_timer_reset(w.timer, 0, 0), 1);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(gr_timer_free(w.timer), 0);
    /* A group with a running member, and one with a goroutine in gr_group_wait. */
    gr_group *g = gr_group_new(NULL);
    w.chan = gr_chan_new(sizeof(long), 0);
    CHECK(gr_group_go(g, task_hold, w.chan) > 0);
    ROW(gr_group_free, (g), -EBUSY, "a member runs");
    CHECK_EQ(gr_chan_send(w.chan, &v), 0);
    CHECK_EQ(gr_group_wait(g), 0);
    CHECK_EQ(gr_group_free(g), 0);
    CHECK_EQ(gr_chan_free(w.chan), 0);
}

static void run_table(const char *where)
{
    context = where;
    rows_run = 0;
    rows_core();
    rows_io();
    rows_python();
    rows_channels();
    rows_sync();
    rows_toolbox();
    rows_contexts();
    rows_freed_while_waited_on();
    if (rows_first == 0)
        rows_first = rows_run;
    printf("%s: %d rows\n", where, rows_run);
}

/* ---------------------------------------------------------------- still usable */

static void ping(void *arg)
{
    long v = 5;
    if (gr_chan_send(arg, &v) != 0)
        FAIL("ping: send failed");
}

static void check_usable(const char *after)
{
    gr_chan *c = gr_chan_new(sizeof(long), 0);
    CHECK(c != NULL);
    gr_id id = gr_spawn(ping, c);
    if (id <= 0)
        FAIL("after %s: gr_spawn = %lld", after, (long long)id);
    long v = 0;
    CHECK_EQ(gr_chan_recv(c, &v), 0);
    CHECK_EQ(v, 5);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(gr_chan_free(c), 0);
    if (!in_goroutine())
        CHECK_EQ(gr_wait_all(), 0);
}

static void table_in_goroutine(void *arg)
{
    (void)arg;
    run_table("goroutine");
    check_usable("the table in a goroutine");
}

static void *table_in_pthread(void *arg)
{
    (void)arg;
    run_table("plain pthread");
    check_usable("the table on a pthread");
    return NULL;
}

/* ---------------------------------------------------------------- coverage */

/* Every function the header declares must have a row. */
static void check_coverage(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strstr(path, "tests/c/bad_input_table.c");
    if (!slash)
        FAIL("cannot find the source tree from __FILE__ = %s", __FILE__);
    strcpy(slash, "include/goroutine.h");
    FILE *f = fopen(path, "r");
    if (!f)
        FAIL("cannot open %s", path);
    char line[1024];
    int declared = 0, missing = 0;
    while (fgets(line, sizeof line, f)) {
        /* Declarations start in column 0: `int gr_init(int maxprocs);` */
        if (line[0] == ' ' || line[0] == '#' || line[0] == '/' || line[0] == '\n' ||
            strncmp(line, "typedef", 7) == 0)
            continue;
        char *paren = strchr(line, '(');
        if (!paren)
            continue;
        char *start = paren;
        while (start > line && (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') ||
                                (start[-1] >= '0' && start[-1] <= '9')))
            start--;
        if (strncmp(start, "gr_", 3) != 0)
            continue;
        *paren = '\0';
        declared++;
        int found = 0;
        for (int i = 0; i < n_covered; i++)
            found |= strcmp(covered[i], start) == 0;
        if (!found) {
            fprintf(stderr, "no bad-input row for %s\n", start);
            missing++;
        }
    }
    fclose(f);
    if (declared < 60)
        FAIL("found only %d functions in %s: is the parser still right?", declared, path);
    if (missing)
        FAIL("%d of the %d functions in the header have no row in the table", missing, declared);
    printf("%d functions declared in the header, all covered by rows\n", declared);
}

int main(void)
{
    watchdog(60);

    /* 9: calls before any init, then init, double init. */
    context = "before init";
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_self(), 0);
    CHECK_EQ(gr_shutdown(), 0); /* not running: harmless */
    CHECK_EQ(gr_join(12345), -ESRCH);
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_stats(&st), 0);
    CHECK_EQ(st.goroutines, 0);
    int np = gr_init(2);
    CHECK_EQ(np, 2);
    CHECK_EQ(gr_init(2), -EALREADY);
    CHECK_EQ(gr_init(0), -EALREADY);

    run_table("main thread");
    check_usable("the table on the main thread");

    gr_id g = SPAWN(table_in_goroutine, NULL);
    CHECK_EQ(gr_join(g), 0);
    check_usable("the goroutine's table");

    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, table_in_pthread, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    check_usable("the pthread's table");

    /* 9: after shutdown (and a second shutdown) everything works again. */
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_shutdown(), 0);
    CHECK_EQ(gr_shutdown(), 0);
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_init(2), 2); /* starts again */
    CHECK_EQ(gr_init(2), -EALREADY);
    run_table("after gr_shutdown");
    check_usable("the table after gr_shutdown");
    CHECK_EQ(gr_shutdown(), 0);

    /* Lazy start (docs/reliability.md, entry 9): after a shutdown, gr_wait_all and
       gr_maxprocs start the runtime again (a later gr_init is -EALREADY); queries
       such as gr_count and gr_stats do not. */
    CHECK_EQ(gr_count(), 0);
    CHECK_EQ(gr_stats(&st), 0);
    CHECK_EQ(gr_init(2), 2);
    CHECK_EQ(gr_shutdown(), 0);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_init(2), -EALREADY);
    CHECK_EQ(gr_shutdown(), 0);
    CHECK(gr_maxprocs(0) > 0);
    CHECK_EQ(gr_init(2), -EALREADY);
    CHECK_EQ(gr_shutdown(), 0);

    check_coverage();
    printf("%d distinct bad inputs in the table\n", rows_first);
    if (rows_first < 40)
        FAIL("only %d rows", rows_first);
    puts("ok");
    return 0;
}
