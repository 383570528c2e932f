/*
 * gr_chan_free right after a transfer with a parked select (reliability catalogue
 * entries 11 and 13; docs: "Safe as soon as your own last call on it has returned").
 * A goroutine parks in gr_select; the main thread completes the select's case with
 * a send, a receive or a close, and frees the channel at once: the free must return
 * 0, and the woken select must never touch the freed channel again. The freed
 * channel's memory is handed straight to a new channel, which must still work
 * (a stale touch would lock or unlink on it). Under `make valgrind` memcheck also
 * reports any access to the freed channel (this found one: the woken select used to
 * lock every channel again to unlink its sudogs, the fired one included).
 *
 * Shapes, 200 rounds each:
 *   1. one receive case; the main thread sends;
 *   2. a receive case on c and one on d; the main thread sends on c, frees c; d is
 *      freed after the select returned;
 *   3. the same channel twice (a receive and a send case on unbuffered c); the main
 *      thread sends: the receive case fires and the free must not see the send case
 *      still queued (-EBUSY);
 *   4. one send case; the main thread receives;
 *   5. one receive case; the main thread closes (its last call) and frees.
 */
#include "check.h"

#define ROUNDS 200

struct sel {
    gr_chan *c, *d;
    int shape;
    long value;
    int rc, closed;
};

static void selector(void *arg)
{
    struct sel *s = arg;
    long out = 77;
    gr_case cases[2];
    size_t n = 1;
    cases[0] = (gr_case){ s->c, GR_RECV, &s->value, 0 };
    if (s->shape == 2) {
        cases[1] = (gr_case){ s->d, GR_RECV, &s->value, 0 };
        n = 2;
    } else if (s->shape == 3) {
        cases[1] = (gr_case){ s->c, GR_SEND, &out, 0 };
        n = 2;
    } else if (s->shape == 4) {
        cases[0] = (gr_case){ s->c, GR_SEND, &out, 0 };
    }
    s->rc = gr_select(cases, n, -1);
    s->closed = s->rc >= 0 ? cases[s->rc].closed : -1;
}

/* The transfer happens once the selector's case on c is queued: a non-blocking
   operation from this side succeeds only when it pairs with a parked party (shapes
   1-4); for close, gr_dump must show the selector waiting in its select (shape 5). */
static void run_shape(int shape)
{
    for (int r = 0; r < ROUNDS; r++) {
        struct sel s = { gr_chan_new(sizeof(long), 0), NULL, shape, 0, -100, -100 };
        CHECK(s.c != NULL);
        if (shape == 2)
            s.d = gr_chan_new(sizeof(long), 0);
        gr_id id = SPAWN(selector, &s);
        long v = 1000 + r;
        int rc;
        if (shape == 4) {
            while ((rc = gr_chan_try_recv(s.c, &v)) == -EAGAIN)
                sleep_ms(0);
            CHECK_EQ(rc, 0);
            CHECK_EQ(v, 77);
        } else if (shape == 5) {
            await_goroutine_waiting(id, "select");
            CHECK_EQ(gr_chan_close(s.c), 0);
        } else {
            while ((rc = gr_chan_try_send(s.c, &v)) == -EAGAIN)
                sleep_ms(0);
            CHECK_EQ(rc, 0);
        }
        /* Our last call on c has returned: free it at once. */
        rc = gr_chan_free(s.c);
        if (rc != 0)
            FAIL("shape %d round %d: gr_chan_free right after the transfer = %d (%s)", shape, r,
                 rc, gr_strerror(rc));
        /* Reuse the memory at once: a stale touch by the select would show here. */
        gr_chan *reuse = gr_chan_new(sizeof(long), 0);
        CHECK(reuse != NULL);
        CHECK_EQ(gr_chan_try_send(reuse, &v), -EAGAIN);
        CHECK_EQ(gr_join(id), 0);
        CHECK_EQ(gr_chan_free(reuse), 0);
        switch (shape) {
        case 1:
        case 2:
        case 3:
            CHECK_EQ(s.rc, 0);
            CHECK_EQ(s.closed, 0);
            CHECK_EQ(s.value, 1000 + r);
            break;
        case 4:
            CHECK_EQ(s.rc, 0);
            CHECK_EQ(s.closed, 0);
            break;
        case 5:
            CHECK_EQ(s.rc, 0);
            CHECK_EQ(s.closed, 1);
            break;
        }
        if (s.d)
            CHECK_EQ(gr_chan_free(s.d), 0);
    }
    printf("shape %d: %d rounds, the channel freed right after the select's transfer\n", shape,
           ROUNDS);
}

int main(void)
{
    watchdog(60);
    CHECK(gr_init(2) == 2);
    for (int shape = 1; shape <= 5; shape++)
        run_shape(shape);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
