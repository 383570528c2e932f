/*
 * Goroutines parked in distinct functions, for docs/goroutine-gdb.py
 * (tests/gdb_backtrace.rs): "receiver" waits on a channel in park_in_receive,
 * "sleeper" spawns "joiner" and sleeps in nap_in_sleep, "joiner" joins the receiver in
 * wait_for_receiver,
 * and "trapper" stops the process with SIGTRAP in stop_here once the others have
 * parked (the main thread waits in gr_join, a plain thread). It prints the ids first ("ids receiver=N ..."), so that the test knows
 * whom to ask gdb about. Built with -O0 so that every function keeps its frame.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "goroutine.h"

#define MS 1000000LL

static gr_chan *never;
static gr_id receiver_id, sleeper_id, joiner_id, trapper_id;

static gr_id spawn_named(gr_fn fn, const char *name)
{
    struct gr_attr attr = { 0 };
    attr.name = name;
    gr_id id = gr_spawn_attr(fn, NULL, &attr);
    if (id <= 0) {
        fprintf(stderr, "spawn %s: %s\n", name, gr_strerror((int)id));
        _exit(1);
    }
    return id;
}

void park_in_receive(void)
{
    int v;
    gr_chan_recv(never, &v);
}

void receiver(void *arg)
{
    (void)arg;
    park_in_receive();
}

void wait_for_receiver(gr_id id)
{
    gr_join(id);
}

void joiner(void *arg)
{
    (void)arg;
    wait_for_receiver(receiver_id);
}

void nap_in_sleep(void)
{
    gr_sleep(60000 * MS);
}

void sleeper(void *arg)
{
    (void)arg;
    joiner_id = spawn_named(joiner, "joiner");
    nap_in_sleep();
}

void stop_here(void)
{
    raise(SIGTRAP);
}

void trapper(void *arg)
{
    (void)arg;
    gr_sleep(300 * MS); /* the others park at once */
    printf("ids receiver=%lld sleeper=%lld joiner=%lld trapper=%lld\n", (long long)receiver_id,
           (long long)sleeper_id, (long long)joiner_id, (long long)trapper_id);
    fflush(stdout);
    stop_here();
}

int main(void)
{
    gr_init(2);
    never = gr_chan_new(sizeof(int), 0);
    receiver_id = spawn_named(receiver, "receiver");
    sleeper_id = spawn_named(sleeper, "sleeper");
    trapper_id = spawn_named(trapper, "trapper");
    gr_join(trapper_id);
    return 0;
}
