/*
 * Structured cancellation at every cancellation point (issue 17): a goroutine bound
 * to a context (gr_spawn_ctx) and parked in each listed call returns the context's
 * error at once when the context is cancelled:
 *
 *   1. parked, then gr_ctx_cancel: -ECANCELED within 1 ms of the cancel, for gr_sleep,
 *      gr_block_io, gr_poll, gr_io_wait, gr_read, gr_write, gr_accept, gr_connect,
 *      gr_chan_send, gr_chan_recv, gr_select, gr_join, gr_wg_wait, gr_group_wait and
 *      gr_group_go waiting for a slot; the object it waited on is left as it was
 *      (nothing queued on it: gr_chan_free and gr_wg_free succeed, the fd is usable);
 *   2. the same calls made after the cancel return -ECANCELED without parking;
 *   3. a deadline (gr_ctx_with_timeout) ends each of them with -ETIMEDOUT, not before
 *      its time;
 *   4. what is not a cancellation point: a select with a ready case fires, a buffered
 *      value is received, a try (timeout 0) still says -EAGAIN, gr_sleep(0) and
 *      gr_yield return 0, and a goroutine waiting for a mutex keeps waiting and gets
 *      the lock once it is unlocked.
 * The latencies (cancel -> the call returned in the woken goroutine) are printed.
 */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define MS 1000000LL

enum op {
    OP_SLEEP, OP_BLOCK_IO, OP_POLL, OP_IO_WAIT, OP_READ, OP_WRITE, OP_ACCEPT, OP_CONNECT,
    OP_SEND, OP_RECV, OP_SELECT, OP_JOIN, OP_WG, OP_GROUP_WAIT, OP_GROUP_GO, NOPS
};
static const char *op_name[NOPS] = {
    "gr_sleep", "gr_block_io", "gr_poll", "gr_io_wait", "gr_read", "gr_write", "gr_accept",
    "gr_connect", "gr_chan_send", "gr_chan_recv", "gr_select", "gr_join", "gr_wg_wait",
    "gr_group_wait", "gr_group_go"
};
/* How gr_dump names each wait (await_goroutine_waiting). */
static const char *op_reason[NOPS] = {
    "sleep", "IO wait", "IO wait", "IO wait", "IO wait", "IO wait", "IO wait", "IO wait",
    "chan send", "chan receive", "select", "join", "wait group", "wait group", "wait group"
};

/* What each call waits on; made fresh for every run. */
struct fixture {
    int pair[2];      /* a socketpair: nothing to read on pair[0]; pair[1] full for OP_WRITE */
    int listener;     /* a listener nobody connects to (accept), or a full one (connect) */
    int client;       /* the socket that connects */
    struct sockaddr_in addr;
    int extra[2];     /* connections that fill the full listener's queue */
    gr_chan *a, *b;   /* unbuffered channels nobody else uses */
    gr_chan *hold;    /* what the helper goroutine (join, group member) waits on */
    gr_id helper;
    gr_wg *wg;
    gr_group *group;
};

struct call {
    enum op op;
    struct fixture *f;
    int rc;
    int64_t returned_at;
};

static void block_on_hold(void *arg)
{
    long v;
    gr_chan_recv(((struct fixture *)arg)->hold, &v);
}

static int member_on_hold(void *arg)
{
    long v;
    gr_chan_recv(((struct fixture *)arg)->hold, &v);
    return 0;
}

static int member_noop(void *arg)
{
    (void)arg;
    return 0;
}

static int make_listener(int backlog, struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    CHECK_EQ(listen(fd, backlog), 0);
    return fd;
}

/* A connect that cannot complete: the listener's accept queue (backlog 0: one
 * connection) is full, so the kernel drops further SYNs and the client stays in
 * SYN_SENT, retrying for minutes. */
