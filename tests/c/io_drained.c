/*
 * gr_read after a read that drained an adopted TCP socket waits for the socket's next
 * edge instead of asking the kernel first (netpoll.rs, "A read that drained a TCP
 * socket"). It is taken only where it holds, and whatever it says, no data may be
 * left unread and no read may hang while data is queued:
 *
 *   0. the note: after a read that the data's edge woke and that got less than it
 *      asked, gr_io_read_drained says 1 (once); not after a full read, not when an
 *      edge came since, not on a TCP socket that is not adopted, nor on an adopted
 *      Unix stream socket;
 *   1. ping-pong: 2,000 exchanges of 1 to 300 bytes into a 256-byte buffer (short
 *      reads, and full reads that leave data queued), every byte in order;
 *   2. mixed use: after a short gr_read, the next edge goes to a goroutine parked in
 *      gr_block_io and part of the data to a plain recv(2); the next gr_read gets
 *      the rest;
 *   3. urgent data: "abc", one byte with MSG_OOB, then "def": the read stops at the
 *      urgent mark with "def" still queued (the one case where a short TCP read does
 *      not drain), and the next gr_read returns it;
 *   4. end of file after a short read: gr_read returns 0 when the peer shuts down;
 *   5. a plain thread's gr_read after a goroutine's short read.
 *
 * A gr_read that hung would end the run at the watchdog; each step also bounds its
 * wait (a goroutine reads while the main goroutine waits with a deadline).
 */
#include "check.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define MS 1000000LL

