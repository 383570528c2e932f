/*
 * The "httpd" workload written as a thread-per-connection server would be, with
 * blocking accept, read and write, but a goroutine per connection, under the libc
 * hook layer (libgoroutine_hook.so linked in): the blocking calls park. Compared with
 * c_examples/http_hello.c (the same framing, c_examples/http_serve.h, through
 * gr_read/gr_write) by bench/run.py's workload httpd_hook: the goal is to serve
 * within 10% of it.
 *
 *   httpd_hook PORT     serve on 127.0.0.1:PORT until killed (GR_MAXPROCS processors)
 *
 * Build: gcc -O2 -pthread -I include httpd_hook.c -L target/release \
 *            -Wl,--no-as-needed -lgoroutine_hook -Wl,--as-needed -lgoroutine
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <goroutine.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../c_examples/http_serve.h" /* the framing http_hello.c uses too */

/* read(2) and write(2) as a blocking server calls them (the hook layer parks them). */
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

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    http_serve_conn(fd, read_retry, write_retry);
    close(fd);
}

static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg, one = 1;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(1000);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (gr_spawn(serve_conn, (void *)(intptr_t)fd) < 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: httpd_hook PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
        perror("httpd_hook: bind/listen");
        return 1;
    }
    printf("httpd_hook on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);
    return gr_main(accept_loop, (void *)(intptr_t)lfd) == 0 ? 0 : 1;
}
