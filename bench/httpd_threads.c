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

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    http_serve_conn(fd, http_read_blocking, http_write_blocking);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int lfd = http_listen_argv(argc, argv, "httpd_threads"), one = 1;
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
