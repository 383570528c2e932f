/*
 * Signal handlers and signal masks next to running goroutines (reliability catalogue
 * entries 24 and 25). Owns the proof of the two rules docs/guide.md states under
 * "Signals":
 *
 * 1. Handlers may use a lot of stack (entry 24). Every worker thread has a 64 KiB
 *    alternate signal stack, so a handler installed with SA_ONSTACK runs there, never
 *    on a goroutine's stack, and may use up to 32 KiB of it. A handler without
 *    SA_ONSTACK runs on whatever stack the thread is on (usually a goroutine's) and
 *    takes its room from it. A plain thread sends SIGUSR1 (SA_ONSTACK, 32 KiB of
 *    locals) and SIGUSR2 (no SA_ONSTACK, 12 KiB of locals) with tgkill to the worker
 *    threads, up to 2,000 times a second (at least 1 s and 300 of each kind, at most
 *    5 s), while goroutines on default and on minimum-size (32 KiB) stacks compute,
 *    yield, sleep and pass values through a channel. Checked: every SIGUSR1 handler
 *    on a worker ran on the alternate stack; every handler found its own locals
 *    intact; every goroutine's results are exact; at least 100 signals of each kind
 *    were handled.
 *
 * 2. The signal mask belongs to the OS thread, not to the goroutine (entry 25). The
 *    runtime does not save or restore masks at a switch (a system call each time).
 *    A goroutine that blocks a signal and then migrates runs on a thread where the
 *    signal is not blocked, and the thread it left keeps the signal blocked (seen in
 *    /proc/self/task/TID/status). Between gr_lock_thread and gr_unlock_thread the
 *    mask stays as set across 200 yields, and unblocking it before unlocking leaves
 *    the thread as it was: the pattern the guide recommends.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS 1000000LL
#define BIG_ONSTACK (32 * 1024)
#define BIG_PLAIN (12 * 1024)
#define MAX_WORKERS 64

static atomic_long workers[MAX_WORKERS]; /* tids of threads goroutines ran on */
static atomic_int stop;
static atomic_long usr1_handled, usr1_on_alt, usr1_on_worker, usr2_handled, handler_bad;

static int is_worker(long tid)
{
    for (int i = 0; i < MAX_WORKERS; i++)
        if (atomic_load(&workers[i]) == tid)
            return 1;
    return 0;
}

static void note_worker(void)
{
    long tid = thread_id();
    for (int i = 0; i < MAX_WORKERS; i++) {
        long cur = atomic_load(&workers[i]);
        if (cur == tid)
            return;
        if (cur == 0 && atomic_compare_exchange_strong(&workers[i], &cur, tid))
            return;
    }
}

/* Fills `n` bytes of locals with a pattern and checks it back (the compiler may not
 * drop them: volatile). Returns 1 when intact. */
__attribute__((noinline)) static int use_stack(size_t n, unsigned char seed)
{
    volatile unsigned char buf[n];
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(seed + i * 7);
    for (size_t i = 0; i < n; i++)
        if (buf[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    int saved = errno;
    stack_t ss;
    long tid = thread_id();
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK))
        atomic_fetch_add(&usr1_on_alt, 1);
    if (is_worker(tid))
        atomic_fetch_add(&usr1_on_worker, 1);
    if (!use_stack(BIG_ONSTACK, (unsigned char)tid))
        atomic_fetch_add(&handler_bad, 1);
    atomic_fetch_add(&usr1_handled, 1);
    errno = saved;
}

static void on_usr2(int sig)
{
    (void)sig;
    int saved = errno;
    if (!use_stack(BIG_PLAIN, 0x5a))
        atomic_fetch_add(&handler_bad, 1);
    atomic_fetch_add(&usr2_handled, 1);
    errno = saved;
}

/* Sends SIGUSR1 and SIGUSR2 alternately to the known worker threads for at least
 * `arg` ms and until 300 of each were handled (at most 5 s: a loaded machine runs
 * this thread less often). */
