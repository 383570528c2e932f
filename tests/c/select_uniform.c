/*
 * gr_select chooses uniformly where several cases name one channel (issue 15, after
 * Go's TestPseudoRandomSend), on one processor so that each round's order is known:
 * - parked sends: a select with two send cases (values 0 and 1) on one unbuffered
 *   channel parks before its receiver comes (the receiver yields first, and checks
 *   that the selecting goroutine is inside gr_select, so parked); which of the two
 *   queued cases the receiver completes must be uniform: each value > 35% of ROUNDS;
 * - parked receives: two receive cases on one unbuffered channel, the sender comes
 *   later: each case index fires > 35% of the rounds;
 * - ready sends: the same two send cases on a channel with a free buffer slot (both
 *   ready at once): each value > 35%.
 * With a fixed order (the first case queued first) one value would take every round.
 * 35% of 2,000 rounds is 6.7 standard deviations below a fair coin's mean.
 */
#include "check.h"

#include <stdatomic.h>

enum { ROUNDS = 2000 };

static gr_chan *ch;
static atomic_int in_select;
static long got[ROUNDS];

static void receiver(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        gr_yield(); /* the selecting goroutine runs on into gr_select and parks */
        if (!atomic_load(&in_select))
            FAIL("round %d: the select had not parked before its receiver came", i);
        CHECK_EQ(gr_chan_recv(ch, &got[i]), 0);
    }
}

static void sender(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        gr_yield();
        if (!atomic_load(&in_select))
            FAIL("round %d: the select had not parked before its sender came", i);
        long v = i;
        CHECK_EQ(gr_chan_send(ch, &v), 0);
    }
}

static void check_fair(const char *what, int n0, int n1)
{
    printf("%s: %d and %d of %d rounds\n", what, n0, n1, ROUNDS);
    CHECK_EQ(n0 + n1, ROUNDS);
    if (n0 * 100 <= ROUNDS * 35 || n1 * 100 <= ROUNDS * 35)
        FAIL("%s: not uniform: %d and %d of %d rounds", what, n0, n1, ROUNDS);
}

/* Two send cases (0 and 1) on one channel; `wait` spawns a receiver that comes
 * only once the select has parked. */
static void sends(size_t cap, int wait, const char *what)
{
    ch = gr_chan_new(sizeof(long), cap);
    CHECK(ch);
    gr_id r = 0;
    if (wait)
        r = SPAWN(receiver, NULL);
    long zero = 0, one = 1;
    for (int i = 0; i < ROUNDS; i++) {
        gr_case k[2] = { { ch, GR_SEND, &zero, 0 }, { ch, GR_SEND, &one, 0 } };
        atomic_store(&in_select, 1);
        int rc = gr_select(k, 2, -1);
        atomic_store(&in_select, 0);
        CHECK(rc == 0 || rc == 1);
        CHECK_EQ(k[rc].closed, 0);
        if (!wait)
            CHECK_EQ(gr_chan_recv(ch, &got[i]), 0);
        CHECK_EQ(got[i], rc); /* the value of the case that fired arrived */
    }
    if (wait)
        CHECK_EQ(gr_join(r), 0);
    int n1 = 0;
    for (int i = 0; i < ROUNDS; i++)
        n1 += (int)got[i];
    check_fair(what, ROUNDS - n1, n1);
    CHECK_EQ(gr_chan_free(ch), 0);
}

/* Two receive cases on one unbuffered channel, parked before the sender comes. */
static void receives(void)
{
    ch = gr_chan_new(sizeof(long), 0);
    CHECK(ch);
    gr_id s = SPAWN(sender, NULL);
    int n[2] = { 0, 0 };
    for (int i = 0; i < ROUNDS; i++) {
        long a = -1, b = -1;
        gr_case k[2] = { { ch, GR_RECV, &a, 0 }, { ch, GR_RECV, &b, 0 } };
        atomic_store(&in_select, 1);
        int rc = gr_select(k, 2, -1);
        atomic_store(&in_select, 0);
        CHECK(rc == 0 || rc == 1);
        CHECK_EQ(rc ? b : a, i);
        CHECK_EQ(rc ? a : b, -1); /* the other case received nothing */
        n[rc]++;
    }
    CHECK_EQ(gr_join(s), 0);
    check_fair("parked receive cases, the sender later", n[0], n[1]);
    CHECK_EQ(gr_chan_free(ch), 0);
}

static void root(void *arg)
{
    (void)arg;
    sends(0, 1, "parked send cases, the receiver later");
    receives();
    sends(1, 0, "ready send cases (a free buffer slot)");
}

int main(void)
{
    watchdog(30);
    CHECK_EQ(gr_init(1), 1);
    CHECK_EQ(gr_main(root, NULL), 0);
    puts("ok");
    return 0;
}
