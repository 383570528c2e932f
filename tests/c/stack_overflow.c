/*
 * Stack overflow and other faults in a goroutine.
 *
 *   stack_overflow             deep but legal recursion (150 KiB on a 256 KiB stack): ok
 *   stack_overflow overflow    unbounded recursion in a goroutine named "deep"
 *   stack_overflow unnamed     the same in a goroutine spawned without a name
 *   stack_overflow big         the same on a 1 MiB stack named "big"
 *   stack_overflow null        a NULL dereference in a goroutine (not an overflow)
 *   stack_overflow chain       the same, with a SIGSEGV handler the program installed
 *                              before the runtime started: it must run (exit 42)
 *
 * The crashing modes print "id N" on stdout before they crash; tests/c_tests.rs
 * runs them as child processes and checks stderr for exactly one line
 * "libgoroutine: fatal error: stack overflow in goroutine N (NAME)" and SIGABRT
 * (with and without GR_GUARD=mprotect), or SIGSEGV / exit 42 for the others.
 */
#include "check.h"

#include <limits.h>
#include <sys/prctl.h>

static volatile int depth_limit = INT_MAX;

__attribute__((noinline)) static int recurse(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    pad[sizeof pad - 1] = (char)n;
    if (n < depth_limit)
        return recurse(n + 1) + pad[0];
    return pad[sizeof pad - 1];
}

static void deep(void *arg)
{
    (void)arg;
    printf("id %lld\n", (long long)gr_self());
    fflush(stdout);
    recurse(0);
}

static volatile int *volatile null_ptr;

static void null_deref(void *arg)
{
    (void)arg;
    printf("id %lld\n", (long long)gr_self());
    fflush(stdout);
    *null_ptr = 1;
}

static void user_handler(int sig)
{
    static const char msg[] = "user SIGSEGV handler ran\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(42);
}

static void no_core_dump(void)
{
    struct rlimit none = { 0, 0 };
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0);
}

static void legal(void *arg)
{
    *(int *)arg = recurse(0) >= 0;
}

int main(int argc, char **argv)
{
    watchdog(30);
    const char *mode = argc > 1 ? argv[1] : "legal";
    gr_id id;

    if (strcmp(mode, "legal") == 0) {
        int ok = 0;
        depth_limit = 140; /* ~150 KiB of frames */
        id = SPAWN(legal, &ok);
        CHECK_EQ(gr_join(id), 0);
        CHECK(ok);
        gr_attr attr = { 0, "legal", 0 };
        ok = 0;
        id = gr_spawn_attr(legal, &ok, &attr);
        CHECK(id > 0);
        CHECK_EQ(gr_join(id), 0);
        CHECK(ok);
        puts("ok");
        return 0;
    }

    no_core_dump();
    if (strcmp(mode, "overflow") == 0) {
        gr_attr attr = { 0, "deep", 0 };
        id = gr_spawn_attr(deep, NULL, &attr);
    } else if (strcmp(mode, "unnamed") == 0) {
        id = gr_spawn(deep, NULL);
    } else if (strcmp(mode, "big") == 0) {
        gr_attr attr = { 1 << 20, "big", 0 };
        id = gr_spawn_attr(deep, NULL, &attr);
    } else if (strcmp(mode, "null") == 0) {
        gr_attr attr = { 0, "null", 0 };
        id = gr_spawn_attr(null_deref, NULL, &attr);
    } else if (strcmp(mode, "chain") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = user_handler;
        sigemptyset(&sa.sa_mask);
        CHECK_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
        gr_attr attr = { 0, "chain", 0 };
        id = gr_spawn_attr(null_deref, NULL, &attr);
    } else {
        FAIL("unknown mode %s", mode);
    }
    if (id <= 0)
        FAIL("spawn: %s", gr_strerror((int)id));
    gr_join(id);
    FAIL("mode %s: the process survived", mode);
}
