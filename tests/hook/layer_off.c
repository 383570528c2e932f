/*
 * GR_HOOK=0 turns the hook layer off: `layer_off off` (run with GR_HOOK=0) checks that
 * a goroutine's usleep(300 ms) blocks its thread in the kernel (the thread shows as
 * in clock_nanosleep, /proc/self/task/TID/syscall); `layer_off on` (the layer on)
 * that it does not: the thread goes on running other goroutines.
 */
#include "hook_test.h"

#include <sys/syscall.h>

static atomic_long sleeper_tid;

static void sleeper(void *arg)
{
    (void)arg;
    atomic_store(&sleeper_tid, thread_id());
    usleep(300000);
}

int main(int argc, char **argv)
{
    watchdog(30);
    CHECK(argc == 2);
    int want_off = strcmp(argv[1], "off") == 0;
    CHECK_EQ(gr_init(1), 1);
    SPAWN(sleeper, NULL);
    while (!atomic_load(&sleeper_tid))
        sleep_ms(1);
    int seen = 0;
    for (int i = 0; i < 100; i++) {
        long nr = blocked_syscall(atomic_load(&sleeper_tid));
        if (nr == SYS_clock_nanosleep || nr == SYS_nanosleep)
            seen++;
        sleep_ms(2);
    }
    CHECK_EQ(gr_wait_all(), 0);
    printf("layer %s: the goroutine's thread was seen in the kernel's sleep %d times of 100\n",
           want_off ? "off" : "on", seen);
    if (want_off)
        CHECK(seen > 50);
    else
        CHECK_EQ(seen, 0);
    puts("ok");
    return 0;
}
