/*
 * Signals on channels (gr_signal_notify, gr_signal_stop), as Go's signal.Notify:
 *   - SIGUSR1 sent to the process arrives on a channel in a gr_select (beside a
 *     channel nobody sends on) in a goroutine under gr_main: the select returns the
 *     signal's case with the signal number, and gr_main does not call the wait a
 *     deadlock while a channel is registered;
 *   - one channel for two signals gets both; two channels for one signal both get it;
 *   - delivery never blocks: 5 signals into a 1-slot channel nobody reads leave one
 *     value (the rest dropped), and the next one after a receive arrives;
 *   - gr_signal_stop puts the previous action back: a handler the program had
 *     installed does not run while a channel has the signal, and runs again after
 *     the stop; a signal that had its default action has it again; after the stop,
 *     nothing more arrives on the channel, and the delivery thread is gone;
 *   - refused: NULL, a channel whose elements are not int-sized, signal numbers 0 and
 *     65, SIGKILL, SIGSTOP, SIGSEGV (the runtime's overflow detection), SIGBUS,
 *     SIGFPE, SIGILL (-EINVAL); SIGQUIT while GRDEBUG=sigquit=1 has it (-EBUSY, in a
 *     child process started with that setting).
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define MS 1000000LL

static gr_chan *sig, *never;
static int got_index = -1, got_signo;

static void selector(void *arg)
{
    (void)arg;
    long x;
    gr_case cs[2] = { { never, GR_RECV, &x, 0 }, { sig, GR_RECV, &got_signo, 0 } };
    got_index = gr_select(cs, 2, 10000 * MS);
}

static void *sender(void *arg)
{
    (void)arg;
    sleep_ms(100); /* the selector is parked by then, most likely */
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    return NULL;
}

static int recv_within(gr_chan *c, int64_t ns)
{
    int v = 0;
    gr_case cs = { c, GR_RECV, &v, 0 };
    int rc = gr_select(&cs, 1, ns);
    return rc == 0 ? v : rc;
}

static atomic_int own_handler_runs;

static void own_handler(int s)
{
    (void)s;
    atomic_fetch_add(&own_handler_runs, 1);
}

