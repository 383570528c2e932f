/*
 * Structured cancellation reaches an unmodified library (issue 17): a goroutine bound
 * to a context that times out after 100 ms sends `BLPOP key 5` with hiredis (built
 * without any knowledge of goroutines) to the redis-server that tests/hook.rs started
 * (port in argv[1]). Under the hook layer the read hiredis blocks in fails with errno
 * ETIMEDOUT when the deadline passes, so redisCommand returns its own error
 * (REDIS_ERR_IO) within 110 ms of the context's creation, not after 5 s. Then
 * a cancel: a second client, cancelled by another goroutine 50 ms into the same
 * BLPOP, gets REDIS_ERR_IO with errno ECANCELED ("Operation canceled"). The
 * connection is unusable afterwards, as after any hiredis I/O error; a new one works.
 */
#include "hook_test.h"

#include <hiredis/hiredis.h>

#define MS 1000000LL

static int port;

struct client_run {
    int64_t t0;
    int64_t returned_at;
    int err;
    char errstr[128];
    int saved_errno;
};

/* errno through a call the compiler may not analyse: gcc keeps errno's (thread-local)
 * address across redisCommand, and the goroutine may come back on another thread. */
static __attribute__((noinline, noipa)) int errno_now(void)
{
    return errno;
}

static redisContext *connect_redis(void)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err)
        FAIL("redisConnect: %s", c ? c->errstr : "no memory");
    return c;
}

static void blpop(void *arg)
{
    struct client_run *r = arg;
    redisContext *c = connect_redis();
    redisReply *reply = redisCommand(c, "BLPOP key 5");
    r->saved_errno = errno_now();
    r->returned_at = now_ns();
    if (reply)
        FAIL("BLPOP returned a reply (type %d) instead of an error", reply->type);
    r->err = c->err;
    snprintf(r->errstr, sizeof r->errstr, "%s", c->errstr);
    redisFree(c);
}

static void canceller(void *arg)
{
    gr_sleep(50 * MS);
    CHECK_EQ(gr_ctx_cancel(arg), 0);
}

static void check_redis_still_works(void)
{
    redisContext *c = connect_redis();
    redisReply *reply = redisCommand(c, "PING");
    CHECK(reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0);
    freeReplyObject(reply);
    redisFree(c);
}

static void run(void *arg)
{
    (void)arg;
    /* The deadline. */
    struct client_run d = { 0 };
    d.t0 = now_ns();
    gr_ctx *ctx = gr_ctx_with_timeout(NULL, 100 * MS);
    CHECK(ctx);
    CHECK_EQ(gr_join(gr_spawn_ctx(ctx, blpop, &d)), 0);
    double ms = (d.returned_at - d.t0) / 1e6;
    printf("hiredis BLPOP key 5 under a 100 ms deadline: error %d (%s, errno %s) after %.1f ms\n",
           d.err, d.errstr, strerror(d.saved_errno), ms);
    CHECK_EQ(d.err, REDIS_ERR_IO);
    CHECK_EQ(d.saved_errno, ETIMEDOUT);
    CHECK(ms >= 100.0);
    if (ms >= 110.0)
        FAIL("BLPOP returned %.1f ms after the context was made (bound: 110 ms)", ms);
    CHECK_EQ(gr_ctx_err(ctx), -ETIMEDOUT);
    CHECK_EQ(gr_ctx_free(ctx), 0);

    /* A cancel by another goroutine. */
    struct client_run k = { 0 };
    ctx = gr_ctx_new(NULL);
    k.t0 = now_ns();
    gr_id id = gr_spawn_ctx(ctx, blpop, &k);
    SPAWN(canceller, ctx);
    CHECK_EQ(gr_join(id), 0);
    ms = (k.returned_at - k.t0) / 1e6;
    printf("hiredis BLPOP key 5 cancelled after 50 ms: error %d (%s) after %.1f ms\n", k.err,
           k.errstr, ms);
    CHECK_EQ(k.err, REDIS_ERR_IO);
    CHECK_EQ(k.saved_errno, ECANCELED);
    CHECK(ms >= 50.0 && ms < 1000.0);
    CHECK_EQ(gr_ctx_free(ctx), 0);
    check_redis_still_works();
}

int main(int argc, char **argv)
{
    watchdog(30);
    CHECK_EQ(argc, 2);
    port = atoi(argv[1]);
    CHECK_EQ(gr_main(run, NULL), 0);
    puts("ok");
    return 0;
}
