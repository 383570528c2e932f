/*
 * A TCP server that answers every request under a 200 ms deadline, and stops work
 * whose client has gone: structured cancellation with gr_ctx.
 *
 * The protocol is one line each way, one request per connection:
 *   "WORK <ms>\n"  asks for a job that takes <ms> milliseconds of a slow backend
 *                  (gr_sleep stands in for it here: a database or HTTP call through
 *                  the hook layer is cancelled the same way, see docs/guide.md);
 *   answers        "200 done in <ms> ms\n", "504 deadline exceeded\n" (the 200 ms
 *                  ran out), "408 no request\n" (nothing read in time), or
 *                  "400 bad request\n".
 * Each connection's goroutine is bound to its own context, gr_ctx_with_timeout(server,
 * 200 ms): every parking call in it (reading the request, the backend) returns
 * -ETIMEDOUT once the 200 ms have passed, with no timeout argument anywhere. A second
 * goroutine bound to the same context watches the socket while the job runs: if the
 * client hangs up it cancels the context, and the job stops at once (-ECANCELED).
 * Cancelling the server's root context stops every request in flight.
 *
 *   deadline_server [PORT]       serve on 127.0.0.1:PORT (default 7008) until killed
 *   deadline_server --selftest   serve on a free port and check, from client goroutines
 *                                in the same process: fast jobs are answered, slow ones
 *                                get 504 after 200 ms (not later than 300 ms), a silent
 *                                client gets 408, a client that hangs up mid-job has its
 *                                job cancelled, 200 mixed clients at once all get the
 *                                right answer, and shutdown ends jobs in flight; prints
 *                                "ok" last when all is well (exit status 0)
 *
 * Build: gcc -O2 -pthread deadline_server.c $(pkg-config --cflags --libs goroutine)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <goroutine.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define DEADLINE (200 * MS)

#define die(...)                                                                        \
    do {                                                                                \
        fprintf(stderr, "deadline_server: " __VA_ARGS__);                               \
        fputc('\n', stderr);                                                            \
        exit(1);                                                                        \
    } while (0)

/* The server's root context: every request's context is its child. */
static gr_ctx *server_ctx;
/* The connections in progress (the accept loop adds, each handler is done). */
static gr_wg *handlers;
/* What happened to the jobs, for the self-test. */
static atomic_long jobs_done, jobs_timed_out, jobs_cancelled;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The slow backend: a job of `ms` milliseconds. Returns 0, or the context's error
 * (-ETIMEDOUT, -ECANCELED) when it ends first. */
static int backend(long ms)
{
    return gr_sleep(ms * MS);
}

/* Reads one line into buf (without the newline). Returns its length, or a negative
 * errno value: -ETIMEDOUT when the deadline passes first. */
static int read_line(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len < size - 1) {
        ptrdiff_t n = gr_read(fd, buf + len, 1);
        if (n < 0)
            return (int)n;
        if (n == 0 || buf[len] == '\n')
            break;
        len++;
    }
    buf[len] = '\0';
    return (int)len;
}

/* Bound to the request's context while its job runs: cancels it when the client
 * hangs up (its socket turns readable with nothing to read: the end of the stream).
 * Ends when the handler cancels the context after the job. */
static void watch_client(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    if (gr_block_io(fd, GR_READ, -1) >= 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
        gr_ctx_cancel(gr_ctx_current());
}

static void reply(int fd, const char *msg)
{
    /* A short reply to a fresh connection fits its socket buffer: gr_write does not
     * park, so it goes out even after the deadline (a cancelled context ends only
     * calls that would wait). */
    gr_write(fd, msg, strlen(msg));
}

/* One connection, bound to its own 200 ms context (gr_spawn_ctx below). */
static void handle(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char line[64], answer[64];
    long ms;
    int rc = read_line(fd, line, sizeof line);
    if (rc < 0) {
        reply(fd, "408 no request\n");
    } else if (sscanf(line, "WORK %ld", &ms) != 1 || ms < 0) {
        reply(fd, "400 bad request\n");
    } else {
        gr_id watcher = gr_spawn(watch_client, (void *)(intptr_t)fd); /* same context */
        int64_t t0 = now_ns();
        rc = backend(ms);
        if (rc == 0) {
            atomic_fetch_add(&jobs_done, 1);
            snprintf(answer, sizeof answer, "200 done in %lld ms\n",
                     (long long)((now_ns() - t0) / MS));
            reply(fd, answer);
        } else if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&jobs_timed_out, 1);
            reply(fd, "504 deadline exceeded\n");
        } else {
            atomic_fetch_add(&jobs_cancelled, 1); /* the client left: nobody to tell */
        }
        /* The request is over: stop the watcher (its gr_block_io returns -ECANCELED). */
        gr_ctx_cancel(gr_ctx_current());
        if (watcher > 0)
            gr_join(watcher);
    }
    gr_close(fd);
    gr_wg_done(handlers);
}