/* Threads of this process named `name` (/proc/self/task/TID/comm). */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* exited meanwhile */
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = 0;
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "sigquit") == 0) {
        /* The child: GRDEBUG=sigquit=1 is set, so the runtime has SIGQUIT. */
        CHECK_EQ(gr_init(1), 1);
        gr_chan *c = gr_chan_new(sizeof(int), 1);
        CHECK_EQ(gr_signal_notify(c, SIGQUIT), -EBUSY);
        CHECK_EQ(gr_chan_free(c), 0);
        puts("child: SIGQUIT refused while GRDEBUG=sigquit=1 has it");
        return 0;
    }
    watchdog(60);
    CHECK_EQ(gr_init(2), 2);
    CHECK_EQ(threads_named("gr-signals"), 0);

    /* Refused. */
    gr_chan *wide = gr_chan_new(sizeof(long), 1);
    sig = gr_chan_new(sizeof(int), 1);
    never = gr_chan_new(sizeof(long), 0);
    CHECK(wide && sig && never);
    CHECK_EQ(gr_signal_notify(NULL, SIGUSR1), -EINVAL);
    CHECK_EQ(gr_signal_notify(wide, SIGUSR1), -EINVAL);
    int refused[] = { 0, 65, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL };
    for (unsigned i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (gr_signal_notify(sig, refused[i]) != -EINVAL)
            FAIL("signal %d was not refused", refused[i]);
    CHECK_EQ(gr_signal_stop(NULL), -EINVAL);
    CHECK_EQ(gr_signal_stop(sig), 0); /* registered for nothing: fine */

    /* SIGUSR1 to self, in a select, under gr_main. A handler of our own is set first:
     * it must not run while the channel has the signal. */
    struct sigaction sa = { 0 };
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    CHECK_EQ(gr_signal_notify(sig, SIGUSR1), 0);
    CHECK_EQ(gr_signal_notify(sig, SIGUSR1), 0); /* twice: registered once */
    /* The delivery thread names itself once it runs. */
    for (int i = 0; i < 2000 && threads_named("gr-signals") == 0; i++)
        sleep_ms(1);
    CHECK_EQ(threads_named("gr-signals"), 1);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, sender, NULL), 0);
    int64_t t0 = now_ns();
    CHECK_EQ(gr_main(selector, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(got_index, 1);
    CHECK_EQ(got_signo, SIGUSR1);
    CHECK_EQ(atomic_load(&own_handler_runs), 0);
    printf("SIGUSR1 arrived in the select %.1f ms after the start (sent at ~100 ms)\n",
           (now_ns() - t0) / 1e6);
    CHECK_EQ(gr_chan_len(sig), 0); /* once, though registered twice */

    /* Two signals on one channel; two channels for one signal. */
    gr_chan *sig2 = gr_chan_new(sizeof(int), 4);
    CHECK(sig2 != NULL);
    CHECK_EQ(gr_signal_notify(sig2, SIGUSR2), 0);
    CHECK_EQ(gr_signal_notify(sig2, SIGUSR1), 0);
    CHECK_EQ(kill(getpid(), SIGUSR2), 0);
    CHECK_EQ(recv_within(sig2, 5000 * MS), SIGUSR2);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(recv_within(sig2, 5000 * MS), SIGUSR1);
    CHECK_EQ(recv_within(sig, 5000 * MS), SIGUSR1);

    /* Never blocks: a full channel drops. */
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(kill(getpid(), SIGUSR1), 0);
        sleep_ms(5);
    }
    sleep_ms(50);
    CHECK_EQ(gr_chan_len(sig), 1);
    CHECK_EQ(recv_within(sig, 0), SIGUSR1);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(recv_within(sig, 5000 * MS), SIGUSR1);
    /* (sig2 got its share too: drain it.) */
    while (recv_within(sig2, 50 * MS) > 0) {
    }

    /* Stop: the program's handler is back; nothing arrives any more. */
    CHECK_EQ(gr_signal_stop(sig), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(recv_within(sig2, 5000 * MS), SIGUSR1); /* sig2 still has it */
    CHECK_EQ(atomic_load(&own_handler_runs), 0);
    CHECK_EQ(gr_signal_stop(sig2), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    for (int i = 0; i < 1000 && atomic_load(&own_handler_runs) == 0; i++)
        sleep_ms(1);
    CHECK_EQ(atomic_load(&own_handler_runs), 1);
    CHECK_EQ(recv_within(sig, 50 * MS), -ETIMEDOUT);
    CHECK_EQ(recv_within(sig2, 50 * MS), -ETIMEDOUT);
    /* SIGUSR2 had the default action (terminate): it has it again. */
    struct sigaction cur;
    CHECK_EQ(sigaction(SIGUSR2, NULL, &cur), 0);
    CHECK(cur.sa_handler == SIG_DFL);
    /* The delivery thread has gone. */
    for (int i = 0; i < 2000 && threads_named("gr-signals") > 0; i++)
        sleep_ms(1);
    CHECK_EQ(threads_named("gr-signals"), 0);
    CHECK_EQ(gr_chan_free(sig), 0);
    CHECK_EQ(gr_chan_free(sig2), 0);
    CHECK_EQ(gr_chan_free(wide), 0);
    CHECK_EQ(gr_chan_free(never), 0);

    /* SIGQUIT under GRDEBUG=sigquit=1: in a child process. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setenv("GRDEBUG", "sigquit=1", 1);
        execl("/proc/self/exe", argv[0], "sigquit", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("the GRDEBUG=sigquit=1 child failed (status %#x)", st);
    puts("ok");
    return 0;
}
