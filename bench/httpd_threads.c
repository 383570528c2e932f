/*
 * The "httpd" workload (../../shared/PEERS.md) with one OS thread per connection
 * and blocking sockets: the baseline that c_examples/http_hello.c (one goroutine
 * per connection) is compared with. Same fixed response, same framing (a request
 * ends at an empty line, a Content-Length body is skipped, pipelined requests get
 * one write, "Connection: close" or HTTP/1.0 without keep-alive closes).
 *
 *   httpd_threads PORT     serve on 127.0.0.1:PORT until killed
 *
 * Build: gcc -O2 -pthread httpd_threads.c -o httpd_threads   (no libgoroutine)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
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
#define MAX_BATCH 32

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *header_value(const char *hdr, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *line = memchr(hdr, '\n', (size_t)(end - hdr));
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

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[MAX_HEADER];
    char out[MAX_BATCH * RESPONSE_LEN];
    size_t have = 0, skip = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
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
                if (write_all(fd, out, nout) < 0)
                    goto done;
                nout = 0;
                if (close_after)
                    goto done;
            }
        }
        if (nout > 0 && write_all(fd, out, nout) < 0)
            break;
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        if (have == sizeof buf)
            break;
    }
done:
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: httpd_threads PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
        perror("httpd_threads: bind/listen");
        return 1;
    }
    printf("httpd_threads on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* as a goroutine's default reservation */
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(1000);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t th;
        if (pthread_create(&th, &attr, serve_conn, (void *)(intptr_t)fd) != 0)
            close(fd);
    }
}
