/*
 * A peer hang-up or a socket error wakes the waiter once, and nothing spins on it:
 *   1. gr_read on a socketpair end whose peer closes 50 ms later returns 0 (end of
 *      file) within 100 ms; so does gr_read on a pipe whose write end closes;
 *   2. a TCP connection reset by the peer (SO_LINGER 0): the blocked gr_read returns
 *      -ECONNRESET; a gr_block_io(WRITE) waiter on a connection whose send buffer was
 *      full is woken too (an error counts as ready);
 *   3. gr_write to a pipe whose reader is gone: -EPIPE (SIGPIPE ignored), and
 *      gr_block_io(WRITE) on it reports GR_WRITE at once;
 *   4. after all that, the hung-up fds stay open and registered, another goroutine
 *      waits on an idle socket, and the runtime must be idle: < 20 ms of CPU in
 *      300 ms (an edge-triggered HUP that kept firing would spin a worker).
 *   5. waiting again on a hung-up fd returns at once each time (level: as poll says).
 */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define MS 1000000LL

struct rd {
    int fd;
    ptrdiff_t rc;
    int64_t at;
};

static void reader(void *arg)
{
    struct rd *r = arg;
    char buf[64];
    r->rc = gr_read(r->fd, buf, sizeof buf);
    r->at = now_ns();
}

static void block_writer(void *arg)
{
    struct rd *r = arg;
    r->rc = gr_block_io(r->fd, GR_WRITE, 5000 * MS);
    r->at = now_ns();
}

static void idle_waiter(void *arg)
{
    struct rd *r = arg;
    r->rc = gr_block_io(r->fd, GR_READ, -1);
}

static int listener(struct sockaddr_in *a)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    *a = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int small = 4096; /* accepted sockets inherit it: a flood fills up quickly */
    CHECK_EQ(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    socklen_t len = sizeof *a;
    CHECK_EQ(bind(l, (struct sockaddr *)a, sizeof *a), 0);
    CHECK_EQ(listen(l, 16), 0);
    CHECK_EQ(getsockname(l, (struct sockaddr *)a, &len), 0);
    return l;
}

static int hung[8], nhung;

static void eof_on_hangup(void)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct rd r = { sv[0], -99, 0 };
    gr_id id = SPAWN(reader, &r);
    gr_sleep(50 * MS);
    CHECK_EQ(r.rc, -99);
    int64_t t = now_ns();
    CHECK_EQ(close(sv[1]), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(r.rc, 0);
    printf("socketpair hang-up: gr_read returned 0 after %.3f ms\n", (r.at - t) / 1e6);
    CHECK(r.at - t < 100 * MS);
    hung[nhung++] = sv[0];

    int p[2];
    CHECK_EQ(pipe(p), 0);
    r = (struct rd){ p[0], -99, 0 };
    id = SPAWN(reader, &r);
    gr_sleep(30 * MS);
    t = now_ns();
    CHECK_EQ(close(p[1]), 0);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(r.rc, 0);
    CHECK(r.at - t < 100 * MS);
    hung[nhung++] = p[0];
}

