/*
 * gr_dump and gr_stats say what the issue asks (issue 8): gr_dump writes every
 * goroutine with its id, name, state, what it waits on, for how long, the function
 * it runs and where it was spawned; gr_stats counts goroutines, threads, switches,
 * steals, sysmon hand-offs, stacks in use and the guard mode. Each item is checked
 * against a scene built for it:
 *   1. bad input: gr_stats(NULL) is -EINVAL, gr_dump(-1) is -EBADF;
 *   2. six goroutines park on six different things (channel receive and send, sleep,
 *      join, fd read, wait group) for >= 150 ms; the dump names each one with its
 *      wait reason and a wait time within [150 ms, 60 s], the function it runs and
 *      "created by <spawning function> in goroutine <id>"; the dumping goroutine is
 *      "running" and was created by a plain thread; gr_stats counts them
 *      (goroutines, stacks, timers, fd waiters) and the switches went up;
 *   3. sysmon hand-offs (first, on one processor): a goroutine stuck in an unwrapped
 *      usleep(300 ms) with the main goroutine queued behind it: sysmon hands the
 *      queue to a rescue processor (sysmon_rescues goes up);
 *   4. steals (on two processors): 200 busy goroutines spawned on one processor are
 *      shared with the other one (steals go up);
 *   5. when all is over, goroutines is back to 0.
 * Functions are not static so that the dump can name them when the program is linked
 * with -rdynamic; without it the dump prints their addresses, and either is accepted.
 */
#include "check.h"

#include <stdatomic.h>

#define MS 1000000LL

static gr_chan *never_sent, *never_received;
static gr_wg *never_done;
static int pipe_fds[2];
static gr_id reader_id;

void wait_in_recv(void *arg)
{
    int v;
    (void)arg;
    CHECK_EQ(gr_chan_recv(never_sent, &v), -EPIPE);
}

void wait_in_send(void *arg)
{
    int v = 1;
    (void)arg;
    CHECK_EQ(gr_chan_send(never_received, &v), -EPIPE);
}

void wait_in_sleep(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_sleep(1500 * MS), 0);
}

void wait_in_join(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_join(reader_id), 0);
}

void wait_in_read(void *arg)
{
    (void)arg;
    CHECK(gr_block_io(pipe_fds[0], GR_READ, -1) > 0);
}

void wait_in_wg(void *arg)
{
    (void)arg;
    CHECK_EQ(gr_wg_wait(never_done), 0);
}

/* The line of goroutine `id` ("goroutine ID (NAME) [STATE]...") and the two after it. */
static const char *entry_of(const char *dump, gr_id id)
{
    char head[64];
    snprintf(head, sizeof head, "goroutine %lld (", (long long)id);
    const char *p = strstr(dump, head);
    if (!p)
        FAIL("goroutine %lld is not in the dump:\n%s", (long long)id, dump);
    return p;
}

/* Checks the "runs F" or "created by F" line of an entry: F's name (-rdynamic) or
 * its address. */
static void check_function_line(const char *entry, const char *what, void (*fn)(void *),
                                const char *name, const char *rest)
{
    char by_name[128], by_addr[128];
    snprintf(by_name, sizeof by_name, "\t%s %s%s\n", what, name, rest);
    snprintf(by_addr, sizeof by_addr, "\t%s %#lx%s\n", what, (unsigned long)(uintptr_t)fn, rest);
    const char *end = strstr(entry + 1, "\n\n");
    size_t len = end ? (size_t)(end - entry) + 1 : strlen(entry);
    char copy[1024];
    if (len >= sizeof copy)
        FAIL("entry too long");
    memcpy(copy, entry, len);
    copy[len] = 0;
    if (!strstr(copy, by_name) && !strstr(copy, by_addr))
        FAIL("expected \"%s\" or \"%s\" in:\n%s", by_name, by_addr, copy);
}

/* Checks "goroutine ID (NAME) [REASON, N ms]" with N in [min_ms, 60 s]. */
static void check_waiting(const char *dump, gr_id id, const char *name, const char *reason,
                          long min_ms, void (*fn)(void *), const char *fn_name)
{
    const char *e = entry_of(dump, id);
    char expect[128];
    int n = snprintf(expect, sizeof expect, "goroutine %lld (%s) [%s, ", (long long)id, name,
                     reason);
    if (strncmp(e, expect, (size_t)n) != 0)
        FAIL("expected \"%s...\", got:\n%.200s", expect, e);
    long ms = strtol(e + n, NULL, 10);
    if (ms < min_ms || ms > 60000)
        FAIL("goroutine %s waited %ld ms, expected >= %ld:\n%.200s", name, ms, min_ms, e);
    CHECK(strncmp(strchr(e + n, ' '), " ms]:\n", 6) == 0);
    check_function_line(e, "runs", fn, fn_name, "");
}