/* Accepts until the listening socket is gr_close'd. */
static void accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = gr_accept(lfd, NULL, NULL);
        if (fd == -ECANCELED || fd == -EBADF)
            return;
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE)
                gr_sleep(MS); /* out of fds: back off a little */
            continue;
        }
        gr_ctx *ctx = gr_ctx_with_timeout(server_ctx, DEADLINE);
        gr_id id = -ENOMEM;
        gr_wg_add(handlers, 1);
        if (ctx != NULL)
            id = gr_spawn_ctx(ctx, handle, (void *)(intptr_t)fd);
        gr_ctx_free(ctx); /* the handler holds its own reference */
        if (id < 0) {
            gr_wg_done(handlers);
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
    if (listen(fd, 1024) < 0)
        die("listen: %s", strerror(errno));
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *bound_port = ntohs(a.sin_port);
    return fd;
}

/* Makes the root context and starts the accept loop; returns its goroutine. */
static gr_id start_server(int lfd)
{
    server_ctx = gr_ctx_new(NULL);
    handlers = gr_wg_new();
    if (!server_ctx || !handlers)
        die("out of memory");
    gr_id acceptor = gr_spawn(accept_loop, (void *)(intptr_t)lfd);
    if (acceptor < 0)
        die("spawn: %s", gr_strerror((int)acceptor));
    return acceptor;
}

static void serve_forever(void *arg)
{
    gr_join(start_server((int)(intptr_t)arg));
}

/* ------------------------------------------------------------------ self-test */

static int test_port;
static atomic_int failures;

#define EXPECT(cond, ...)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "deadline_server: self-test: " __VA_ARGS__);                \
            fputc('\n', stderr);                                                        \
            atomic_fetch_add(&failures, 1);                                             \
        }                                                                               \
    } while (0)

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)test_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int rc = gr_connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc != 0)
        die("connect: %s", gr_strerror(rc));
    return fd;
}

/* Sends `request` (NULL: nothing), reads the answer line into `answer`; returns the
 * milliseconds from the connect to the answer (or to the end of the stream). */
static double ask(const char *request, char *answer, size_t size)
{
    int64_t t0 = now_ns();
    int fd = dial();
    if (request)
        gr_write(fd, request, strlen(request));
    int n = read_line(fd, answer, size);
    if (n < 0)
        snprintf(answer, size, "(read: %s)", gr_strerror(n));
    gr_close(fd);
    return (double)(now_ns() - t0) / MS;
}

static void expect_answer(const char *request, const char *want, double min_ms, double max_ms)
{
    char got[64];
    double ms = ask(request, got, sizeof got);
    EXPECT(strncmp(got, want, strlen(want)) == 0, "%s: answered \"%s\", expected \"%s...\"",
           request ? request : "(silence)", got, want);
    EXPECT(ms >= min_ms && ms <= max_ms, "%s: answered after %.1f ms, expected %.0f-%.0f ms",
           request ? request : "(silence)", ms, min_ms, max_ms);
}

static void mixed_client(void *arg)
{
    long i = (long)(intptr_t)arg;
    if (i % 2 == 0)
        expect_answer("WORK 20\n", "200 done", 20, 190); /* well inside the deadline */
    else
        expect_answer("WORK 2000\n", "504 deadline exceeded", 200, 1000);
}

