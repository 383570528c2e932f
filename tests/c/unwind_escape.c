/*
 * Exceptions and longjmp that would escape a goroutine (reliability catalogue entry
 * 37). Owns the proof of what docs/guide.md says under "longjmp and C++ exceptions":
 *
 * 1. An exception nobody catches inside the goroutine cannot unwind into the
 *    runtime. The unwinder's search phase walks the goroutine's frames and stops at
 *    the base of its stack (the entry trampoline's call-frame information ends the
 *    chain): _Unwind_RaiseException returns _URC_END_OF_STACK, which is where a C++
 *    runtime calls std::terminate (SIGABRT). Raised here from C with a foreign
 *    exception object (what a C++ `throw` does underneath), 3 frames deep in 200
 *    goroutines after they migrated. _Unwind_Backtrace from a goroutine ends the
 *    same way, at a bounded depth.
 *    `unwind_escape blocking` raises inside a gr_blocking callback instead: the
 *    search meets the export's panic guard in the runtime's Rust frames, and Rust
 *    aborts the process ("Rust cannot catch foreign exceptions", SIGABRT), checked
 *    as a child process by tests/c_tests.rs
 *    (exception_escaping_a_runtime_callback_aborts).
 * 2. setjmp/longjmp inside one goroutine work across parks and migrations (the jump
 *    buffer is on the goroutine's own stack): 1,000 goroutines on 2 workers each
 *    set a jump point, yield and sleep in a deeper frame, and longjmp back, 10 times.
 * 3. A longjmp out of a goroutine's stack is caught at its next switch: the runtime
 *    finds the stack pointer outside the running goroutine's stack and reports
 *    "stack switched outside the runtime" naming it, then aborts. Child processes
 *    checked by tests/c_tests.rs (longjmp_onto_another_goroutine_is_fatal,
 *    longjmp_onto_a_thread_stack_is_fatal):
 *    `unwind_escape longjmp-goroutine`: goroutine "jumper" jumps to a buffer that the
 *    parked goroutine "victim" set on its own stack (locked to its thread, so that
 *    the jumper can see when it is parked), then sleeps;
 *    `unwind_escape longjmp-thread`: goroutine "jumper" jumps to a buffer that the
 *    main thread set on its stack (the thread then waits in pause()), then sleeps.
 *    Both print "jumper N" (and "victim M") first.
 */

/* glibc's fortified longjmp refuses a jump to a lower address on the same stack (a
 * frame that returned); the escapes below jump between stacks on purpose, to let the
 * runtime be the one that notices. */
#undef _FORTIFY_SOURCE
#include "check.h"

#include <setjmp.h>
#include <stdatomic.h>
#include <unwind.h>

#define G 1000

static atomic_int end_of_stack, other_result, backtrace_ok, longjmp_ok;

static void cleanup(_Unwind_Reason_Code code, struct _Unwind_Exception *e)
{
    (void)code, (void)e;
}

__attribute__((noinline)) static int raise_foreign(void)
{
    struct _Unwind_Exception e;
    memset(&e, 0, sizeof e);
    e.exception_class = 0x4752544553540000ULL; /* "GRTEST\0\0": nobody's */
    e.exception_cleanup = cleanup;
    return _Unwind_RaiseException(&e); /* returns only when no handler was found */
}

__attribute__((noinline)) static int frame2(void)
{
    int rc = raise_foreign();
    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return rc;
}

__attribute__((noinline)) static int frame1(void)
{
    int rc = frame2();
    __asm__ volatile("" ::: "memory");
    return rc;
}

struct depth {
    int frames;
};

static _Unwind_Reason_Code count_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct depth *d = arg;
    (void)ctx;
    if (++d->frames > 1000)
        return _URC_FATAL_PHASE1_ERROR; /* walked off into garbage */
    return _URC_NO_REASON;
}

static void raiser(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++)
        gr_yield(); /* migrate first */
    int rc = frame1();
    if (rc == _URC_END_OF_STACK)
        atomic_fetch_add(&end_of_stack, 1);
    else
        atomic_fetch_add(&other_result, 1);
    struct depth d = { 0 };
    int bt = _Unwind_Backtrace(count_frame, &d);
    if (bt == _URC_END_OF_STACK && d.frames >= 2 && d.frames < 50)
        atomic_fetch_add(&backtrace_ok, 1);
    else
        FAIL("_Unwind_Backtrace from a goroutine = %d after %d frames", bt, d.frames);
}

static void raise_in_callback(void *arg)
{
    *(int *)arg = frame1();
}

static void raiser_in_blocking(void *arg)
{
    (void)arg;
    int rc = -1;
    gr_blocking(raise_in_callback, &rc);
    FAIL("an exception raised in a gr_blocking callback came back: "
         "_Unwind_RaiseException = %d; the process should have aborted",
         rc);
}