static void *sender(void *arg)
{
    int64_t start = now_ns(), min_end = start + (intptr_t)arg * MS, max_end = start + 5000 * MS;
    int k = 0;
    for (;;) {
        int64_t t = now_ns();
        if (t > max_end || (t > min_end && atomic_load(&usr1_handled) >= 300 &&
                            atomic_load(&usr2_handled) >= 300))
            break;
        long tid = atomic_load(&workers[k % MAX_WORKERS]);
        if (tid == 0) {
            k = 0;
            tid = atomic_load(&workers[0]);
        }
        if (tid != 0)
            syscall(SYS_tgkill, getpid(), tid, (k & 1) ? SIGUSR2 : SIGUSR1);
        k++;
        struct timespec ts = { 0, 250000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static atomic_long goroutines_ok;

/* A computation with yields, sleeps and a stack array, checked against its own
 * result computed the same way before the storm. */
__attribute__((noinline)) static uint64_t churn(uint64_t seed, int yields)
{
    volatile uint64_t a[256];
    for (int i = 0; i < 256; i++)
        a[i] = seed * 6364136223846793005ULL + (uint64_t)i;
    uint64_t h = seed;
    for (int y = 0; y < yields; y++) {
        note_worker();
        if (y % 16 == 0)
            gr_sleep(100000);
        else
            gr_yield();
        for (int i = 0; i < 256; i++)
            h = (h ^ a[i]) * 1099511628211ULL;
    }
    return h;
}

static void computing(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    uint64_t want = churn(seed, 64);
    while (!atomic_load(&stop)) {
        if (churn(seed, 64) != want)
            FAIL("goroutine %llu: a computation changed its result next to signal handlers",
                 (unsigned long long)seed);
    }
    atomic_fetch_add(&goroutines_ok, 1);
}

static gr_chan *pipeline;

static void producer(void *arg)
{
    (void)arg;
    for (long i = 0; !atomic_load(&stop); i++) {
        note_worker();
        CHECK_EQ(gr_chan_send(pipeline, &i), 0);
    }
    long end = -1;
    CHECK_EQ(gr_chan_send(pipeline, &end), 0);
}

static void consumer(void *arg)
{
    (void)arg;
    long want = 0, v;
    for (;;) {
        CHECK_EQ(gr_chan_recv(pipeline, &v), 0);
        note_worker();
        if (v < 0)
            break;
        if (v != want)
            FAIL("the channel delivered %ld, expected %ld, next to signal handlers", v, want);
        want++;
    }
    atomic_fetch_add(&goroutines_ok, 1);
}

static void big_handlers_while_goroutines_run(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2; /* no SA_ONSTACK: runs on the interrupted stack */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);

    pipeline = gr_chan_new(sizeof(long), 4);
    CHECK(pipeline != NULL);
    gr_attr small = { 32 * 1024, "small", 0 };
    int ncomputing = 0;
    for (int i = 0; i < 6; i++, ncomputing++)
        SPAWN(computing, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 4; i++, ncomputing++) {
        gr_id id = gr_spawn_attr(computing, (void *)(uintptr_t)(100 + i), &small);
        CHECK(id > 0);
    }
    SPAWN(producer, NULL);
    SPAWN(consumer, NULL);
    while (atomic_load(&workers[1]) == 0) /* both workers known */
        sleep_ms(1);

    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sender, (void *)(intptr_t)1000), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    atomic_store(&stop, 1);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_chan_free(pipeline), 0);

    long n1 = atomic_load(&usr1_handled), n2 = atomic_load(&usr2_handled);
    long on_worker = atomic_load(&usr1_on_worker), on_alt = atomic_load(&usr1_on_alt);
    printf("signals to the workers: %ld SIGUSR1 (SA_ONSTACK, 32 KiB locals; %ld of "
           "%ld on a worker's alternate stack), %ld SIGUSR2 (12 KiB locals on the "
           "interrupted stack); %ld goroutines exact\n",
           n1, on_alt, on_worker, n2, atomic_load(&goroutines_ok));
    CHECK_EQ(atomic_load(&handler_bad), 0);
    CHECK_EQ(atomic_load(&goroutines_ok), ncomputing + 1);
    if (n1 < 100 || n2 < 100)
        FAIL("only %ld SIGUSR1 and %ld SIGUSR2 were handled: the storm was not real", n1, n2);
    /* Signals go to threads goroutines ran on, which are all workers; each one that
     * arrived on a worker ran on the alternate stack. */
    CHECK_EQ(on_worker, n1);
    CHECK_EQ(on_alt, on_worker);
}

