/*
 * The "httpd" workload's HTTP/1.1 framing (../shared/PEERS.md), shared by the two
 * servers that are compared: c_examples/http_hello.c (a goroutine per connection,
 * gr_read/gr_write) and bench/httpd_threads.c (a thread per connection, read/write).
 * One copy, so the benchmark compares the I/O models and not two parsers.
 *
 * http_serve_conn(fd, read, write) answers every request on fd with the same fixed
 * response until the peer closes, an error, "Connection: close" (or HTTP/1.0 without
 * keep-alive), or a header larger than 8 KiB. A request ends at an empty line; a
 * Content-Length body is skipped; pipelined requests are answered with one write.
 * The caller closes fd. `read` returns a byte count, 0 at end of stream or < 0;
 * `write` may write less than asked (it is looped) and returns < 0 on error.
 */
#ifndef HTTP_SERVE_H
#define HTTP_SERVE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 14\r\n"
                               "Content-Type: text/plain\r\n"
                               "\r\n"
                               "Hello, World!\n";
#define RESPONSE_LEN (sizeof RESPONSE - 1)
#define MAX_HEADER 8192
#define MAX_BATCH 32 /* pipelined responses per write */

typedef ptrdiff_t (*http_read_fn)(int fd, void *buf, size_t n);
typedef ptrdiff_t (*http_write_fn)(int fd, const void *buf, size_t n);

static int http_write_all(http_write_fn write_fn, int fd, const char *p, size_t n)
{
    while (n > 0) {
        ptrdiff_t w = write_fn(fd, p, n);
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Looks up a header (case-insensitive name) in [hdr, end); returns its value or NULL. */
static const char *header_value(const char *hdr, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *line = memchr(hdr, '\n', (size_t)(end - hdr)); /* skip the request line */
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

static int has_token(const char *v, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++)
        if (strncasecmp(v + i, tok, t) == 0)
            return 1;
    return 0;
}

static void http_serve_conn(int fd, http_read_fn read_fn, http_write_fn write_fn)
{
    char buf[MAX_HEADER];
    char out[MAX_BATCH * RESPONSE_LEN];
    size_t have = 0;
    size_t skip = 0; /* body bytes of the current request still to discard */
    for (;;) {
        ptrdiff_t n = read_fn(fd, buf + have, sizeof buf - have);
        if (n <= 0)
            return;
        have += (size_t)n;
        size_t pos = 0, nout = 0;
        int close_after = 0;
        for (;;) {
            if (skip > 0) {
                size_t k = have - pos < skip ? have - pos : skip;
                pos += k;
                skip -= k;
                if (skip > 0)
                    break;
            }
            char *start = buf + pos;
            char *end = memmem(start, have - pos, "\r\n\r\n", 4);
            if (!end)
                break;
            end += 4;
            size_t vlen;
            const char *v = header_value(start, end, "Content-Length", &vlen);
            if (v)
                skip = (size_t)strtoull(v, NULL, 10);
            int http10 = memmem(start, (size_t)(end - start), "HTTP/1.0\r\n", 10) != NULL;
            v = header_value(start, end, "Connection", &vlen);
            if (v ? has_token(v, vlen, "close") : http10)
                close_after = 1;
            if (http10 && v && has_token(v, vlen, "keep-alive"))
                close_after = 0;
            memcpy(out + nout, RESPONSE, RESPONSE_LEN);
            nout += RESPONSE_LEN;
            pos = (size_t)(end - buf);
            if (close_after || nout == sizeof out) {
                if (http_write_all(write_fn, fd, out, nout) < 0 || close_after)
                    return;
                nout = 0;
            }
        }
        if (nout > 0 && http_write_all(write_fn, fd, out, nout) < 0)
            return;
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        if (have == sizeof buf)
            return; /* a header larger than we accept */
    }
}

/* read(2) and write(2) retried after signals, for the servers that call them
 * directly: bench/httpd_threads.c (a thread per connection) and bench/httpd_hook.c
 * (a goroutine per connection under the libc hook layer). */
static inline ptrdiff_t http_read_blocking(int fd, void *buf, size_t n)
{
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static inline ptrdiff_t http_write_blocking(int fd, const void *buf, size_t n)
{
    ssize_t r;
    do
        r = write(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

/* The start of a bench server whose one argument is PORT (bench/httpd_threads.c,
 * bench/httpd_hook.c): checks the usage, ignores SIGPIPE, listens on 127.0.0.1:PORT
 * (backlog 4096) and says so on stdout. Returns the listening fd; exits on failure. */
static inline int http_listen_argv(int argc, char **argv, const char *name)
{
    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: %s PORT\n", name);
        exit(2);
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "%s: bind/listen: %s\n", name, strerror(errno));
        exit(1);
    }
    printf("%s on 127.0.0.1:%s\n", name, argv[1]);
    fflush(stdout);
    return lfd;
}

#endif
