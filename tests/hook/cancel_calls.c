/*
 * The hook layer's mapping of a goroutine's cancelled context (issue 17): each
 * hooked call that would wait fails at once with errno ECANCELED (ETIMEDOUT when a
 * deadline passed), as libc reports any other error, whether the goroutine was
 * parked in it or called it after the cancel:
 *   read and recv on a socket with nothing to read, write on a full socket, accept,
 *   poll, select, epoll_wait: -1 and errno;
 *   usleep and nanosleep: -1 and errno (nanosleep's `rem` holds the time not slept),
 *   clock_nanosleep: the error number, sleep: the seconds not slept (errno set).
 * A call that need not wait (a read with data ready) is unaffected, and so is the
 * same call on a goroutine without a context (a closed fd still gives EBADF).
 */
#include "hook_test.h"

#include <sys/epoll.h>
#include <sys/select.h>

#define MS 1000000LL

enum call { READ, RECV, WRITE, ACCEPT, POLL, SELECT, EPOLL, USLEEP, NANOSLEEP, CLOCK_NANOSLEEP,
            SLEEP, NCALLS };
static const char *names[NCALLS] = { "read", "recv", "write", "accept", "poll", "select",
                                     "epoll_wait", "usleep", "nanosleep", "clock_nanosleep",
                                     "sleep" };

/* errno through calls the compiler may not inline or analyse: gcc keeps errno's
 * (thread-local) address across the hooked call, and the goroutine may come back on
 * another thread (docs/guide.md, "errno and thread-locals"). */
static __attribute__((noinline, noipa)) int errno_now(void)
{
    return errno;
}

static __attribute__((noinline, noipa)) void errno_set(int e)
{
    errno = e;
}

struct job {
    enum call call;
    int fd;     /* the socket to wait on (the listener for accept) */
    int rc;
    int err;
    struct timespec rem;
    int64_t returned_at;
};

static void do_call(void *arg)
{
    struct job *j = arg;
    char buf[64];
    errno_set(0);
    switch (j->call) {
    case READ:
        j->rc = (int)read(j->fd, buf, sizeof buf);
        break;
    case RECV:
        j->rc = (int)recv(j->fd, buf, sizeof buf, 0);
        break;
    case WRITE: {
        static char big[1 << 20];
        j->rc = (int)write(j->fd, big, sizeof big);
        break;
    }
    case ACCEPT:
        j->rc = accept(j->fd, NULL, NULL);
        break;
    case POLL: {
        struct pollfd p = { .fd = j->fd, .events = POLLIN };
        j->rc = poll(&p, 1, 10000);
        break;
    }
    case SELECT: {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(j->fd, &rd);
        struct timeval tv = { 10, 0 };
        j->rc = select(j->fd + 1, &rd, NULL, NULL, &tv);
        break;
    }
    case EPOLL: {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = j->fd };
        CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, j->fd, &ev), 0);
        j->rc = epoll_wait(ep, &ev, 1, 10000);
        j->err = errno_now();
        close(ep);
        errno_set(j->err);
        break;
    }
    case USLEEP:
        j->rc = usleep(10000000);
        break;
    case NANOSLEEP: {
        struct timespec ts = { 10, 0 };
        j->rc = nanosleep(&ts, &j->rem);
        break;
    }
    case CLOCK_NANOSLEEP: {
        struct timespec ts = { 10, 0 };
        j->rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &j->rem);
        break;
    }
    case SLEEP:
        j->rc = (int)sleep(10);
        break;
    default:
        break;
    }
    j->err = errno_now();
    j->returned_at = now_ns();
}

/* What each call must report for a context error e (ECANCELED or ETIMEDOUT). */
static void check_result(struct job *j, int e, const char *how)
{
    switch (j->call) {
    case CLOCK_NANOSLEEP:
        if (j->rc != e)
            FAIL("%s (%s): returned %d, expected %d", names[j->call], how, j->rc, e);
        break;
    case SLEEP:
        if (j->rc < 1 || j->rc > 10 || j->err != e)
            FAIL("%s (%s): returned %d errno %d, expected 1..10 and %d", names[j->call], how,
                 j->rc, j->err, e);
        break;
    default:
        if (j->rc != -1 || j->err != e)
            FAIL("%s (%s): returned %d errno %s, expected -1 and %s", names[j->call], how, j->rc,
                 strerror(j->err), strerror(e));
    }
    if ((j->call == NANOSLEEP || j->call == CLOCK_NANOSLEEP) &&
        (j->rem.tv_sec < 9 || j->rem.tv_sec > 10))
        FAIL("%s (%s): rem %lld s, expected about 10 s not slept", names[j->call], how,
             (long long)j->rem.tv_sec);
}