static char *dump_to_string(void)
{
    FILE *f = tmpfile();
    CHECK(f != NULL);
    CHECK_EQ(gr_dump(fileno(f)), 0);
    long size = lseek(fileno(f), 0, SEEK_END);
    CHECK(size > 0);
    char *buf = calloc(1, (size_t)size + 1);
    CHECK(buf != NULL);
    CHECK_EQ(pread(fileno(f), buf, (size_t)size, 0), size);
    fclose(f);
    return buf;
}

static atomic_long spin_sink;

void spin_1ms(void *arg)
{
    (void)arg;
    int64_t until = now_ns() + 1 * MS;
    while (now_ns() < until)
        atomic_fetch_add(&spin_sink, 1);
}

void stuck_in_usleep(void *arg)
{
    (void)arg;
    usleep(300000); /* blocks the thread; not wrapped in gr_blocking */
}

/* Sysmon hand-off (run first, on one processor): stuck in a call nobody wrapped;
 * this goroutine waits in the queue behind it until sysmon gives the queue a rescue
 * processor. */
void sysmon_scene(void *arg)
{
    (void)arg;
    struct gr_stats before = { .size = sizeof before }, after = { .size = sizeof after };
    CHECK_EQ(gr_stats(&before), 0);
    CHECK_EQ(before.procs, 1);
    gr_id stuck = SPAWN(stuck_in_usleep, NULL);
    gr_yield();
    /* Running again means rescued; sysmon counts the rescue just after handing the
     * queue on, so the count may lag by a moment. */
    int64_t until = now_ns() + 5000 * MS;
    do
        CHECK_EQ(gr_stats(&after), 0);
    while (after.sysmon_rescues == before.sysmon_rescues && now_ns() < until);
    printf("sysmon_rescues: %llu -> %llu\n", (unsigned long long)before.sysmon_rescues,
           (unsigned long long)after.sysmon_rescues);
    CHECK(after.sysmon_rescues > before.sysmon_rescues);
    CHECK_EQ(gr_join(stuck), 0);
}

