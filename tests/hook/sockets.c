/*
 * Sockets under the hook layer (what libc promises, on goroutines):
 * - program-set O_NONBLOCK (fcntl, SOCK_NONBLOCK, ioctl FIONBIO, accept4's flag)
 *   gives EAGAIN at once, and F_GETFL reports the program's mode, also on a listener
 *   the layer made non-blocking for its accepts; a plain thread's accept on that
 *   listener still blocks;
 * - SO_RCVTIMEO gives EAGAIN after the timeout, SO_SNDTIMEO a partial count or
 *   EAGAIN, poll and select time out on time (all within 50%);
 * - connect parks until connected, or fails with ECONNREFUSED;
 * - a 4 MiB write to a blocking stream socket returns 4 MiB, recv(MSG_WAITALL)
 *   fills its buffer, writev/readv/sendmsg/recvmsg work;
 * - poll on two fds wakes for the second; select's result sets are exact, and an fd
 *   that is not open fails it with EBADF; epoll_wait parks and returns the event;
 * - close of a socket a goroutine waits on wakes it with EBADF;
 * - short reads of a TCP socket (after which the layer waits for the next edge
 *   before reading, gr_io_read_drained): 500 exchanges of 1 to 300 bytes into a
 *   256-byte buffer arrive whole and in order; a read woken by its data's edge
 *   that got less than asked is noted (gr_io_read_drained); a MSG_PEEK that got
 *   less than asked is not taken for a drained queue; the bytes after urgent data
 *   are read;
 *   SO_RCVTIMEO still gives EAGAIN after a short read;
 * - name lookups work on a goroutine (getaddrinfo, getnameinfo, gethostbyname and
 *   gethostbyname_r of localhost: through gr_blocking, which this cannot observe, as
 *   a local lookup does not wait).
 */
#include "hook_test.h"

#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/uio.h>

