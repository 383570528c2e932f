/*
 * A TCP echo server on 127.0.0.1 with one goroutine per connection: each reads with
 * gr_read and writes back with gr_write, parking (not blocking a thread) whenever the
 * socket is not ready.
 *
 *   echo_server [PORT]            serve on 127.0.0.1:PORT (default 7007) until killed
 *   echo_server --selftest [N]    serve on a free port and, in the same process, run N
 *                                 client goroutines (default 1,000) that connect at
 *                                 once, send 64 KiB each in random-sized pieces while
 *                                 reading the echo back, and check every byte;
 *                                 prints "ok" last when all is well (exit status 0)
 *
 * Build: gcc -O2 -pthread -I include echo_server.c -L target/release -lgoroutine
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <goroutine.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define die(...)                                                                        \
    do {                                                                                \
        fprintf(stderr, "echo_server: " __VA_ARGS__);                                   \
        fputc('\n', stderr);                                                            \
        exit(1);                                                                        \
    } while (0)

static atomic_long connections, bytes_echoed;

/* One connection: echo until the peer closes. */
static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        ptrdiff_t n = gr_read(fd, buf, sizeof buf);
        if (n <= 0)
            break; /* 0: the peer closed; < 0: an error (reset, gr_close at shutdown) */
        for (ptrdiff_t off = 0; off < n;) {
            ptrdiff_t w = gr_write(fd, buf + off, (size_t)(n - off));
            if (w < 0)
                goto out;
            off += w;
        }
        atomic_fetch_add_explicit(&bytes_echoed, n, memory_order_relaxed);
    }
out:
    gr_close(fd);
}

/* Accepts until the listening socket is gr_close'd (gr_accept: -ECANCELED). */
static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = gr_accept(lfd, NULL, NULL);
        if (fd == -ECANCELED || fd == -EBADF)
            return;
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE) { /* out of fds: back off a little */
                gr_sleep(1000000);
                continue;
            }
            if (fd == -ECONNABORTED || fd == -EINTR)
                continue;
            fprintf(stderr, "echo_server: accept: %s\n", strerror(-fd));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_fetch_add_explicit(&connections, 1, memory_order_relaxed);
        gr_id id = gr_spawn(serve_conn, (void *)(intptr_t)fd);
        if (id < 0) {
            fprintf(stderr, "echo_server: spawn: %s\n", gr_strerror((int)id));
            gr_close(fd);
        }
    }
}

static int listen_on(int port, int *bound_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind 127.0.0.1:%d: %s", port, strerror(errno));
    if (listen(fd, 4096) < 0)
        die("listen: %s", strerror(errno));
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *bound_port = ntohs(a.sin_port);
    return fd;
}

/* ------------------------------------------------------------------ self-test */

#define PER_CLIENT (64 * 1024)

static int test_port;
static atomic_int clients_ok, clients_failed;
static gr_chan *slots; /* a counting semaphore when fds are scarce */

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static int client_run(uint32_t seed)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "client: socket: %s\n", strerror(errno));
        return -1;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)test_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int rc = gr_connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc < 0) {
        fprintf(stderr, "client: connect: %s\n", strerror(-rc));
        gr_close(fd);
        return -1;
    }
    /* The data is a function of (seed, offset): the reader regenerates it. */
    unsigned char out[8192];
    unsigned char in[8192];
    uint32_t ws = seed, rs = seed;
    long sent = 0, got = 0;
    while (got < PER_CLIENT) {
        if (sent < PER_CLIENT) {
            size_t n = 1 + next_rand(&ws) % sizeof out;
            if ((long)n > PER_CLIENT - sent)
                n = (size_t)(PER_CLIENT - sent);
            for (size_t i = 0; i < n; i++)
                out[i] = (unsigned char)((sent + (long)i) * 131 + seed);
            for (size_t off = 0; off < n;) {
                ptrdiff_t w = gr_write(fd, out + off, n - off);
                if (w < 0) {
                    fprintf(stderr, "client: write: %s\n", strerror((int)-w));
                    gr_close(fd);
                    return -1;
                }
                off += (size_t)w;
            }
            sent += (long)n;
        }
        /* Read back at least what is in flight beyond 32 KiB, so neither side's
         * buffers fill up; at the end, everything. */
        while (got < sent && (sent - got > 32768 || sent == PER_CLIENT)) {
            size_t want = 1 + next_rand(&rs) % sizeof in;
            if ((long)want > sent - got)
                want = (size_t)(sent - got);
            ptrdiff_t r = gr_read(fd, in, want);
            if (r <= 0) {
                fprintf(stderr, "client: read: %s\n", r == 0 ? "early end of stream" : strerror((int)-r));
                gr_close(fd);
                return -1;
            }
            for (ptrdiff_t i = 0; i < r; i++)
                if (in[i] != (unsigned char)((got + i) * 131 + seed)) {
                    fprintf(stderr, "client %u: byte %ld differs\n", seed, got + (long)i);
                    gr_close(fd);
                    return -1;
                }
            got += r;
        }
    }
    /* Half-close: the server sees end of file and closes; we then read 0. */
    shutdown(fd, SHUT_WR);
    char c;
    ptrdiff_t r = gr_read(fd, &c, 1);
    gr_close(fd);
    if (r != 0) {
        fprintf(stderr, "client: expected end of stream, got %td\n", r);
        return -1;
    }
    return 0;
}