struct fixture {
    int pair[2];
    int listener;
};

static void setup(struct fixture *f, struct job *j)
{
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, f->pair), 0);
    int port;
    f->listener = listen_loopback(&port, 8);
    j->fd = j->call == ACCEPT ? f->listener : f->pair[0];
    if (j->call == WRITE) {
        /* Full: the write waits at once (a write that had sent part of its bytes
         * would return that count, as libc's does when interrupted). */
        static char junk[65536];
        while (send(f->pair[0], junk, sizeof junk, MSG_DONTWAIT) > 0) {
        }
        while (send(f->pair[0], junk, 1, MSG_DONTWAIT) > 0) {
        }
    }
}

static void teardown(struct fixture *f)
{
    close(f->pair[0]);
    close(f->pair[1]);
    close(f->listener);
}

static void run(void *arg)
{
    (void)arg;
    for (int c = 0; c < NCALLS; c++) {
        struct fixture f;
        /* Parked, then cancelled. */
        struct job j = { .call = c };
        setup(&f, &j);
        gr_ctx *ctx = gr_ctx_new(NULL);
        gr_id id = gr_spawn_ctx(ctx, do_call, &j);
        gr_sleep(20 * MS); /* parked by now */
        int64_t t0 = now_ns();
        CHECK_EQ(gr_ctx_cancel(ctx), 0);
        CHECK_EQ(gr_join(id), 0);
        check_result(&j, ECANCELED, "parked, then cancelled");
        if (j.returned_at - t0 > 50 * MS)
            FAIL("%s returned %.1f ms after the cancel", names[c], (j.returned_at - t0) / 1e6);
        CHECK_EQ(gr_ctx_free(ctx), 0);
        teardown(&f);

        /* A deadline. */
        struct job d = { .call = c };
        setup(&f, &d);
        int64_t d0 = now_ns();
        ctx = gr_ctx_with_timeout(NULL, 30 * MS);
        CHECK_EQ(gr_join(gr_spawn_ctx(ctx, do_call, &d)), 0);
        check_result(&d, ETIMEDOUT, "deadline");
        CHECK(d.returned_at - d0 >= 30 * MS);
        CHECK_EQ(gr_ctx_free(ctx), 0);
        teardown(&f);

        /* Called after the cancel: fails at once. */
        struct job a = { .call = c };
        setup(&f, &a);
        ctx = gr_ctx_new(NULL);
        CHECK_EQ(gr_ctx_cancel(ctx), 0);
        int64_t a0 = now_ns();
        CHECK_EQ(gr_join(gr_spawn_ctx(ctx, do_call, &a)), 0);
        check_result(&a, ECANCELED, "already cancelled");
        CHECK(a.returned_at - a0 < 50 * MS);
        CHECK_EQ(gr_ctx_free(ctx), 0);
        teardown(&f);
    }

    /* What need not wait is unaffected; without a context, errors are libc's. */
    struct fixture f;
    struct job r = { .call = READ };
    setup(&f, &r);
    CHECK_EQ(write(f.pair[1], "x", 1), 1);
    gr_ctx *ctx = gr_ctx_new(NULL);
    CHECK_EQ(gr_ctx_cancel(ctx), 0);
    CHECK_EQ(gr_join(gr_spawn_ctx(ctx, do_call, &r)), 0);
    CHECK_EQ(r.rc, 1);
    CHECK_EQ(gr_ctx_free(ctx), 0);
    teardown(&f);
    char c;
    errno = 0;
    CHECK_EQ(read(f.pair[0], &c, 1), -1); /* closed above: EBADF, no context here */
    CHECK_EQ(errno, EBADF);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_main(run, NULL), 0);
    puts("ok");
    return 0;
}