/* A connected TCP pair on 127.0.0.1, both ends adopted when `adopt` (gr_io_adopt). */
static void tcp_pair_adopted(int *client, int *server, int adopt)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(l, 4), 0);
    CHECK_EQ(getsockname(l, (struct sockaddr *)&a, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0);
    if (adopt)
        CHECK_EQ(gr_io_adopt(c), 0);
    CHECK_EQ(gr_connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int s = gr_accept(l, NULL, NULL);
    CHECK(s >= 0);
    if (adopt)
        CHECK_EQ(gr_io_adopt(s), 0);
    int one = 1;
    CHECK_EQ(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    CHECK_EQ(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    CHECK_EQ(close(l), 0);
    *client = c;
    *server = s;
}

static void tcp_pair(int *client, int *server)
{
    tcp_pair_adopted(client, server, 1);
}

static void close_pair(int a, int b)
{
    CHECK_EQ(gr_close(a), 0);
    CHECK_EQ(gr_close(b), 0);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ptrdiff_t w = gr_write(fd, p, n);
        CHECK(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* A read in its own goroutine, so that the caller can bound how long it takes. */
struct rd {
    int fd;
    size_t cap;
    char buf[512];
    ptrdiff_t rc;
    atomic_int done;
};

static void read_once(void *arg)
{
    struct rd *r = arg;
    r->rc = gr_read(r->fd, r->buf, r->cap);
    atomic_store(&r->done, 1);
}

/* Reads once from fd (in a goroutine); fails if that takes over 2 s. */
static ptrdiff_t bounded_read(int fd, char *out, size_t cap)
{
    static struct rd r;
    r = (struct rd){ .fd = fd, .cap = cap, .rc = -99 };
    gr_id id = SPAWN(read_once, &r);
    int64_t t0 = now_ns();
    while (!atomic_load(&r.done)) {
        if (now_ns() - t0 > 2000 * MS)
            FAIL("gr_read on fd %d still waits after 2 s with data queued", fd);
        gr_sleep(MS);
    }
    CHECK_EQ(gr_join(id), 0);
    if (r.rc > 0)
        memcpy(out, r.buf, (size_t)r.rc);
    return r.rc;
}

/* Writes `bytes` to `fd` 20 ms after it is started (a goroutine). */
struct later {
    int fd;
    const char *bytes;
};

static void write_later(void *arg)
{
    struct later *l = arg;
    gr_sleep(20 * MS);
    write_all(l->fd, l->bytes, strlen(l->bytes));
}

/* gr_read of `reader` into cap bytes, parked until `bytes` come from `writer`: the
 * read is woken by their edge, so the note it may take counts that edge. */
static ptrdiff_t read_after_edge(int reader, int writer, const char *bytes, char *buf,
                                 size_t cap)
{
    struct later l = { writer, bytes };
    gr_id id = SPAWN(write_later, &l);
    ptrdiff_t r = gr_read(reader, buf, cap);
    CHECK_EQ(gr_join(id), 0);
    return r;
}

static void the_note(void)
{
    int c, s;
    char buf[100];
    tcp_pair(&c, &s);
    CHECK_EQ(read_after_edge(s, c, "hello", buf, sizeof buf), 5);
    CHECK_EQ(gr_io_read_drained(s), 1);
    CHECK_EQ(gr_io_read_drained(s), 0); /* asked once: forgotten */
    CHECK_EQ(read_after_edge(s, c, "abcd", buf, 4), 4);
    CHECK_EQ(gr_io_read_drained(s), 0); /* a full read: data may be left */
    CHECK_EQ(read_after_edge(s, c, "hello", buf, sizeof buf), 5);
    write_all(c, "x", 1);
    CHECK_EQ(gr_io_wait(s, GR_READ, 2000 * MS), GR_READ); /* its edge came */
    CHECK_EQ(gr_io_read_drained(s), 0);
    CHECK_EQ(gr_read(s, buf, sizeof buf), 1);
    close_pair(c, s);

    tcp_pair_adopted(&c, &s, 0);
    CHECK_EQ(read_after_edge(s, c, "hello", buf, sizeof buf), 5);
    CHECK_EQ(gr_io_read_drained(s), 0); /* not adopted: a close(2) may reuse the fd */
    close_pair(c, s);

    int u[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u), 0);
    CHECK_EQ(gr_io_adopt(u[0]), 0);
    CHECK_EQ(gr_io_adopt(u[1]), 0);
    CHECK_EQ(read_after_edge(u[0], u[1], "hello", buf, sizeof buf), 5);
    CHECK_EQ(gr_io_read_drained(u[0]), 0); /* not TCP */
    close_pair(u[0], u[1]);
    puts("the note: taken after a short TCP read, and only there");
}

static void pingpong(void)
{
    int c, s;
    tcp_pair(&c, &s);
    char msg[300], got[300], buf[256];
    long total = 0, full_reads = 0, short_reads = 0;
    for (int i = 0; i < 2000; i++) {
        size_t n = 1 + (size_t)(i * 7919) % 300;
        for (size_t k = 0; k < n; k++)
            msg[k] = (char)(i + k);
        write_all(c, msg, n);
        size_t have = 0;
        while (have < n) {
            ptrdiff_t r = gr_read(s, buf, sizeof buf);
            CHECK(r > 0);
            if ((size_t)r == sizeof buf)
                full_reads++;
            else
                short_reads++;
            memcpy(got + have, buf, (size_t)r);
            have += (size_t)r;
        }
        CHECK_EQ(have, n);
        CHECK(memcmp(got, msg, n) == 0);
        write_all(s, "k", 1); /* the reply: the client waits for it */
        char k;
        CHECK_EQ(gr_read(c, &k, 1), 1);
        total += (long)n;
    }
    printf("ping-pong: %ld bytes in order, %ld short and %ld full reads\n", total, short_reads,
           full_reads);
    CHECK(short_reads > 0 && full_reads > 0);
    close_pair(c, s);
}

static int block_io_rc;

static void wait_readable(void *arg)
{
    block_io_rc = gr_block_io((int)(intptr_t)arg, GR_READ, 2000 * MS);
}

static void mixed_use(void)
{
    int c, s;
    tcp_pair(&c, &s);
    char buf[100];
    write_all(c, "0123456789", 10);
    CHECK_EQ(gr_block_io(s, GR_READ, 2000 * MS), GR_READ);
    CHECK_EQ(gr_read(s, buf, sizeof buf), 10); /* short: drained */
    /* The next edge goes to a goroutine parked in gr_block_io (so it is not latched
     * for gr_read to find), and a plain recv(2) takes part of the data. */
    gr_id id = SPAWN(wait_readable, (void *)(intptr_t)s);
    await_goroutine_waiting(id, "IO wait");
    write_all(c, "abcdefghijklmnopqrst", 20);
    CHECK_EQ(gr_join(id), 0);
    CHECK_EQ(block_io_rc, GR_READ);
    CHECK_EQ(recv(s, buf, 5, MSG_DONTWAIT), 5);
    CHECK(memcmp(buf, "abcde", 5) == 0);
    ptrdiff_t r = bounded_read(s, buf, sizeof buf);
    CHECK_EQ(r, 15);
    CHECK(memcmp(buf, "fghijklmnopqrst", 15) == 0);
    puts("mixed use: the rest after gr_block_io and recv(2)");
    close_pair(c, s);
}

static void urgent_data(void)
{
    int c, s;
    tcp_pair(&c, &s);
    char buf[100];
    /* Twice: once with a pause before the reads (the poller has seen the urgent
     * edge by then), once without (it may see it before or after the reads). */
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(send(c, "abc", 3, 0), 3);
        CHECK_EQ(send(c, "X", 1, MSG_OOB), 1);
        CHECK_EQ(send(c, "def", 3, 0), 3);
        if (round == 0)
            gr_sleep(20 * MS);
        size_t have = 0;
        char got[8];
        while (have < 6) {
            ptrdiff_t r = bounded_read(s, buf, sizeof buf);
            CHECK(r > 0);
            CHECK(have + (size_t)r <= 6);
            memcpy(got + have, buf, (size_t)r);
            have += (size_t)r;
        }
        CHECK(memcmp(got, "abcdef", 6) == 0);
        write_all(s, "k", 1);
        char k;
        CHECK_EQ(gr_read(c, &k, 1), 1);
    }
    puts("urgent data: the bytes after the mark are read");
    close_pair(c, s);
}

static void eof_after_short_read(void)
{
    int c, s;
    tcp_pair(&c, &s);
    char buf[100];
    write_all(c, "hello", 5);
    CHECK_EQ(gr_block_io(s, GR_READ, 2000 * MS), GR_READ);
    CHECK_EQ(gr_read(s, buf, sizeof buf), 5);
    CHECK_EQ(shutdown(c, SHUT_WR), 0);
    CHECK_EQ(bounded_read(s, buf, sizeof buf), 0);
    puts("end of file after a short read: 0");
    close_pair(c, s);
}

struct plain_rd {
    int fd;
    ptrdiff_t rc;
    char buf[16];
};

static void *plain_read(void *arg)
{
    struct plain_rd *p = arg;
    p->rc = gr_read(p->fd, p->buf, sizeof p->buf);
    return NULL;
}

static void plain_thread_after_short_read(void)
{
    int c, s;
    tcp_pair(&c, &s);
    char buf[100];
    write_all(c, "one", 3);
    CHECK_EQ(gr_block_io(s, GR_READ, 2000 * MS), GR_READ);
    CHECK_EQ(gr_read(s, buf, sizeof buf), 3);
    write_all(c, "two", 3);
    struct plain_rd p = { s, -99, { 0 } };
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, plain_read, &p), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(p.rc, 3);
    CHECK(memcmp(p.buf, "two", 3) == 0);
    puts("plain thread after a goroutine's short read: reads");
    close_pair(c, s);
}

static void test_main(void *arg)
{
    (void)arg;
    the_note();
    pingpong();
    mixed_use();
    urgent_data();
    eof_after_short_read();
    plain_thread_after_short_read();
}

int main(void)
{
    watchdog(60);
    CHECK(gr_init(2) > 0);
    CHECK_EQ(gr_main(test_main, NULL), 0);
    puts("ok");
    return 0;
}