static void client(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg;
    char token = 0;
    if (slots)
        gr_chan_recv(slots, &token);
    if (client_run(seed) == 0)
        atomic_fetch_add(&clients_ok, 1);
    else
        atomic_fetch_add(&clients_failed, 1);
    if (slots)
        gr_chan_send(slots, &token);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct selftest {
    int n;
    int rc;
};

static void selftest_main(void *arg)
{
    struct selftest *st = arg;
    int lfd = listen_on(0, &test_port);
    gr_id acceptor = gr_spawn(accept_loop, (void *)(intptr_t)lfd);
    if (acceptor < 0)
        die("spawn: %s", gr_strerror((int)acceptor));

    double t0 = now_s();
    gr_id *ids = calloc((size_t)st->n, sizeof *ids);
    for (int i = 0; i < st->n; i++) {
        ids[i] = gr_spawn(client, (void *)(uintptr_t)(i + 1));
        if (ids[i] < 0)
            die("spawn: %s", gr_strerror((int)ids[i]));
    }
    for (int i = 0; i < st->n; i++)
        gr_join(ids[i]);
    double dt = now_s() - t0;
    free(ids);

    gr_close(lfd); /* stops the accept loop */
    gr_join(acceptor);
    long expect = (long)st->n * PER_CLIENT;
    printf("%d clients x %d bytes echoed and checked in %.3f s (%ld connections served, "
           "%ld bytes echoed, %.1f MB/s)\n", st->n, PER_CLIENT, dt, atomic_load(&connections),
           atomic_load(&bytes_echoed), 2.0 * expect / dt / 1e6);
    st->rc = (atomic_load(&clients_ok) == st->n && atomic_load(&clients_failed) == 0 &&
              atomic_load(&connections) == st->n && atomic_load(&bytes_echoed) == expect)
                 ? 0
                 : 1;
    if (st->rc)
        fprintf(stderr, "echo_server: self-test FAILED: %d clients ok, %d failed\n",
                atomic_load(&clients_ok), atomic_load(&clients_failed));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0) {
        struct selftest st = { argc > 2 ? atoi(argv[2]) : 1000, 1 };
        if (st.n < 1)
            die("bad client count");
        /* Each client needs 2 fds (its socket and the server's). */
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < 2L * st.n + 64) {
            int max = (int)(((long)rl.rlim_cur - 64) / 2);
            if (max < 1)
                die("too few file descriptors");
            printf("(fd limit %ld: at most %d clients connected at once)\n", (long)rl.rlim_cur, max);
            slots = gr_chan_new(1, (size_t)max);
            char token = 0;
            for (int i = 0; i < max; i++)
                gr_chan_send(slots, &token);
        }
        int rc = gr_main(selftest_main, &st);
        if (rc != 0)
            die("gr_main: %s", gr_strerror(rc));
        if (gr_wait_all() != 0)
            die("goroutines left blocked");
        if (st.rc != 0)
            return 1;
        puts("ok");
        return 0;
    }
    int port = argc > 1 ? atoi(argv[1]) : 7007;
    if (port <= 0 || port > 65535)
        die("usage: echo_server [PORT] | --selftest [N]");
    int bound;
    int lfd = listen_on(port, &bound);
    printf("echo server on 127.0.0.1:%d\n", bound);
    fflush(stdout);
    int rc = gr_main(accept_loop, (void *)(intptr_t)lfd);
    return rc == 0 ? 0 : 1;
}
