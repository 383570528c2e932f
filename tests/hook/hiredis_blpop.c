/*
 * hiredis, unchanged, on goroutines: 500 goroutines on 2 processors each connect to
 * the redis-server that tests/hook.rs started (port in argv[1]) and send
 * `BLPOP key 1`, which the server answers with nil after a second. Under the hook
 * layer they all wait at once: about 1 s, and at most 8 threads more than before
 * (without it: 5.97 s, threads 2 -> 182).
 */
#include "hook_test.h"

#include <hiredis/hiredis.h>

#define CLIENTS 500

static int port;
static atomic_int nils;

static void client(void *arg)
{
    (void)arg;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err)
        FAIL("redisConnect: %s", c ? c->errstr : "no memory");
    redisReply *r = redisCommand(c, "BLPOP key 1");
    if (!r)
        FAIL("BLPOP: %s", c->errstr);
    CHECK(r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && r->elements == 0));
    atomic_fetch_add(&nils, 1);
    freeReplyObject(r);
    redisFree(c);
}

int main(int argc, char **argv)
{
    watchdog(60);
    CHECK_EQ(argc, 2);
    port = atoi(argv[1]);
    CHECK_EQ(gr_init(2), 2);
    struct workload w = run_workload(NULL, CLIENTS, client);
    printf("hiredis: %d x BLPOP key 1, 2 procs: %.3f s, threads %ld -> %ld (+%ld)\n", CLIENTS,
           w.seconds, w.before, w.peak, w.added);
    CHECK_EQ(atomic_load(&nils), CLIENTS);
    CHECK(w.seconds >= 1.0 && w.seconds < 2.0);
    CHECK(w.added <= 8);
    puts("ok");
    return 0;
}