static void selftest_main(void *arg)
{
    (void)arg;
    int lfd = listen_on(0, &test_port);
    gr_id acceptor = start_server(lfd);

    /* A fast job is answered; a slow one is cut at the deadline, not before; a client
     * that sends nothing is told so at the deadline; a malformed request at once. The
     * upper bounds are sanity bounds for a loaded machine: 100 ms over. */
    expect_answer("WORK 10\n", "200 done", 10, 110);
    expect_answer("WORK 5000\n", "504 deadline exceeded", 200, 300);
    expect_answer(NULL, "408 no request", 200, 300);
    expect_answer("HELLO\n", "400 bad request", 0, 100);

    /* A client that hangs up 50 ms into a 5 s job: the job is cancelled at once. */
    long cancelled = atomic_load(&jobs_cancelled);
    int fd = dial();
    gr_write(fd, "WORK 5000\n", 10);
    gr_sleep(50 * MS);
    gr_close(fd);
    int64_t t0 = now_ns();
    while (atomic_load(&jobs_cancelled) == cancelled && now_ns() - t0 < 1000 * MS)
        gr_sleep(MS);
    double ms = (double)(now_ns() - t0) / MS;
    EXPECT(atomic_load(&jobs_cancelled) == cancelled + 1,
           "the job of a client that left was not cancelled within 1 s");
    printf("a client left 50 ms into a 5 s job: cancelled %.1f ms after the hang-up\n", ms);

    /* 200 clients at once, half with jobs that fit the deadline and half without. */
    enum { CLIENTS = 200 };
    gr_id ids[CLIENTS];
    t0 = now_ns();
    for (long i = 0; i < CLIENTS; i++)
        ids[i] = gr_spawn(mixed_client, (void *)(intptr_t)i);
    for (int i = 0; i < CLIENTS; i++)
        gr_join(ids[i]);
    printf("%d clients at once (half 20 ms jobs, half 2 s jobs): all answered in %.1f ms\n",
           CLIENTS, (double)(now_ns() - t0) / MS);

    /* Shutdown: cancelling the root ends a 5 s job in flight at once. */
    fd = dial();
    gr_write(fd, "WORK 5000\n", 10);
    gr_sleep(20 * MS);
    t0 = now_ns();
    gr_ctx_cancel(server_ctx);
    gr_close(lfd);
    gr_join(acceptor);
    gr_wg_wait(handlers);
    ms = (double)(now_ns() - t0) / MS;
    EXPECT(ms < 100, "shutdown took %.1f ms with a 5 s job in flight", ms);
    gr_close(fd);
    printf("jobs: %ld done, %ld timed out, %ld cancelled; shutdown with a job in flight: "
           "%.1f ms\n",
           atomic_load(&jobs_done), atomic_load(&jobs_timed_out), atomic_load(&jobs_cancelled),
           ms);
    EXPECT(atomic_load(&jobs_done) == 1 + CLIENTS / 2, "%ld jobs done", atomic_load(&jobs_done));
    EXPECT(atomic_load(&jobs_timed_out) == 1 + CLIENTS / 2, "%ld jobs timed out",
           atomic_load(&jobs_timed_out));
    gr_wg_free(handlers);
    gr_ctx_free(server_ctx);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0) {
        int rc = gr_main(selftest_main, NULL);
        if (rc != 0)
            die("gr_main: %s", gr_strerror(rc));
        if (atomic_load(&failures) != 0)
            return 1;
        puts("ok");
        return 0;
    }
    int port = argc > 1 ? atoi(argv[1]) : 7008;
    if (port <= 0 || port > 65535)
        die("usage: deadline_server [PORT] | --selftest");
    int bound;
    int lfd = listen_on(port, &bound);
    printf("deadline server on 127.0.0.1:%d (try: echo 'WORK 100' | nc 127.0.0.1 %d)\n", bound,
           bound);
    fflush(stdout);
    return gr_main(serve_forever, (void *)(intptr_t)lfd) == 0 ? 0 : 1;
}
