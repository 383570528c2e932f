/*
 * What the pthread twins of the workloads (bench/threads_*.c) share, so that each
 * program holds only its workload:
 *
 *   struct tchan        a channel of `long` between OS threads: one slot guarded by
 *                       a mutex, with a condition variable for each direction (the
 *                       plain way to hand a value from thread to thread; a blocked
 *                       thread sleeps in the kernel on a futex). The condition is
 *                       signalled after the mutex is released, so the woken thread
 *                       does not run into a held mutex (half the cost of signalling
 *                       under the mutex here, on 1 CPU and on 2); the price: a sender
 *                       may still touch the channel after the receiver has its value,
 *                       so destroy it only once every send has returned (skynet
 *                       counts references for that);
 *   pin_to_first_cpus   the `procs` argument: the process keeps only the first
 *                       `procs` CPUs it may run on (sched_setaffinity, inherited by
 *                       the threads made afterwards), so "1 processor" means one CPU
 *                       for threads as GOMAXPROCS=1 / gr_init(1) does for goroutines;
 *   thread_start        pthread_create with the default attributes (default stack
 *                       size: what a thread costs by default is what is measured),
 *                       joinable or detached, dying with a clear message at a
 *                       system limit (pid_max, threads-max, RLIMIT_NPROC, memory).
 *
 * Timing, arguments and /proc/self/status come from bench.h, as for the C programs
 * (it includes goroutine.h for them; nothing of libgoroutine is linked here).
 */
#ifndef GR_BENCH_THREADS_H
#define GR_BENCH_THREADS_H

#include "bench.h"

#include <pthread.h>
#include <sched.h>

struct tchan {
    pthread_mutex_t mu;
    pthread_cond_t filled;  /* the slot got a value, or the channel was closed */
    pthread_cond_t emptied; /* the slot was taken */
    long value;
    int full;
    int closed;
};

static inline void tchan_init(struct tchan *c) {
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->filled, NULL);
    pthread_cond_init(&c->emptied, NULL);
    c->full = 0;
    c->closed = 0;
}

static inline void tchan_destroy(struct tchan *c) {
    pthread_cond_destroy(&c->filled);
    pthread_cond_destroy(&c->emptied);
    pthread_mutex_destroy(&c->mu);
}

/* Waits for the slot to be empty and puts v there: 0, or -EPIPE once closed. */
static inline int tchan_send(struct tchan *c, long v) {
    pthread_mutex_lock(&c->mu);
    while (c->full && !c->closed)
        pthread_cond_wait(&c->emptied, &c->mu);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        return -EPIPE;
    }
    c->value = v;
    c->full = 1;
    pthread_mutex_unlock(&c->mu);
    pthread_cond_signal(&c->filled);
    return 0;
}

/* Waits for a value and takes it: 0, or -EPIPE once closed and empty. */
static inline int tchan_recv(struct tchan *c, long *v) {
    pthread_mutex_lock(&c->mu);
    while (!c->full && !c->closed)
        pthread_cond_wait(&c->filled, &c->mu);
    if (!c->full) {
        pthread_mutex_unlock(&c->mu);
        return -EPIPE;
    }
    *v = c->value;
    c->full = 0;
    pthread_mutex_unlock(&c->mu);
    pthread_cond_signal(&c->emptied);
    return 0;
}

/* Wakes every waiter: receivers get -EPIPE once the slot is empty, senders at once. */
static inline void tchan_close(struct tchan *c) {
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    pthread_cond_broadcast(&c->filled);
    pthread_cond_broadcast(&c->emptied);
    pthread_mutex_unlock(&c->mu);
}

/* Restricts the process to the first `procs` CPUs of its current affinity mask. */
static inline void pin_to_first_cpus(int procs) {
    cpu_set_t allowed, keep;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        DIE("sched_getaffinity: %s", strerror(errno));
    CPU_ZERO(&keep);
    int kept = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && kept < procs; cpu++)
        if (CPU_ISSET(cpu, &allowed)) {
            CPU_SET(cpu, &keep);
            kept++;
        }
    if (kept < procs)
        DIE("procs=%d but this process may run on %d CPUs", procs, CPU_COUNT(&allowed));
    if (sched_setaffinity(0, sizeof keep, &keep) != 0)
        DIE("sched_setaffinity: %s", strerror(errno));
}

/* Starts fn(arg) on a new thread with the default stack; detached or joinable. */
static inline pthread_t thread_start(void *(*fn)(void *), void *arg, int detached) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (detached)
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        DIE("pthread_create: %s (limits: /proc/sys/kernel/pid_max, threads-max, ulimit -u, memory)",
            strerror(rc));
    return t;
}

#endif