static void reset_by_peer(void)
{
    struct sockaddr_in a;
    int l = listener(&a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0);
    CHECK_EQ(gr_connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int s = gr_accept(l, NULL, NULL);
    CHECK(s >= 0);
    CHECK(fcntl(s, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(s, F_GETFD) & FD_CLOEXEC);

    /* The client's send buffer fills (the server never reads): a GR_WRITE waiter
     * parks; the server then aborts the connection (RST), which wakes it. */
    int small = 4096;
    CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    static char junk[1 << 16];
    /* Loopback moves data on into the server's receive buffer: fill until both
     * are full and the socket stays unwritable. */
    for (int i = 0;; i++) {
        while (write(c, junk, sizeof junk) > 0) {
        }
        CHECK(errno == EAGAIN);
        gr_sleep(20 * MS);
        if (gr_block_io(c, GR_WRITE, 0) == -ETIMEDOUT && gr_block_io(c, GR_WRITE, 50 * MS) == -ETIMEDOUT)
            break;
        CHECK(i < 100);
    }
    struct rd w = { c, -99, 0 }, r;
    gr_id iw = SPAWN(block_writer, &w);
    gr_sleep(50 * MS);
    CHECK_EQ(w.rc, -99);
    struct linger lg = { 1, 0 };
    CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    int64_t t = now_ns();
    CHECK_EQ(gr_close(s), 0); /* RST to c */
    CHECK_EQ(gr_join(iw), 0);
    printf("TCP reset: the blocked GR_WRITE waiter woke with %td after %.3f ms\n", w.rc,
           (w.at - t) / 1e6);
    CHECK(w.rc > 0 && (w.rc & GR_WRITE));
    CHECK(w.at - t < 100 * MS);
    char b[16];
    ptrdiff_t rc = gr_write(c, "x", 1);
    CHECK(rc == -ECONNRESET || rc == -EPIPE);
    rc = gr_read(c, b, sizeof b);
    CHECK(rc == 0 || rc == -ECONNRESET);
    hung[nhung++] = c;

    /* A reader blocked on an idle connection whose peer resets. */
    int c2 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(gr_connect(c2, (struct sockaddr *)&a, sizeof a), 0);
    int s2 = gr_accept(l, NULL, NULL);
    CHECK(s2 >= 0);
    r = (struct rd){ s2, -99, 0 };
    gr_id ir = SPAWN(reader, &r);
    gr_sleep(30 * MS);
    CHECK_EQ(r.rc, -99);
    CHECK_EQ(setsockopt(c2, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    t = now_ns();
    CHECK_EQ(close(c2), 0);
    CHECK_EQ(gr_join(ir), 0);
    printf("TCP reset: the blocked reader got %td (%s) after %.3f ms\n", r.rc,
           gr_strerror((int)r.rc), (r.at - t) / 1e6);
    CHECK_EQ(r.rc, -ECONNRESET);
    CHECK(r.at - t < 100 * MS);
    hung[nhung++] = s2;
    CHECK_EQ(gr_close(l), 0);
}

static void broken_pipe(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(close(p[0]), 0);
    CHECK_EQ(gr_block_io(p[1], GR_WRITE, -1), GR_WRITE);
    CHECK_EQ(gr_write(p[1], "x", 1), -EPIPE);
    hung[nhung++] = p[1];
}

static void body(void *arg)
{
    (void)arg;
    eof_on_hangup();
    reset_by_peer();
    broken_pipe();

    /* An idle socket with a waiter, so that the poller blocks in epoll_wait. */
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct rd idle = { sv[0], -99, 0 };
    gr_id iid = SPAWN(idle_waiter, &idle);
    gr_sleep(20 * MS);

    long long c0 = cpu_us();
    int64_t t0 = now_ns();
    CHECK_EQ(gr_sleep(300 * MS), 0);
    long long used = cpu_us() - c0;
    printf("%d hung-up fds open and registered: %.2f ms of CPU in %.0f ms\n", nhung, used / 1000.0,
           (now_ns() - t0) / 1e6);
    if (used > 20000)
        FAIL("the runtime used %.1f ms of CPU in 300 ms with hung-up fds: spinning on HUP?",
             used / 1000.0);

    /* Waiting again on a hung-up fd returns at once each time. */
    for (int i = 0; i < nhung; i++)
        for (int k = 0; k < 3; k++) {
            int rc = gr_block_io(hung[i], hung[i] == hung[nhung - 1] ? GR_WRITE : GR_READ, 1000 * MS);
            CHECK(rc > 0);
        }

    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK_EQ(gr_join(iid), 0);
    CHECK_EQ(idle.rc, GR_READ);
    for (int i = 0; i < nhung; i++)
        CHECK_EQ(gr_close(hung[i]), 0);
    CHECK_EQ(gr_close(sv[0]), 0);
    CHECK_EQ(gr_close(sv[1]), 0);
}

int main(void)
{
    watchdog(30);
    signal(SIGPIPE, SIG_IGN);
    CHECK_EQ(gr_main(body, NULL), 0);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
