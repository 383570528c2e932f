/*
 * A goroutine parked in gr_read costs little memory: 400 goroutines, each parked in
 * gr_read on its own socketpair, add well under 24 KiB of RSS each (their stack's
 * pages in use and their descriptor). Guards against a stack frame on the I/O path
 * that commits a goroutine's lazily mapped stack: the netpoller's descriptor lookup
 * once built its 80 KB table chunk as a value, so every call probed (and committed)
 * 80 KB of the calling goroutine's stack. Then one byte to each pair wakes every
 * reader, which gets it.
 */
#include "check.h"

#include <stdatomic.h>
#include <sys/socket.h>

#define N 400
#define LIMIT_KIB 24

static int pairs[N][2];
static atomic_int entered, got_byte;

static void reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    char c;
    atomic_fetch_add(&entered, 1);
    if (gr_read(pairs[i][0], &c, 1) == 1 && c == (char)i)
        atomic_fetch_add(&got_byte, 1);
}

int main(void)
{
    watchdog(60);
    CHECK(gr_init(1) > 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]), 0);
    /* A first read on a plain thread: the netpoller's table and the runtime's own
     * first-use allocations are not the goroutines' cost. */
    char c;
    CHECK_EQ(gr_write(pairs[0][1], "x", 1), 1);
    CHECK_EQ(gr_read(pairs[0][0], &c, 1), 1);

    long rss0 = proc_status("VmRSS");
    gr_id ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = SPAWN(reader, (void *)(intptr_t)i);
    while (atomic_load(&entered) < N)
        sleep_ms(1);
    await_goroutine_waiting(ids[N - 1], "IO wait");
    sleep_ms(20);
    long rss = proc_status("VmRSS");
    double per = (double)(rss - rss0) / N;
    printf("%d goroutines parked in gr_read: %.1f KiB of RSS each\n", N, per);
    if (per > LIMIT_KIB)
        FAIL("a goroutine parked in gr_read costs %.1f KiB, more than %d KiB", per, LIMIT_KIB);

    for (int i = 0; i < N; i++) {
        char b = (char)i;
        CHECK_EQ(gr_write(pairs[i][1], &b, 1), 1);
    }
    for (int i = 0; i < N; i++)
        CHECK_EQ(gr_join(ids[i]), 0);
    CHECK_EQ(atomic_load(&got_byte), N);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(gr_close(pairs[i][0]), 0);
        CHECK_EQ(gr_close(pairs[i][1]), 0);
    }
    puts("ok");
    return 0;
}
