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

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    http_serve_conn(fd, http_read_blocking, http_write_blocking);
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
    int lfd = http_listen_argv(argc, argv, "httpd_hook");
    return gr_main(accept_loop, (void *)(intptr_t)lfd) == 0 ? 0 : 1;
}
