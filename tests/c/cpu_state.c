/*
 * The errno value, MXCSR (SSE rounding, FTZ, DAZ) and the x87 control word
 * (rounding, precision) travel with the goroutine: 1,000 goroutines on 2 workers
 * each set their own values, yield 1,000 times (migrating between the workers;
 * every 64th time they park in gr_sleep instead, the other way a switch starts) and
 * check the registers and the results of a division after every switch. errno
 * takes a new value before each switch, so that a switch path that kept an old
 * one fails. A fresh
 * goroutine starts with the default state, not the state another goroutine left.
 *
 * errno is read and written through noipa functions: glibc declares
 * __errno_location() const, so inline code may keep errno's address (that of the
 * thread the goroutine ran on before) across gr_yield.
 */
#include "check.h"

#include <float.h>
#include <stdatomic.h>
#include <xmmintrin.h>

#define G 1000
#define YIELDS 1000

#define MXCSR_CONTROL 0xffc0u /* everything but the sticky exception flags */
#define MXCSR_RC 0x6000u
#define MXCSR_FTZ 0x8000u
#define MXCSR_DAZ 0x0040u
#define X87_RC 0x0c00u
#define X87_PC 0x0300u

__attribute__((noinline, noipa)) static void set_errno(int v)
{
    errno = v;
}

__attribute__((noinline, noipa)) static int get_errno(void)
{
    return errno;
}

static inline unsigned short get_x87cw(void)
{
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}

static inline void set_x87cw(unsigned short cw)
{
    __asm__ volatile("fldcw %0" : : "m"(cw));
}

struct results {
    double sse_div, sse_tiny;
    unsigned char x87_div[10];
};

static volatile double one = 1.0, three = 3.0, tiny = DBL_MIN;
static volatile long double lone = 1.0L, lthree = 3.0L;

__attribute__((noinline)) static void compute(struct results *r)
{
    memset(r, 0, sizeof *r);
    r->sse_div = one / three;
    r->sse_tiny = tiny / three; /* a denormal, or 0 with FTZ */
    long double q = lone / lthree;
    memcpy(r->x87_div, &q, 10);
}

static atomic_long migrations;
static atomic_int done;
static unsigned main_mxcsr;
static unsigned short main_x87cw;

static void worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    int my_errno = 1000 + i;
    unsigned mx = (_mm_getcsr() & ~(MXCSR_RC | MXCSR_FTZ | MXCSR_DAZ)) | ((unsigned)(i & 3) << 13) |
                  ((i & 4) ? MXCSR_FTZ : 0) | ((i & 8) ? MXCSR_DAZ : 0);
    static const unsigned short pcs[3] = { 0x0000, 0x0200, 0x0300 };
    unsigned short cw = (unsigned short)((get_x87cw() & ~(X87_RC | X87_PC)) |
                                         ((unsigned)((i >> 4) & 3) << 10) | pcs[i % 3]);
    _mm_setcsr(mx);
    set_x87cw(cw);
    set_errno(my_errno);

    struct results want, got;
    compute(&want);
    long tid = thread_id(), moves = 0;
    for (int y = 0; y < YIELDS; y++) {
        set_errno(my_errno + y * G);
        if (y % 64 == 63)
            CHECK_EQ(gr_sleep(1000), 0);
        else
            gr_yield();
        long t = thread_id();
        if (t != tid) {
            moves++;
            tid = t;
        }
        int e = get_errno();
        if (e != my_errno + y * G)
            FAIL("goroutine %d: errno %d after switch %d, expected %d", i, e, y, my_errno + y * G);
        unsigned m = _mm_getcsr() & MXCSR_CONTROL;
        if (m != (mx & MXCSR_CONTROL))
            FAIL("goroutine %d: MXCSR %#x after switch %d, expected %#x", i, m, y,
                 mx & MXCSR_CONTROL);
        unsigned short c = get_x87cw();
        if (c != cw)
            FAIL("goroutine %d: x87 control word %#x after switch %d, expected %#x", i, c, y, cw);
        compute(&got);
        if (memcmp(&got, &want, sizeof got) != 0)
            FAIL("goroutine %d: floating-point results changed after switch %d", i, y);
    }
    atomic_fetch_add(&migrations, moves);
    atomic_fetch_add(&done, 1);
}

static atomic_int fresh_ok;

static void fresh(void *arg)
{
    (void)arg;
    unsigned m = _mm_getcsr() & MXCSR_CONTROL;
    unsigned short c = get_x87cw();
    if (m != (main_mxcsr & MXCSR_CONTROL))
        FAIL("a fresh goroutine starts with MXCSR %#x, not the default %#x", m,
             main_mxcsr & MXCSR_CONTROL);
    if (c != main_x87cw)
        FAIL("a fresh goroutine starts with x87 control word %#x, not the default %#x", c,
             main_x87cw);
    atomic_fetch_add(&fresh_ok, 1);
}

int main(void)
{
    watchdog(60);
    main_mxcsr = _mm_getcsr();
    main_x87cw = get_x87cw();
    CHECK_EQ(gr_init(2), 2);

    int64_t t0 = now_ns();
    for (int i = 0; i < G; i++)
        SPAWN(worker, (void *)(intptr_t)i);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&done), G);
    printf("%d goroutines x %d switches kept errno, MXCSR and x87 CW; %ld migrations; %.0f ms\n",
           G, YIELDS, atomic_load(&migrations), (now_ns() - t0) / 1e6);

    /* The main thread's state is its own. */
    CHECK_EQ(_mm_getcsr() & MXCSR_CONTROL, main_mxcsr & MXCSR_CONTROL);
    CHECK_EQ(get_x87cw(), main_x87cw);

    /* Goroutines that start on workers where others left odd state. */
    for (int i = 0; i < 64; i++)
        SPAWN(fresh, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&fresh_ok), 64);
    puts("ok");
    return 0;
}
