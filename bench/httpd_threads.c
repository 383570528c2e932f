/*
 * The "httpd" workload (../../shared/PEERS.md) with one OS thread per connection
 * and blocking sockets: the baseline that c_examples/http_hello.c (one goroutine
 * per connection) is compared with. Same fixed response, same framing: both use
 * c_examples/http_serve.h, with read/write here and gr_read/gr_write there.
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

#include "../c_examples/http_serve.h" /* the framing http_hello.c uses too */

/* read(2) and write(2), retried after signals (the framing treats < 0 as the end). */
static ptrdiff_t read_retry(int fd, void *buf, size_t n)
{
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static ptrdiff_t write_retry(int fd, const void *buf, size_t n)
{
    ssize_t r;
    do
        r = write(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    http_serve_conn(fd, read_retry, write_retry);
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