void scene(void *arg)
{
    (void)arg;
    gr_id self = gr_self();
    struct gr_stats before = { .size = sizeof before }, during = { .size = sizeof during },
                    after = { .size = sizeof after };
    CHECK_EQ(gr_stats(&before), 0);

    never_sent = gr_chan_new(sizeof(int), 0);
    never_received = gr_chan_new(sizeof(int), 0);
    never_done = gr_wg_new();
    CHECK(never_sent && never_received && never_done);
    CHECK_EQ(gr_wg_add(never_done, 1), 0);
    CHECK_EQ(pipe(pipe_fds), 0);

    struct {
        const char *name;
        void (*fn)(void *);
        gr_id id;
    } g[] = {
        { "reader", wait_in_recv, 0 }, { "sender", wait_in_send, 0 },
        { "sleeper", wait_in_sleep, 0 }, { "joiner", wait_in_join, 0 },
        { "fd-reader", wait_in_read, 0 }, { NULL, wait_in_wg, 0 },
    };
    int n = (int)(sizeof g / sizeof g[0]);
    for (int i = 0; i < n; i++) {
        struct gr_attr attr = { 0 };
        attr.name = g[i].name;
        g[i].id = gr_spawn_attr(g[i].fn, NULL, &attr);
        CHECK(g[i].id > 0);
        if (i == 0)
            reader_id = g[i].id;
    }
    /* Long enough for every wait to have begun and be over 150 ms old, on a clock
     * that sysmon refreshes every ~10 ms. */
    CHECK_EQ(gr_sleep(300 * MS), 0);

    CHECK_EQ(gr_stats(&during), 0);
    CHECK_EQ(during.goroutines, before.goroutines + n);
    CHECK(during.stacks_in_use >= during.goroutines);
    CHECK(during.threads >= 1);
    CHECK(during.procs >= 2); /* and a rescue processor until it retires */
    CHECK(during.guard_mode == 1 || during.guard_mode == 2);
    CHECK(during.timers >= 1); /* the sleeper */
    CHECK_EQ(during.fd_waiters, 1);
    CHECK(during.switches > before.switches);

    char *dump = dump_to_string();
    char head[64];
    snprintf(head, sizeof head, "libgoroutine: %llu goroutines\n\n",
             (unsigned long long)during.goroutines);
    if (strncmp(dump, head, strlen(head)) != 0)
        FAIL("expected \"%s\" first:\n%s", head, dump);
    const char *reasons[] = { "chan receive", "chan send", "sleep", "join", "IO wait",
                              "wait group" };
    const char *fn_names[] = { "wait_in_recv", "wait_in_send", "wait_in_sleep",
                               "wait_in_join", "wait_in_read", "wait_in_wg" };
    char created_by[64];
    snprintf(created_by, sizeof created_by, " in goroutine %lld", (long long)self);
    for (int i = 0; i < n; i++) {
        check_waiting(dump, g[i].id, g[i].name ? g[i].name : "unnamed", reasons[i], 150, g[i].fn,
                      fn_names[i]);
        check_function_line(entry_of(dump, g[i].id), "created by", scene, "scene", created_by);
    }
    /* The dumping goroutine itself: running, created by the plain thread of gr_main. */
    const char *me = entry_of(dump, self);
    const char *running = strstr(me, ") [running]:\n");
    CHECK(running != NULL && running < strchr(me, '\n'));
    check_function_line(me, "runs", scene, "scene", "");
    CHECK(strstr(me, "\tcreated by a plain thread\n") != NULL);
    printf("%s", dump);
    free(dump);

    /* Steals: busy goroutines queued on this processor; the idle one takes some. */
    uint64_t steals0 = during.steals;
    for (int round = 0; round < 20; round++) {
        gr_id ids[200];
        for (int i = 0; i < 200; i++)
            ids[i] = SPAWN(spin_1ms, NULL);
        for (int i = 0; i < 200; i++)
            CHECK_EQ(gr_join(ids[i]), 0);
        CHECK_EQ(gr_stats(&after), 0);
        if (after.steals > steals0)
            break;
    }
    printf("steals: %llu -> %llu\n", (unsigned long long)steals0,
           (unsigned long long)after.steals);
    CHECK(after.steals > steals0);

    /* Wake everyone and check the count comes down. */
    CHECK_EQ(gr_chan_close(never_sent), 0);
    CHECK_EQ(gr_chan_close(never_received), 0);
    CHECK_EQ(gr_wg_done(never_done), 0);
    CHECK_EQ(write(pipe_fds[1], "x", 1), 1);
    for (int i = 0; i < n; i++)
        CHECK_EQ(gr_join(g[i].id), 0);
    CHECK_EQ(gr_stats(&after), 0);
    CHECK_EQ(after.goroutines, before.goroutines);
    CHECK_EQ(after.fd_waiters, 0);
    gr_chan_free(never_sent);
    gr_chan_free(never_received);
    gr_wg_free(never_done);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* struct gr_stats' size field: the caller's size says how much the library may fill.
 * 0 (not set) and anything below 0.2.0's struct (128 bytes) are refused; a larger
 * struct (a program built against a later header with more counters) gets the
 * counters this library knows, the bytes beyond them are left alone, and `size` says
 * how many were filled. */
static void check_stats_size(void)
{
    struct gr_stats st = { .size = 0 };
    CHECK_EQ(gr_stats(&st), -EINVAL);
    CHECK_EQ(st.size, 0);
    st.size = 127;
    CHECK_EQ(gr_stats(&st), -EINVAL);
    CHECK_EQ(st.goroutines, 0); /* nothing written */
    CHECK_EQ(sizeof(struct gr_stats), 128);
    st.size = sizeof st;
    CHECK_EQ(gr_stats(&st), 0);
    CHECK_EQ(st.size, sizeof st);
    CHECK(st.procs >= 1);

    struct {
        struct gr_stats known;
        unsigned char later[40];
    } big;
    memset(&big, 0xab, sizeof big);
    big.known.size = sizeof big;
    CHECK_EQ(gr_stats(&big.known), 0);
    CHECK_EQ(big.known.size, sizeof(struct gr_stats));
    CHECK(big.known.procs >= 1 && big.known.procs < 1000);
    for (size_t i = 0; i < sizeof big.later; i++)
        if (big.later[i] != 0xab)
            FAIL("gr_stats wrote byte %zu past the counters it knows", i);
}

int main(void)
{
    watchdog(60);
    struct gr_stats st = { .size = sizeof st };
    CHECK_EQ(gr_init(1), 1);
    CHECK_EQ(gr_stats(NULL), -EINVAL);
    check_stats_size();
    CHECK_EQ(gr_dump(-1), -EBADF);
    CHECK_EQ(gr_main(sysmon_scene, NULL), 0);
    CHECK_EQ(gr_maxprocs(2), 1);
    CHECK_EQ(gr_main(scene, NULL), 0);
    CHECK_EQ(gr_stats(&st), 0);
    CHECK_EQ(st.goroutines, 0);
    puts("ok");
    return 0;
}
