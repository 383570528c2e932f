/*
 * The mprotect guard-page fallback has a budget (GR_GUARD_BUDGET, here 200): past
 * it spawn returns -EAGAIN, while malloc(1 MiB) and pthread_create still work; once
 * the parked goroutines finish, spawning works again. The program re-executes
 * itself with GR_GUARD=mprotect GR_GUARD_BUDGET=200 when they are not set.
 *
 * Parked goroutines wait in gr_join on a gate goroutine that yields until released.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#define BUDGET 200
#define CAP 20000

static atomic_int release_gate;
static gr_id gate;

static void gate_fn(void *arg)
{
    (void)arg;
    while (!atomic_load(&release_gate))
        gr_yield();
}

static void parked(void *arg)
{
    (void)arg;
    gr_join(gate);
}

static void noop(void *arg)
{
    (void)arg;
}

static void *thread_fn(void *arg)
{
    return arg;
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *g = getenv("GR_GUARD"), *b = getenv("GR_GUARD_BUDGET");
    if (!g || strcmp(g, "mprotect") != 0 || !b || atoi(b) != BUDGET) {
        setenv("GR_GUARD", "mprotect", 1);
        setenv("GR_GUARD_BUDGET", "200", 1);
        execv("/proc/self/exe", argv);
        FAIL("execv: %s", strerror(errno));
    }
    watchdog(30);

    gate = SPAWN(gate_fn, NULL);
    int spawned = 0;
    gr_id id = 0;
    while (spawned < CAP) {
        id = gr_spawn(parked, NULL);
        if (id <= 0)
            break;
        spawned++;
    }
    if (id > 0)
        FAIL("%d goroutines spawned with a guard budget of %d: no -EAGAIN", spawned, BUDGET);
    if (id != -EAGAIN)
        FAIL("spawn #%d returned %lld (%s), expected -EAGAIN", spawned + 1, (long long)id,
             gr_strerror((int)id));
    if (spawned > BUDGET)
        FAIL("%d goroutines spawned before -EAGAIN with a guard budget of %d", spawned, BUDGET);
    CHECK(spawned > 0);

    /* The process is not starved of memory maps. */
    for (int i = 0; i < 16; i++) {
        char *p = malloc(1 << 20);
        CHECK(p != NULL);
        memset(p, i, 1 << 20);
        free(p);
    }
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_fn, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(gr_spawn(noop, NULL), -EAGAIN);
    long maps = map_count();

    /* Release: everything finishes, and spawning works again. */
    atomic_store(&release_gate, 1);
    CHECK_EQ(gr_wait_all(), 0);
    CHECK_EQ(gr_count(), 0);
    for (int i = 0; i < 3 * BUDGET; i++)
        CHECK_EQ(gr_join(SPAWN(noop, NULL)), 0);

    printf("%d parked goroutines, then -EAGAIN (budget %d, %ld memory maps); malloc and "
           "pthread_create still worked\n",
           spawned, BUDGET, maps);
    puts("ok");
    return 0;
}
