/*
 * fork() while the runtime runs (100 goroutines alive): the parent is unaffected; in
 * the child every call fails at once with -ECHILD (the runtime's threads do not
 * survive fork) and exec works. 100 iterations, no hang (`fork N`: N iterations;
 * make stress runs 2,000).
 */
#include "check.h"

#include <stdatomic.h>
#include <sys/wait.h>

static atomic_int stop;
static atomic_long ticks;

static void ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        atomic_fetch_add(&ticks, 1);
        gr_sleep(1000000);
    }
}

static void noop(void *arg)
{
    (void)arg;
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 100;
    CHECK(forks > 0);
    watchdog(60 + forks / 20);
    for (int i = 0; i < 100; i++)
        SPAWN(ticker, NULL);
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            if (gr_spawn(noop, NULL) != -ECHILD || gr_join(1) != -ECHILD || gr_self() != -ECHILD ||
                gr_wait_all() != -ECHILD || gr_count() != 0)
                _exit(3);
            execl("/bin/true", "true", (char *)NULL);
            _exit(4);
        }
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("child %d: status %#x", i, st);
    }
    long before = atomic_load(&ticks);
    gr_sleep(50000000);
    CHECK(atomic_load(&ticks) > before); /* the parent's goroutines still run */
    CHECK_EQ(gr_join(SPAWN(noop, NULL)), 0);
    atomic_store(&stop, 1);
    CHECK_EQ(gr_wait_all(), 0);
    puts("ok");
    return 0;
}