/* ------------------------------------------------------------ signal masks (25) */

static int sig_mask_test;

/* Whether `sig` is blocked in thread `tid`, from /proc (any thread may read it). */
static int blocked_in(long tid, int sig)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    unsigned long long mask = 0;
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigBlk: %llx", &mask) == 1) {
            found = 1;
            break;
        }
    fclose(f);
    CHECK(found);
    return (int)((mask >> (sig - 1)) & 1);
}

static int blocked_here(int sig)
{
    sigset_t cur;
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, NULL, &cur), 0);
    return sigismember(&cur, sig);
}

static void set_blocked(int sig, int block)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    CHECK_EQ(pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL), 0);
}

static atomic_int busy_stop;

static void busy_yielder(void *arg)
{
    (void)arg;
    while (!atomic_load(&busy_stop))
        gr_yield();
}

static long mask_left_on; /* the thread the migrating goroutine blocked the signal on */

static void migrating_masker(void *arg)
{
    (void)arg;
    long t1 = thread_id();
    set_blocked(sig_mask_test, 1);
    CHECK(blocked_here(sig_mask_test));
    int64_t end = now_ns() + 10000 * MS;
    while (thread_id() == t1) {
        if (now_ns() > end)
            FAIL("the goroutine never migrated in 10 s on 2 processors");
        gr_sleep(50000);
    }
    long t2 = thread_id();
    /* The mask did not come along: it belongs to the thread. */
    if (blocked_here(sig_mask_test))
        FAIL("the signal mask followed the goroutine from thread %ld to %ld", t1, t2);
    CHECK(!blocked_in(t2, sig_mask_test));
    /* The thread it left still blocks the signal, for whatever runs there. */
    if (!blocked_in(t1, sig_mask_test))
        FAIL("thread %ld lost the mask the goroutine set there", t1);
    mask_left_on = t1;
}

static void locked_masker(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_lock_thread(), 0);
    long tid = thread_id();
    int was = blocked_here(sig_mask_test);
    set_blocked(sig_mask_test, 1);
    for (int i = 0; i < 200; i++) {
        if (i % 10 == 0)
            gr_sleep(100000);
        else
            gr_yield();
        CHECK_EQ(thread_id(), tid);
        if (!blocked_here(sig_mask_test))
            FAIL("a locked goroutine's signal mask changed after %d yields", i);
    }
    if (!was)
        set_blocked(sig_mask_test, 0);
    CHECK_EQ(blocked_in(tid, sig_mask_test), was);
    CHECK_EQ(gr_unlock_thread(), 0);
}

static void masks_belong_to_threads(void)
{
    sig_mask_test = SIGRTMIN + 3;
    atomic_store(&busy_stop, 0);
    gr_id busy[8];
    for (int i = 0; i < 8; i++)
        busy[i] = SPAWN(busy_yielder, NULL);
    CHECK_EQ(gr_join(SPAWN(migrating_masker, NULL)), 0);
    CHECK_EQ(gr_join(SPAWN(locked_masker, NULL)), 0);
    atomic_store(&busy_stop, 1);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(gr_join(busy[i]), 0);
    printf("signal masks stay with the thread: blocked on thread %ld, not on the thread the "
           "goroutine moved to; kept inside gr_lock_thread\n",
           mask_left_on);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    big_handlers_while_goroutines_run();
    masks_belong_to_threads();
    puts("ok");
    return 0;
}