static int expect_eagain_now(int fd)
{
    char c;
    int64_t t0 = now_ns();
    errno = 0;
    ssize_t n = read(fd, &c, 1);
    CHECK_EQ(n, -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    CHECK(now_ns() - t0 < 20000000);
    return 0;
}

/* Elapsed seconds within 50% of `want`. */
static void check_about(double got, double want, const char *what)
{
    printf("%s: %.3f s (asked %.3f)\n", what, got, want);
    if (got < want * 0.999 || got > want * 1.5)
        FAIL("%s took %.3f s, asked for %.3f", what, got, want);
}

static void nonblocking_modes(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    CHECK_EQ(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
    CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    expect_eagain_now(sv[0]);
    CHECK_EQ(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) & ~O_NONBLOCK), 0);
    int on = 1;
    CHECK_EQ(ioctl(sv[0], FIONBIO, &on), 0);
    expect_eagain_now(sv[0]);
    close(sv[0]);
    close(sv[1]);

    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    expect_eagain_now(sv[1]);
    close(sv[0]);
    close(sv[1]);

    /* A listener accepted on by a goroutine: still blocking as the program sees it. */
    int port, l = listen_loopback(&port, 16);
    int c = connect_loopback(port);
    int a = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    CHECK(a >= 0);
    CHECK(fcntl(a, F_GETFL) & O_NONBLOCK);
    expect_eagain_now(a);
    CHECK_EQ(fcntl(l, F_GETFL) & O_NONBLOCK, 0);
    /* accept on it with O_NONBLOCK set by the program: EAGAIN at once. */
    CHECK_EQ(fcntl(l, F_SETFL, O_NONBLOCK), 0);
    errno = 0;
    CHECK_EQ(accept(l, NULL, NULL), -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    CHECK_EQ(fcntl(l, F_SETFL, 0), 0);
    CHECK_EQ(fcntl(l, F_GETFL) & O_NONBLOCK, 0);
    close(a);
    close(c);
    close(l);
}

static void timeouts(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct timeval tv = {0, 100000};
    CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    char buf[64];
    int64_t t0 = now_ns();
    errno = 0;
    CHECK_EQ(recv(sv[0], buf, sizeof buf, 0), -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    check_about(seconds_since(t0), 0.1, "SO_RCVTIMEO 100 ms, recv");
    t0 = now_ns();
    CHECK_EQ(read(sv[0], buf, sizeof buf), -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    check_about(seconds_since(t0), 0.1, "SO_RCVTIMEO 100 ms, read");

    /* SO_SNDTIMEO: fill the socket, then a write gives EAGAIN (or a partial count). */
    CHECK_EQ(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    static char chunk[1 << 16];
    t0 = now_ns();
    ssize_t n;
    while ((n = write(sv[1], chunk, sizeof chunk)) == (ssize_t)sizeof chunk)
        t0 = now_ns();
    CHECK(n == -1 ? errno == EAGAIN : n >= 0);
    check_about(seconds_since(t0), 0.1, "SO_SNDTIMEO 100 ms, write on a full socket");

    close(sv[0]);
    close(sv[1]);

    /* poll and select time out on time and report nothing. */
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    t0 = now_ns();
    CHECK_EQ(poll(&p, 1, 100), 0);
    CHECK_EQ(p.revents, 0);
    check_about(seconds_since(t0), 0.1, "poll 100 ms");
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(sv[0], &rd);
    struct timeval stv = {0, 100000};
    t0 = now_ns();
    CHECK_EQ(select(sv[0] + 1, &rd, NULL, NULL, &stv), 0);
    CHECK(!FD_ISSET(sv[0], &rd));
    check_about(seconds_since(t0), 0.1, "select 100 ms");
    close(sv[0]);
    close(sv[1]);
}

static int closed_port(void)
{
    int port, l = listen_loopback(&port, 1);
    close(l);
    return port;
}

static void connects(void *arg)
{
    (void)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)closed_port()),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    errno = 0;
    CHECK_EQ(connect(s, (struct sockaddr *)&a, sizeof a), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK_EQ(fcntl(s, F_GETFL) & O_NONBLOCK, 0);
    close(s);
}

#define BIG (4 << 20)
static int big_sv[2];

static void big_reader(void *arg)
{
    (void)arg;
    static char buf[BIG];
    /* MSG_WAITALL: one recv fills the whole buffer. */
    CHECK_EQ(recv(big_sv[1], buf, BIG, MSG_WAITALL), BIG);
    for (int i = 0; i < BIG; i += 4096)
        CHECK_EQ(buf[i], (char)(i / 4096));
}

static void big_writer(void *arg)
{
    (void)arg;
    static char buf[BIG];
    for (int i = 0; i < BIG; i += 4096)
        buf[i] = (char)(i / 4096);
    CHECK_EQ(write(big_sv[0], buf, BIG), BIG);
}

static void vectors(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char a[3] = "abc", b[4] = "defg", x[4], y[3];
    struct iovec out[2] = {{a, 3}, {b, 4}}, in[2] = {{x, 4}, {y, 3}};
    CHECK_EQ(writev(sv[0], out, 2), 7);
    CHECK_EQ(readv(sv[1], in, 2), 7);
    CHECK(memcmp(x, "abcd", 4) == 0 && memcmp(y, "efg", 3) == 0);
    struct msghdr m = {.msg_iov = out, .msg_iovlen = 2};
    CHECK_EQ(sendmsg(sv[0], &m, 0), 7);
    struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
    CHECK_EQ(recvmsg(sv[1], &r, 0), 7);
    CHECK(memcmp(x, "abcd", 4) == 0 && memcmp(y, "efg", 3) == 0);
    close(sv[0]);
    close(sv[1]);
}

/* A connected TCP pair: *c the client end, *a the accepted one. */
static void tcp_pair(int *c, int *a)
{
    int port, l = listen_loopback(&port, 1);
    *c = connect_loopback(port);
    *a = accept(l, NULL, NULL);
    CHECK(*a >= 0);
    close(l);
    int one = 1;
    CHECK_EQ(setsockopt(*c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    CHECK_EQ(setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    /* A read that waits with data queued would fail with EAGAIN after 2 s. */
    struct timeval tv = {.tv_sec = 2};
    CHECK_EQ(setsockopt(*a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
}

static int peek_fd;

static void write_abc_later(void *arg)
{
    (void)arg;
    sleep_ms(30);
    CHECK_EQ(write(peek_fd, "abc", 3), 3);
}

static void short_reads(void *arg)
{
    (void)arg;
    int c, a;
    tcp_pair(&c, &a);
    char msg[300], got[300], buf[256];
    int shorts = 0;
    for (int i = 0; i < 500; i++) {
        size_t n = 1 + (size_t)(i * 7919) % 300;
        for (size_t k = 0; k < n; k++)
            msg[k] = (char)(i ^ (int)k);
        CHECK_EQ(write(c, msg, n), (ssize_t)n);
        size_t have = 0;
        while (have < n) {
            ssize_t r = i % 2 ? recv(a, buf, sizeof buf, 0) : read(a, buf, sizeof buf);
            if (r <= 0)
                FAIL("exchange %d: read returned %zd (%s) with %zu of %zu bytes", i, r,
                     strerror(errno), have, n);
            shorts += (size_t)r < sizeof buf;
            memcpy(got + have, buf, (size_t)r);
            have += (size_t)r;
        }
        CHECK(memcmp(got, msg, n) == 0);
        CHECK_EQ(write(a, "k", 1), 1);
        char k;
        CHECK_EQ(read(c, &k, 1), 1);
    }
    CHECK(shorts > 0);

    /* The layer takes the runtime's note: a read that the data's edge woke and that
     * got less than it asked leaves gr_io_read_drained saying so (the next read waits
     * for the edge first). */
    peek_fd = c;
    SPAWN(write_abc_later, NULL);
    CHECK_EQ(read(a, buf, sizeof buf), 3);
    CHECK_EQ(gr_io_read_drained(a), 1);

    /* A peek that waited for its data and got less than asked: the data is still
     * queued, and the next read returns it at once. */
    peek_fd = c;
    SPAWN(write_abc_later, NULL);
    CHECK_EQ(recv(a, buf, sizeof buf, MSG_PEEK), 3);
    CHECK_EQ(read(a, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);

    /* Urgent data: the read stops at its mark with "def" queued behind it. */
    CHECK_EQ(send(c, "abc", 3, 0), 3);
    CHECK_EQ(send(c, "X", 1, MSG_OOB), 1);
    CHECK_EQ(send(c, "def", 3, 0), 3);
    size_t have = 0;
    while (have < 6) {
        ssize_t r = read(a, got + have, sizeof got - have);
        if (r <= 0)
            FAIL("urgent data: read returned %zd (%s) after %zu bytes", r, strerror(errno),
                 have);
        have += (size_t)r;
    }
    CHECK_EQ(have, 6);
    CHECK(memcmp(got, "abcdef", 6) == 0);

    /* SO_RCVTIMEO after a short read: EAGAIN after the timeout, not a hang. */
    struct timeval tv = {.tv_usec = 50000};
    CHECK_EQ(setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    CHECK_EQ(write(c, "hello", 5), 5);
    CHECK_EQ(read(a, buf, sizeof buf), 5);
    int64_t t0 = now_ns();
    errno = 0;
    CHECK_EQ(read(a, buf, sizeof buf), -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    check_about((now_ns() - t0) / 1e9, 0.05, "SO_RCVTIMEO after a short read");
    close(c);
    close(a);
}

static int two[2][2];

static void poke_second(void *arg)
{
    (void)arg;
    sleep_ms(30);
    CHECK_EQ(write(two[1][1], "!", 1), 1);
}

static void readiness(void *arg)
{
    (void)arg;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, two[0]), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, two[1]), 0);
    SPAWN(poke_second, NULL);
    struct pollfd p[2] = {{.fd = two[0][0], .events = POLLIN}, {.fd = two[1][0], .events = POLLIN}};
    int64_t t0 = now_ns();
    CHECK_EQ(poll(p, 2, 5000), 1);
    CHECK_EQ(p[0].revents, 0);
    CHECK_EQ(p[1].revents, POLLIN);
    CHECK(seconds_since(t0) >= 0.029);

    /* select: exact sets (two[1][0] readable, two[0][1] writable, two[0][0] not). */
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(two[0][0], &rd);
    FD_SET(two[1][0], &rd);
    FD_SET(two[0][1], &wr);
    int nfds = two[1][1] + 1;
    CHECK_EQ(select(nfds, &rd, &wr, NULL, NULL), 2);
    CHECK(!FD_ISSET(two[0][0], &rd) && FD_ISSET(two[1][0], &rd) && FD_ISSET(two[0][1], &wr));
    /* An fd that is not open: EBADF. */
    int dead = dup(two[0][0]);
    close(dead);
    FD_ZERO(&rd);
    FD_SET(dead, &rd);
    errno = 0;
    CHECK_EQ(select(dead + 1, &rd, NULL, NULL, NULL), -1);
    CHECK_EQ(errno, EBADF);

    /* epoll_wait parks until the event. */
    char c;
    CHECK_EQ(read(two[1][0], &c, 1), 1);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = two[1][0]};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, two[1][0], &ev), 0);
    struct epoll_event got[4];
    CHECK_EQ(epoll_wait(ep, got, 4, 0), 0);
    t0 = now_ns();
    CHECK_EQ(epoll_wait(ep, got, 4, 50), 0);
    check_about(seconds_since(t0), 0.05, "epoll_wait 50 ms");
    SPAWN(poke_second, NULL);
    CHECK_EQ(epoll_wait(ep, got, 4, 5000), 1);
    CHECK_EQ(got[0].data.fd, two[1][0]);
    close(ep);
    for (int i = 0; i < 2; i++) {
        close(two[i][0]);
        close(two[i][1]);
    }
}


static void close_wakes(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    waited_fd = sv[0];
    gr_id w = SPAWN(fd_waiter, NULL);
    await_goroutine_waiting(w, "IO wait");
    CHECK_EQ(close(sv[0]), 0);
    CHECK_EQ(gr_join(w), 0);
    CHECK_EQ(atomic_load(&wait_errno), EBADF);
    close(sv[1]);
}

static void lookups(void *arg)
{
    (void)arg;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    CHECK_EQ(getaddrinfo("localhost", "80", &hints, &res), 0);
    CHECK(res && res->ai_family == AF_INET);
    struct sockaddr_in *in = (struct sockaddr_in *)res->ai_addr;
    CHECK_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    char host[64];
    CHECK_EQ(getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, NULL, 0,
                         NI_NUMERICHOST),
             0);
    CHECK(strcmp(host, "127.0.0.1") == 0);
    freeaddrinfo(res);
    struct hostent *h = gethostbyname("localhost");
    CHECK(h && h->h_addrtype == AF_INET);
    struct hostent he, *out = NULL;
    char buf[1024];
    int herr = 0;
    CHECK_EQ(gethostbyname_r("localhost", &he, buf, sizeof buf, &out, &herr), 0);
    CHECK(out == &he);
}

static int plain_listener;

static void accept_one(void *arg)
{
    int c = connect_loopback(*(int *)arg);
    int a = accept(plain_listener, NULL, NULL);
    CHECK(a >= 0);
    close(a);
    close(c);
}

static void *plain_accept(void *arg)
{
    (void)arg;
    int64_t t0 = now_ns();
    int a = accept(plain_listener, NULL, NULL);
    if (a < 0)
        FAIL("a plain thread's accept: %s", strerror(errno));
    CHECK(now_ns() - t0 >= 40000000);
    close(a);
    return NULL;
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(1), 1);
    struct peak pk;
    peak_start(&pk);
    gr_join(SPAWN(nonblocking_modes, NULL));
    gr_join(SPAWN(timeouts, NULL));
    gr_join(SPAWN(connects, NULL));
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, big_sv), 0);
    SPAWN(big_reader, NULL);
    SPAWN(big_writer, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    gr_join(SPAWN(vectors, NULL));
    gr_join(SPAWN(short_reads, NULL));
    gr_join(SPAWN(readiness, NULL));
    gr_join(SPAWN(close_wakes, NULL));
    CHECK_EQ(gr_wait_all(), 0);
    long added = peak_stop(&pk);
    printf("threads added: %ld\n", added);
    CHECK_EQ(added, 0);
    /* Lookups hand their processor to another thread (gr_blocking): not counted. */
    gr_join(SPAWN(lookups, NULL));

    /* A listener a goroutine accepted on (made non-blocking in the kernel by the
     * layer): a plain thread's accept on it still waits for a connection. */
    int port;
    plain_listener = listen_loopback(&port, 4);
    gr_join(SPAWN(accept_one, &port));
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, plain_accept, NULL), 0);
    sleep_ms(50);
    int c0 = connect_loopback(port);
    CHECK_EQ(pthread_join(t, NULL), 0);
    close(c0);
    close(plain_listener);
    puts("ok");
    return 0;
}
