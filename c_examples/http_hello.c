/*
 * A minimal HTTP/1.1 server: one goroutine per connection, keep-alive, and the same
 * fixed response to every request (the "httpd" workload of ../shared/PEERS.md):
 *
 *   HTTP/1.1 200 OK\r\n
 *   Content-Length: 14\r\n
 *   Content-Type: text/plain\r\n
 *   \r\n
 *   Hello, World!\n
 *
 * Requests are parsed just enough to be framed: the header ends at an empty line,
 * and a Content-Length body is skipped. Pipelined requests are answered in order
 * with one write. "Connection: close" (or HTTP/1.0 without keep-alive) closes the
 * connection after the response.
 *
 *   http_hello PORT          serve on 127.0.0.1:PORT until killed
 *   http_hello --selftest    serve on a free port and check the answers to a few
 *                            requests made in the same process (keep-alive,
 *                            pipelined, split across writes, with a body,
 *                            Connection: close, HTTP/1.0, 100 connections at once);
 *                            prints "ok" last (exit status 0)
 *
 * Build: gcc -O2 -pthread -I include http_hello.c -L target/release -lgoroutine
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <goroutine.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_serve.h"

#define die(...)                                                                        \
    do {                                                                                \
        fprintf(stderr, "http_hello: " __VA_ARGS__);                                    \
        fputc('\n', stderr);                                                            \
        exit(1);                                                                        \
    } while (0)

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    http_serve_conn(fd, gr_read, gr_write); /* parks, never blocks the thread */
    gr_close(fd);
}

static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = gr_accept(lfd, NULL, NULL);
        if (fd == -ECANCELED || fd == -EBADF)
            return;
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE)
                gr_sleep(1000000);
            continue;
        }
        /* Closed only with gr_close: the netpoller may keep it registered between
         * waits (one epoll_ctl fewer per wait). */
        gr_io_adopt(fd);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (gr_spawn(serve_conn, (void *)(intptr_t)fd) < 0)
            gr_close(fd);
    }
}

static int listen_on(int port, int *bound)
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
    *bound = ntohs(a.sin_port);
    return fd;
}

/* ------------------------------------------------------------------ self-test */

static int test_port;
static atomic_int failures;

#define EXPECT(cond, ...)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "http_hello self-test: " __VA_ARGS__);                      \
            fputc('\n', stderr);                                                        \
            atomic_fetch_add(&failures, 1);                                             \
            goto out;                                                                   \
        }                                                                               \
    } while (0)

static int connect_test(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)test_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int rc = gr_connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc < 0) {
        gr_close(fd);
        return rc;
    }
    return fd;
}

/* Reads exactly n bytes (or fails). */
static int read_exact(int fd, char *p, size_t n)
{
    while (n > 0) {
        ptrdiff_t r = gr_read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends `req` in pieces of `chunk` bytes (0: at once), expects `count` responses. */
static int exchange(int fd, const char *req, size_t chunk, int count)
{
    size_t len = strlen(req);
    for (size_t off = 0; off < len;) {
        size_t n = chunk && chunk < len - off ? chunk : len - off;
        if (http_write_all(gr_write, fd, req + off, n) < 0)
            return -1;
        off += n;
        if (chunk)
            gr_sleep(2000000); /* let the server see a partial request */
    }
    char got[RESPONSE_LEN];
    for (int i = 0; i < count; i++) {
        if (read_exact(fd, got, RESPONSE_LEN) < 0)
            return -2;
        if (memcmp(got, RESPONSE, RESPONSE_LEN) != 0)
            return -3;
    }
    return 0;
}

static const char GET[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: selftest\r\n\r\n";

static void basic_checks(void *arg)
{
    (void)arg;
    int fd = connect_test();
    EXPECT(fd >= 0, "connect: %s", strerror(-fd));
    /* Keep-alive: several requests on one connection. */
    for (int i = 0; i < 10; i++)
        EXPECT(exchange(fd, GET, 0, 1) == 0, "keep-alive request %d", i);
    /* Pipelined: three requests in one write. */
    char three[3 * sizeof GET];
    snprintf(three, sizeof three, "%s%s%s", GET, GET, GET);
    EXPECT(exchange(fd, three, 0, 3) == 0, "3 pipelined requests");
    /* Split across writes, byte by byte through the header end. */
    EXPECT(exchange(fd, GET, 7, 1) == 0, "a request split into 7-byte writes");
    /* A request with a body (skipped), then another request. */
    EXPECT(exchange(fd, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 0, 1) == 0,
           "a POST with a body");
    EXPECT(exchange(fd, GET, 0, 1) == 0, "a request after a body");
    /* Connection: close -> response, then end of stream. */
    EXPECT(exchange(fd, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0, 1) == 0,
           "Connection: close");
    char c;
    EXPECT(gr_read(fd, &c, 1) == 0, "no end of stream after Connection: close");
    gr_close(fd);
    fd = -1;

    /* HTTP/1.0 without keep-alive closes too. */
    fd = connect_test();
    EXPECT(fd >= 0, "connect: %s", strerror(-fd));
    EXPECT(exchange(fd, "GET / HTTP/1.0\r\n\r\n", 0, 1) == 0, "HTTP/1.0");
    EXPECT(gr_read(fd, &c, 1) == 0, "no end of stream after an HTTP/1.0 request");
out:
    if (fd >= 0)
        gr_close(fd);
}

static void many_client(void *arg)
{
    (void)arg;
    int fd = connect_test();
    EXPECT(fd >= 0, "connect: %s", strerror(-fd));
    for (int i = 0; i < 20; i++)
        EXPECT(exchange(fd, GET, 0, 1) == 0, "request %d of a concurrent client", i);
out:
    if (fd >= 0)
        gr_close(fd);
}

static void selftest_main(void *arg)
{
    (void)arg;
    int lfd = listen_on(0, &test_port);
    gr_id acc = gr_spawn(accept_loop, (void *)(intptr_t)lfd);
    gr_id b = gr_spawn(basic_checks, NULL);
    gr_join(b);
    gr_id ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = gr_spawn(many_client, NULL);
    for (int i = 0; i < 100; i++)
        gr_join(ids[i]);
    gr_close(lfd);
    gr_join(acc);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0) {
        int rc = gr_main(selftest_main, NULL);
        if (rc != 0)
            die("gr_main: %s", gr_strerror(rc));
        if (gr_wait_all() != 0)
            die("goroutines left blocked");
        if (atomic_load(&failures) != 0) {
            fprintf(stderr, "http_hello: self-test FAILED (%d failures)\n", atomic_load(&failures));
            return 1;
        }
        printf("http_hello: keep-alive, pipelined, split, body, close, HTTP/1.0 and 100 x 20 "
               "concurrent requests answered correctly\n");
        puts("ok");
        return 0;
    }
    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535)
        die("usage: http_hello PORT | --selftest");
    int bound;
    int lfd = listen_on(atoi(argv[1]), &bound);
    printf("http_hello on 127.0.0.1:%d\n", bound);
    fflush(stdout);
    return gr_main(accept_loop, (void *)(intptr_t)lfd) == 0 ? 0 : 1;
}