/* ------------------------------------------------------------ longjmp (same goroutine) */

__attribute__((noinline)) static void deeper(jmp_buf *jb, int round)
{
    volatile char pad[512];
    pad[0] = (char)round;
    gr_yield();
    gr_sleep(10000);
    gr_yield();
    longjmp(*jb, round + 1 + pad[0] - (char)round);
}

static void jumper(void *arg)
{
    (void)arg;
    for (int round = 0; round < 10; round++) {
        jmp_buf jb;
        volatile int landed = 0;
        int v = setjmp(jb);
        if (v == 0) {
            deeper(&jb, round);
            FAIL("longjmp did not jump");
        }
        landed = v;
        CHECK_EQ(landed, round + 1);
    }
    atomic_fetch_add(&longjmp_ok, 1);
}

/* ------------------------------------------------------------ longjmp (between stacks) */

static jmp_buf escape_to;
/* The thread whose stack escape_to is on; set once it is about to sleep for good. */
static atomic_long escape_tid;

/* Spawns fn(arg) as a goroutine named `name`. */
static gr_id spawn_named(gr_fn fn, const char *name, void *arg)
{
    gr_attr attr = { .name = name };
    gr_id id = gr_spawn_attr(fn, arg, &attr);
    CHECK(id > 0);
    return id;
}

/* Lands where escape_to was set, on a stack that is not the running goroutine's. */
__attribute__((noreturn)) static void landed(void)
{
    gr_sleep(1000000); /* a switch: the runtime must notice here */
    FAIL("a longjmp to another stack went unnoticed through gr_sleep");
}

/* Thread `tid`'s state letter in /proc (R running, S sleeping...). */
static char thread_state(long tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end = strrchr(buf, ')'); /* after the command name, which may hold spaces */
    CHECK(end && end[1] == ' ');
    return end[2];
}

/* Locked to its thread, so that once it parks its thread sleeps: the thread's state
 * then says that its context is saved and nothing runs on its stack. */
static void victim(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_lock_thread(), 0);
    if (setjmp(escape_to) != 0)
        landed();
    atomic_store(&escape_tid, thread_id());
    gr_sleep(INT64_MAX); /* parked for good; its frame above stays intact */
}

/* Jumps to escape_to once the thread whose stack it is on sleeps (seen twice, 5 ms
 * apart, so a brief wait on a lock on the way to sleeping does not count), so that two
 * threads never run on one stack at once. */
static void escaper(void *arg)
{
    (void)arg;
    long tid;
    while (!(tid = atomic_load(&escape_tid)))
        gr_sleep(1000000);
    while (thread_state(tid) != 'S' || (gr_sleep(5000000), thread_state(tid) != 'S'))
        gr_sleep(1000000);
    longjmp(escape_to, 1);
}

/* Sets escape_to on the main thread's stack, then leaves the thread in pause(): the
 * jumper's thread runs in this frame meanwhile, and this thread must never return
 * into the frames below it, which that overwrites (gr_join would, after its first
 * 100 ms deadlock-check slice). */
__attribute__((noinline)) static void escape_to_main_thread(void)
{
    if (setjmp(escape_to) != 0)
        landed();
    printf("jumper %lld\n", (long long)spawn_named(escaper, "jumper", NULL));
    atomic_store(&escape_tid, thread_id());
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    if (argc > 1 && strcmp(argv[1], "blocking") == 0) {
        gr_join(SPAWN(raiser_in_blocking, NULL));
        FAIL("the goroutine that raised in gr_blocking ended normally");
    }
    if (argc > 1 && strcmp(argv[1], "longjmp-goroutine") == 0) {
        gr_id v = spawn_named(victim, "victim", NULL);
        gr_id j = spawn_named(escaper, "jumper", NULL);
        printf("jumper %lld\nvictim %lld\n", (long long)j, (long long)v);
        gr_join(j);
        FAIL("gr_join returned after the jumper left its stack");
    }
    if (argc > 1 && strcmp(argv[1], "longjmp-thread") == 0)
        escape_to_main_thread();

    for (int i = 0; i < 200; i++)
        SPAWN(raiser, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    if (atomic_load(&other_result))
        FAIL("%d of 200 raises did not end at the goroutine's base (_URC_END_OF_STACK)",
             atomic_load(&other_result));
    CHECK_EQ(atomic_load(&end_of_stack), 200);
    CHECK_EQ(atomic_load(&backtrace_ok), 200);
    printf("200 uncaught exceptions in goroutines ended at the goroutine's base: "
           "_URC_END_OF_STACK, where C++ calls std::terminate\n");

    for (int i = 0; i < G; i++)
        SPAWN(jumper, NULL);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(atomic_load(&longjmp_ok), G);
    printf("%d goroutines x 10 setjmp/park/longjmp within themselves: all landed\n", G);
    puts("ok");
    return 0;
}