static void setup_connect(struct fixture *f)
{
    f->listener = make_listener(0, &f->addr);
    for (int i = 0; i < 2; i++) {
        f->extra[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        CHECK(f->extra[i] >= 0);
        int r = connect(f->extra[i], (struct sockaddr *)&f->addr, sizeof f->addr);
        CHECK(r == 0 || errno == EINPROGRESS);
    }
    sleep_ms(20); /* let both handshakes finish (or the second stall) */
    f->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(f->client >= 0);
}

static void setup(struct fixture *f, enum op op)
{
    memset(f, 0, sizeof *f);
    f->listener = f->client = f->extra[0] = f->extra[1] = -1;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->pair), 0);
    f->a = gr_chan_new(sizeof(long), 0);
    f->b = gr_chan_new(sizeof(long), 0);
    f->hold = gr_chan_new(sizeof(long), 0);
    f->wg = gr_wg_new();
    f->group = gr_group_new(NULL);
    CHECK(f->a && f->b && f->hold && f->wg && f->group);
    CHECK_EQ(gr_wg_add(f->wg, 1), 0);
    switch (op) {
    case OP_WRITE: {
        static char junk[65536];
        int fl = fcntl(f->pair[1], F_GETFL);
        CHECK_EQ(fcntl(f->pair[1], F_SETFL, fl | O_NONBLOCK), 0);
        while (write(f->pair[1], junk, sizeof junk) > 0) {
        }
        while (write(f->pair[1], junk, 1) > 0) {
        }
        CHECK(errno == EAGAIN);
        break;
    }
    case OP_ACCEPT:
        f->listener = make_listener(16, &f->addr);
        break;
    case OP_CONNECT:
        setup_connect(f);
        break;
    case OP_JOIN:
        f->helper = SPAWN(block_on_hold, f);
        await_goroutine_waiting(f->helper, "chan receive");
        break;
    case OP_GROUP_WAIT:
    case OP_GROUP_GO:
        CHECK_EQ(gr_group_limit(f->group, 1), 0);
        f->helper = gr_group_go(f->group, member_on_hold, f);
        CHECK(f->helper > 0);
        await_goroutine_waiting(f->helper, "chan receive");
        break;
    default:
        break;
    }
}

/* Checks that the call left nothing behind on its object, then frees the fixture. */
static void teardown(struct fixture *f, enum op op)
{
    long v = 0;
    if (f->helper > 0) {
        CHECK_EQ(gr_chan_send(f->hold, &v), 0);
        if (op == OP_JOIN)
            CHECK_EQ(gr_join(f->helper), 0);
    }
    CHECK_EQ(gr_group_wait(f->group), 0);
    CHECK_EQ(gr_group_free(f->group), 0);
    CHECK_EQ(gr_chan_free(f->a), 0); /* -EBUSY if a sudog were left queued */
    CHECK_EQ(gr_chan_free(f->b), 0);
    CHECK_EQ(gr_chan_free(f->hold), 0);
    CHECK_EQ(gr_wg_add(f->wg, -1), 0);
    CHECK_EQ(gr_wg_free(f->wg), 0);
    if (op == OP_READ || op == OP_BLOCK_IO || op == OP_POLL || op == OP_IO_WAIT) {
        /* The fd still works: a byte written now is read. */
        char c = 0;
        CHECK_EQ(write(f->pair[1], "z", 1), 1);
        CHECK_EQ(gr_read(f->pair[0], &c, 1), 1);
        CHECK_EQ(c, 'z');
    }
    int fds[] = { f->pair[0], f->pair[1], f->listener, f->client, f->extra[0], f->extra[1] };
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            CHECK_EQ(gr_close(fds[i]), 0);
}

