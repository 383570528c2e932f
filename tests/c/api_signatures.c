/*
 * The header declares the C API with exactly the documented types: each function
 * is assigned to a pointer of its documented type (-Werror turns a mismatch into a
 * build failure), and the layout of gr_attr and gr_id is checked statically.
 */
#include "check.h"

#include <stddef.h>

_Static_assert(sizeof(gr_id) == 8 && (gr_id)-1 < 0, "gr_id is int64_t");
_Static_assert(sizeof(gr_attr) == 24, "gr_attr is { size_t; const char *; unsigned }");
_Static_assert(offsetof(gr_attr, stack_size) == 0, "gr_attr.stack_size");
_Static_assert(offsetof(gr_attr, name) == 8, "gr_attr.name");
_Static_assert(offsetof(gr_attr, flags) == 16, "gr_attr.flags");
_Static_assert(sizeof(gr_once) == 24, "gr_once: 24 bytes, caller-allocated");

static void fn(void *arg)
{
    (void)arg;
}

static int task(void *arg)
{
    (void)arg;
    return 0;
}

int main(void)
{
    gr_fn f = fn;
    int64_t *id_is_int64 = (gr_id[1]){ 0 };
    size_t *stack_size_is_size_t = &(gr_attr){ 0, NULL, 0 }.stack_size;
    const char **name_is_const_char_p = &(gr_attr){ 0, NULL, 0 }.name;
    unsigned *flags_is_unsigned = &(gr_attr){ 0, NULL, 0 }.flags;

    const char *(*p_version)(void) = gr_version;
    const char *(*p_strerror)(int) = gr_strerror;
    int (*p_init)(int) = gr_init;
    int (*p_maxprocs)(int) = gr_maxprocs;
    int (*p_main)(gr_fn, void *) = gr_main;
    int (*p_wait_all)(void) = gr_wait_all;
    int (*p_shutdown)(void) = gr_shutdown;
    gr_id (*p_spawn)(gr_fn, void *) = gr_spawn;
    gr_id (*p_spawn_attr)(gr_fn, void *, const gr_attr *) = gr_spawn_attr;
    int (*p_join)(gr_id) = gr_join;
    void (*p_yield)(void) = gr_yield;
    gr_id (*p_self)(void) = gr_self;
    size_t (*p_count)(void) = gr_count;
    int (*p_lock)(void) = gr_lock_thread;
    int (*p_unlock)(void) = gr_unlock_thread;

    /* Contexts and groups, with the types issue 17 gives. */
    gr_task_fn tf = task;
    struct gr_ctx *(*p_ctx_new)(struct gr_ctx *) = gr_ctx_new;
    struct gr_ctx *(*p_ctx_with_timeout)(struct gr_ctx *, int64_t) = gr_ctx_with_timeout;
    int (*p_ctx_cancel)(struct gr_ctx *) = gr_ctx_cancel;
    int (*p_ctx_err)(struct gr_ctx *) = gr_ctx_err;
    struct gr_chan *(*p_ctx_done)(struct gr_ctx *) = gr_ctx_done;
    int (*p_ctx_free)(struct gr_ctx *) = gr_ctx_free;
    gr_id (*p_spawn_ctx)(struct gr_ctx *, gr_fn, void *) = gr_spawn_ctx;
    struct gr_ctx *(*p_ctx_current)(void) = gr_ctx_current;
    int (*p_ctx_swap)(struct gr_ctx *, struct gr_ctx **) = gr_ctx_swap;
    struct gr_group *(*p_group_new)(struct gr_ctx *) = gr_group_new;
    int (*p_group_limit)(struct gr_group *, int) = gr_group_limit;
    gr_id (*p_group_go)(struct gr_group *, gr_task_fn, void *) = gr_group_go;
    int (*p_group_wait)(struct gr_group *) = gr_group_wait;
    struct gr_ctx *(*p_group_ctx)(struct gr_group *) = gr_group_ctx;
    int (*p_group_cancel)(struct gr_group *) = gr_group_cancel;
    int (*p_group_free)(struct gr_group *) = gr_group_free;
    const void *ctx_fns[] = {
        (const void *)tf,           (const void *)p_ctx_new,     (const void *)p_ctx_with_timeout,
        (const void *)p_ctx_cancel, (const void *)p_ctx_err,     (const void *)p_ctx_done,
        (const void *)p_ctx_free,   (const void *)p_spawn_ctx,   (const void *)p_ctx_current,
        (const void *)p_ctx_swap,   (const void *)p_group_new,   (const void *)p_group_limit,
        (const void *)p_group_go,   (const void *)p_group_wait,  (const void *)p_group_ctx,
        (const void *)p_group_cancel, (const void *)p_group_free,
    };
    for (size_t i = 0; i < sizeof ctx_fns / sizeof ctx_fns[0]; i++)
        CHECK(ctx_fns[i] != NULL);

    const void *all[] = { (const void *)f,          id_is_int64,
                          stack_size_is_size_t,     name_is_const_char_p,
                          flags_is_unsigned,        (const void *)p_version,
                          (const void *)p_strerror, (const void *)p_init,
                          (const void *)p_maxprocs, (const void *)p_main,
                          (const void *)p_wait_all, (const void *)p_shutdown,
                          (const void *)p_spawn,    (const void *)p_spawn_attr,
                          (const void *)p_join,     (const void *)p_yield,
                          (const void *)p_self,     (const void *)p_count,
                          (const void *)p_lock,     (const void *)p_unlock };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CHECK(all[i] != NULL);

    /* Issue 17's signatures, exactly as the issue gives them (timers, RWMutex, Cond,
     * Once, semaphores, signals, waitpid); and the ones added beside them. */
    struct gr_timer *(*p_timer_new)(int64_t, int64_t) = gr_timer_new;
    struct gr_chan *(*p_timer_chan)(struct gr_timer *) = gr_timer_chan;
    int (*p_timer_stop)(struct gr_timer *) = gr_timer_stop;
    int (*p_timer_reset)(struct gr_timer *, int64_t, int64_t) = gr_timer_reset;
    int (*p_timer_free)(struct gr_timer *) = gr_timer_free;
    struct gr_rwmutex *(*p_rw_new)(void) = gr_rwmutex_new;
    int (*p_rw[])(struct gr_rwmutex *) = { gr_rwmutex_rlock, gr_rwmutex_runlock, gr_rwmutex_lock,
                                           gr_rwmutex_unlock, gr_rwmutex_free,
                                           gr_rwmutex_tryrlock, gr_rwmutex_trylock };
    struct gr_cond *(*p_cond_new)(struct gr_mutex *) = gr_cond_new;
    int (*p_cond[])(struct gr_cond *) = { gr_cond_wait, gr_cond_signal, gr_cond_broadcast,
                                          gr_cond_free };
    int (*p_cond_wait_timeout)(struct gr_cond *, int64_t) = gr_cond_wait_timeout;
    static gr_once once_is_complete = GR_ONCE_INIT; /* a complete type, statically zero */
    int (*p_once_do)(gr_once *, gr_fn, void *) = gr_once_do;
    struct gr_sem *(*p_sem_new)(int64_t) = gr_sem_new;
    int (*p_sem[])(struct gr_sem *, int64_t) = { gr_sem_acquire, gr_sem_try_acquire,
                                                 gr_sem_release };
    int (*p_sem_acquire_timeout)(struct gr_sem *, int64_t, int64_t) = gr_sem_acquire_timeout;
    int (*p_sem_free)(struct gr_sem *) = gr_sem_free;
    int (*p_signal_notify)(struct gr_chan *, int) = gr_signal_notify;
    int (*p_signal_stop)(struct gr_chan *) = gr_signal_stop;
    int (*p_waitpid)(pid_t, int *, int) = gr_waitpid;
    const void *toolbox[] = {
        (const void *)p_timer_new, (const void *)p_timer_chan,  (const void *)p_timer_stop,
        (const void *)p_timer_reset, (const void *)p_timer_free, (const void *)p_rw_new,
        (const void *)p_rw[0],     (const void *)p_cond_new,    (const void *)p_cond[0],
        (const void *)p_cond_wait_timeout, &once_is_complete,   (const void *)p_once_do,
        (const void *)p_sem_new,   (const void *)p_sem[0],      (const void *)p_sem_acquire_timeout,
        (const void *)p_sem_free,  (const void *)p_signal_notify, (const void *)p_signal_stop,
        (const void *)p_waitpid,
    };
    for (size_t i = 0; i < sizeof toolbox / sizeof toolbox[0]; i++)
        CHECK(toolbox[i] != NULL);
    CHECK_EQ(p_join(p_spawn(fn, NULL)), 0);
    puts("ok");
    return 0;
}
