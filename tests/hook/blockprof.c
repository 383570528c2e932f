/*
 * GRDEBUG=blockprof=1 (tests/hook.rs checks the stderr of this program): on one
 * processor, with the hook layer linked in,
 *   - the goroutine "reaper" waits twice for a child process that sleeps 60 ms, in
 *     waitpid, which the hook layer does not cover: one line, naming the goroutine,
 *     the wait and reap_child, its caller (once for the call site);
 *   - the goroutine "tty" reads a pseudo-terminal for 60 ms: the hook layer passes a
 *     terminal read straight to libc, so it blocks its thread too, but inside the
 *     hook layer: no line;
 *   - the goroutine "napper" calls usleep(60 ms), which parks: no line.
 * Built with -rdynamic, so that dladdr can name reap_child.
 */
#include "hook_test.h"

#include <sys/wait.h>

void reap_child(void);

__attribute__((noinline)) void reap_child(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec ts = {0, 60000000};
        syscall(SYS_nanosleep, &ts, NULL);
        _exit(7);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

static void reaper(void *arg)
{
    (void)arg;
    reap_child();
    reap_child();
}

static int master, slave;

static void tty(void *arg)
{
    (void)arg;
    char c;
    CHECK_EQ(read(slave, &c, 1), 1);
}

static void napper(void *arg)
{
    (void)arg;
    usleep(60000);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(gr_init(1), 1);
    master = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(master >= 0);
    CHECK_EQ(grantpt(master), 0);
    CHECK_EQ(unlockpt(master), 0);
    slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    CHECK(slave >= 0);
    struct gr_attr a = {.name = "reaper"};
    gr_join(gr_spawn_attr(reaper, NULL, &a));
    a.name = "tty";
    gr_id t = gr_spawn_attr(tty, NULL, &a);
    CHECK(t > 0);
    sleep_ms(60); /* a plain thread: really sleeps */
    CHECK_EQ(write(master, "x\n", 2), 2);
    gr_join(t);
    a.name = "napper";
    gr_join(gr_spawn_attr(napper, NULL, &a));
    puts("ok");
    return 0;
}