static void do_call(void *arg)
{
    struct call *c = arg;
    struct fixture *f = c->f;
    char buf[16] = "0123456789abcde";
    long v = 7;
    switch (c->op) {
    case OP_SLEEP:
        c->rc = gr_sleep(10000 * MS);
        break;
    case OP_BLOCK_IO:
        c->rc = gr_block_io(f->pair[0], GR_READ, -1);
        break;
    case OP_POLL: {
        struct pollfd p = { .fd = f->pair[0], .events = POLLIN };
        c->rc = gr_poll(&p, 1, -1);
        break;
    }
    case OP_IO_WAIT:
        c->rc = gr_io_wait(f->pair[0], GR_READ, -1);
        break;
    case OP_READ:
        c->rc = (int)gr_read(f->pair[0], buf, sizeof buf);
        break;
    case OP_WRITE:
        c->rc = (int)gr_write(f->pair[1], buf, sizeof buf);
        break;
    case OP_ACCEPT:
        c->rc = gr_accept(f->listener, NULL, NULL);
        break;
    case OP_CONNECT:
        c->rc = gr_connect(f->client, (struct sockaddr *)&f->addr, sizeof f->addr);
        break;
    case OP_SEND:
        c->rc = gr_chan_send(f->a, &v);
        break;
    case OP_RECV:
        c->rc = gr_chan_recv(f->a, &v);
        break;
    case OP_SELECT: {
        long x, y;
        gr_case cs[] = { { f->a, GR_RECV, &x, 0 }, { f->b, GR_RECV, &y, 0 } };
        c->rc = gr_select(cs, 2, -1);
        break;
    }
    case OP_JOIN:
        c->rc = gr_join(f->helper);
        break;
    case OP_WG:
        c->rc = gr_wg_wait(f->wg);
        break;
    case OP_GROUP_WAIT:
        c->rc = gr_group_wait(f->group);
        break;
    case OP_GROUP_GO:
        c->rc = (int)gr_group_go(f->group, member_noop, NULL);
        break;
    default:
        break;
    }
    c->returned_at = now_ns();
}

/* 1: parked, then cancelled. Returns the latency in ns. */
static int64_t cancel_parked(enum op op)
{
    struct fixture f;
    setup(&f, op);
    gr_ctx *ctx = gr_ctx_new(NULL);
    CHECK(ctx);
    struct call c = { .op = op, .f = &f };
    gr_id id = gr_spawn_ctx(ctx, do_call, &c);
    CHECK(id > 0);
    await_goroutine_waiting(id, op_reason[op]);
    int64_t t0 = now_ns();
    CHECK_EQ(gr_ctx_cancel(ctx), 0);
    CHECK_EQ(gr_join(id), 0);
    if (c.rc != -ECANCELED)
        FAIL("%s returned %d (%s) after the cancel, expected -ECANCELED", op_name[op], c.rc,
             gr_strerror(c.rc));
    CHECK_EQ(gr_ctx_err(ctx), -ECANCELED);
    CHECK_EQ(gr_ctx_free(ctx), 0);
    teardown(&f, op);
    return c.returned_at - t0;
}

/* 2: the context is cancelled before the call: it returns at once. */
static void cancelled_before(enum op op)
{
    struct fixture f;
    setup(&f, op);
    gr_ctx *ctx = gr_ctx_new(NULL);
    CHECK(ctx);
    CHECK_EQ(gr_ctx_cancel(ctx), 0);
    struct call c = { .op = op, .f = &f };
    int64_t t0 = now_ns();
    gr_id id = gr_spawn_ctx(ctx, do_call, &c);
    CHECK(id > 0);
    CHECK_EQ(gr_join(id), 0);
    if (c.rc != -ECANCELED)
        FAIL("%s in a cancelled context returned %d (%s)", op_name[op], c.rc, gr_strerror(c.rc));
    if (c.returned_at - t0 > 100 * MS)
        FAIL("%s in a cancelled context took %lld ms", op_name[op],
             (long long)((c.returned_at - t0) / MS));
    CHECK_EQ(gr_ctx_free(ctx), 0);
    teardown(&f, op);
}

/* 3: a deadline ends the call with -ETIMEDOUT, not before its time. */
static int64_t deadline(enum op op)
{
    struct fixture f;
    setup(&f, op);
    const int64_t ns = 30 * MS;
    int64_t t0 = now_ns();
    gr_ctx *ctx = gr_ctx_with_timeout(NULL, ns);
    CHECK(ctx);
    struct call c = { .op = op, .f = &f };
    gr_id id = gr_spawn_ctx(ctx, do_call, &c);
    CHECK(id > 0);
    CHECK_EQ(gr_join(id), 0);
    if (c.rc != -ETIMEDOUT)
        FAIL("%s under a deadline returned %d (%s)", op_name[op], c.rc, gr_strerror(c.rc));
    if (c.returned_at < t0 + ns)
        FAIL("%s returned %lld us before the deadline", op_name[op],
             (long long)((t0 + ns - c.returned_at) / 1000));
    CHECK_EQ(gr_ctx_err(ctx), -ETIMEDOUT);
    CHECK_EQ(gr_ctx_free(ctx), 0);
    teardown(&f, op);
    return c.returned_at - (t0 + ns);
}

