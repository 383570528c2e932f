/*
 * What the hook layer adds to a read or write that does not need to wait: on a
 * goroutine, a socketpair whose buffers never fill, N rounds of write(64 bytes) then
 * read(64 bytes) on it (both always ready), through
 *   hooked   libc's write/read, interposed by libgoroutine_hook.so (linked in): the
 *            layer's checks, then send/recv with MSG_DONTWAIT;
 *   raw      the write and read system calls themselves (syscall(2): no libc
 *            wrapper, no hook).
 * The goal: hooked within 10% of raw (bench/run.py, workload hookrw).
 *
 *   hookrw [rounds] [procs] hooked|raw
 * prints: hookrw ns_per_rw=... (one write + one read, ns) cpu_ns_per_rw=...
 *
 * Build: make -C bench (links -lgoroutine_hook, kept with --no-as-needed).
 */
#include "bench.h"

#include <sys/socket.h>
#include <sys/syscall.h>

static long rounds;
static int raw;
static uint64_t wall, cpu;

static void loop(void *arg)
{
    (void)arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("socketpair");
        exit(1);
    }
    char buf[64] = {0};
    /* Warm up both paths (the hook's fd table entry, the netpoller's). */
    for (int i = 0; i < 1000; i++) {
        if (write(sv[0], buf, sizeof buf) != sizeof buf || read(sv[1], buf, sizeof buf) != sizeof buf)
            exit(1);
    }
    uint64_t t0 = now_ns(), c0 = cpu_ns();
    if (raw) {
        for (long i = 0; i < rounds; i++) {
            if (syscall(SYS_write, sv[0], buf, sizeof buf) != sizeof buf ||
                syscall(SYS_read, sv[1], buf, sizeof buf) != sizeof buf)
                exit(1);
        }
    } else {
        for (long i = 0; i < rounds; i++) {
            if (write(sv[0], buf, sizeof buf) != sizeof buf || read(sv[1], buf, sizeof buf) != sizeof buf)
                exit(1);
        }
    }
    wall = now_ns() - t0;
    cpu = cpu_ns() - c0;
}

int main(int argc, char **argv)
{
    rounds = arg_long(argc, argv, 1, 1000000);
    int procs = (int)arg_long(argc, argv, 2, 1);
    if (argc < 4 || (strcmp(argv[3], "raw") != 0 && strcmp(argv[3], "hooked") != 0)) {
        fprintf(stderr, "usage: hookrw [rounds] [procs] hooked|raw\n");
        return 2;
    }
    raw = strcmp(argv[3], "raw") == 0;
    gr_init(procs);
    gr_join(gr_spawn(loop, NULL));
    printf("hookrw ns_per_rw=%.1f cpu_ns_per_rw=%.1f\n", (double)wall / (double)rounds,
           (double)cpu / (double)rounds);
    return 0;
}