/* 4: what a cancelled context does not change. */
struct not_points {
    gr_mutex *m;
    int lock_rc;
    atomic_int locked;
};

static void lock_mutex(void *arg)
{
    struct not_points *n = arg;
    n->lock_rc = gr_mutex_lock(n->m);
    atomic_store(&n->locked, 1);
    gr_mutex_unlock(n->m);
}

static void non_parking_in_cancelled(void *arg)
{
    (void)arg;
    gr_chan *buf = gr_chan_new(sizeof(long), 1);
    gr_chan *empty = gr_chan_new(sizeof(long), 0);
    long v = 5, got = 0;
    CHECK_EQ(gr_chan_send(buf, &v), 0); /* room in the buffer: no wait */
    gr_case ready[] = { { empty, GR_RECV, &got, 0 }, { buf, GR_RECV, &got, 0 } };
    CHECK_EQ(gr_select(ready, 2, -1), 1); /* a ready case wins */
    CHECK_EQ(got, 5);
    CHECK_EQ(gr_chan_send(buf, &v), 0);
    CHECK_EQ(gr_chan_recv(buf, &got), 0); /* a buffered value is received */
    gr_case none[] = { { empty, GR_RECV, &got, 0 } };
    CHECK_EQ(gr_select(none, 1, 0), -EAGAIN); /* a try is not a park */
    CHECK_EQ(gr_sleep(0), 0);
    gr_yield();
    CHECK_EQ(gr_chan_free(buf), 0);
    CHECK_EQ(gr_chan_free(empty), 0);
}

static void not_cancellation_points(void)
{
    gr_ctx *ctx = gr_ctx_new(NULL);
    CHECK(ctx);
    CHECK_EQ(gr_ctx_cancel(ctx), 0);
    gr_id id = gr_spawn_ctx(ctx, non_parking_in_cancelled, NULL);
    CHECK(id > 0);
    CHECK_EQ(gr_join(id), 0);

    /* A mutex wait is not ended by a cancel. */
    struct not_points n = { .m = gr_mutex_new() };
    CHECK(n.m);
    CHECK_EQ(gr_mutex_lock(n.m), 0);
    gr_ctx *c2 = gr_ctx_new(NULL);
    id = gr_spawn_ctx(c2, lock_mutex, &n);
    CHECK(id > 0);
    await_goroutine_waiting(id, "mutex");
    CHECK_EQ(gr_ctx_cancel(c2), 0);
    gr_sleep(20 * MS);
    CHECK_EQ(atomic_load(&n.locked), 0);
    CHECK_EQ(gr_mutex_unlock(n.m), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(n.lock_rc, 0);
    CHECK_EQ(gr_mutex_free(n.m), 0);
    CHECK_EQ(gr_ctx_free(c2), 0);
    CHECK_EQ(gr_ctx_free(ctx), 0);
}

static void run(void *arg)
{
    (void)arg;
    int64_t worst = 0;
    for (int op = 0; op < NOPS; op++) {
        int64_t lat = cancel_parked(op);
        printf("cancel -> %-14s returned: %6.1f us\n", op_name[op], lat / 1000.0);
        if (lat > worst)
            worst = lat;
        if (lat > 1 * MS)
            FAIL("%s returned %.3f ms after the cancel (bound: 1 ms)", op_name[op], lat / 1e6);
    }
    printf("worst cancel latency: %.1f us\n", worst / 1000.0);
    for (int op = 0; op < NOPS; op++)
        cancelled_before(op);
    int64_t late = 0;
    for (int op = 0; op < NOPS; op++) {
        int64_t l = deadline(op);
        printf("deadline -> %-14s returned %6.1f us late\n", op_name[op], l / 1000.0);
        if (l > late)
            late = l;
    }
    printf("worst deadline lateness (idle): %.1f us\n", late / 1000.0);
    not_cancellation_points();
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_main(run, NULL), 0);
    printf("ok\n");
    return 0;
}
