/*
 * libgoroutine_hook.so: unchanged blocking C code (hiredis, libcurl's easy API, libpq)
 * parks goroutines instead of blocking threads.
 *
 * The layer interposes libc's blocking calls (the list is in hook.h's file map and in
 * docs/guide.md, "Using blocking libraries"). Each hook decides per call:
 *   - not on a goroutine (gr_self() <= 0: a plain thread, a worker's scheduler
 *     context, sysmon, a forked child), or the layer is off (GR_HOOK=0): libc's call,
 *     found once with dlsym(RTLD_NEXT) and kept in `real`;
 *   - an fd epoll cannot wait on (regular file, directory, device, tty), or one the
 *     program made non-blocking: libc's call;
 *   - otherwise the call is made without blocking and, on EAGAIN, the goroutine parks
 *     through the netpoller (gr_io_wait: no poll(2) first, the EAGAIN was the check)
 *     and tries again; the thread runs other goroutines meanwhile.
 * What the program sees is what libc promises: blocking fds block (park) and
 * complete writes, its own O_NONBLOCK gives EAGAIN at once, SO_RCVTIMEO/SO_SNDTIMEO
 * give EAGAIN after the timeout, errno values are libc's. One addition: once the
 * goroutine's context (gr_ctx) is cancelled, a hooked call that would wait fails at
 * once with errno ECANCELED (ETIMEDOUT when a deadline passed), so an unmodified
 * library returns its own error (hook_ctx_err).
 *
 * Why C: fcntl and ioctl are variadic, and interposing a variadic function cannot be
 * written in stable Rust. Why a separate library: a program that does not want the
 * hooks does not get them; it is enabled with LD_PRELOAD or by linking it (it links
 * libgoroutine itself, so LD_PRELOAD works on any binary that links libgoroutine).
 *
 * The runtime never reaches these hooks itself: it makes the same system calls
 * through src/runtime/sys.rs, directly (tests/hook.rs checks).
 *
 * errno: a goroutine may resume on another thread after parking, and gcc keeps the
 * address of a thread-local across calls within one function. So this library reads
 * and writes errno only through hook_get_errno/hook_set_errno (noipa: never inlined
 * nor analysed, so each call asks for the current thread's errno).
 */
#include "hook.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

HIDDEN struct real_fns real;
HIDDEN atomic_int hook_ready;
HIDDEN int hook_on;

static void resolve(void **slot, const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        /* Without the real function nothing can work: say which, and stop. */
        static const char msg[] = "libgoroutine_hook: fatal error: no libc function ";
        syscall(SYS_write, 2, msg, sizeof msg - 1);
        syscall(SYS_write, 2, name, strlen(name));
        syscall(SYS_write, 2, "\n", 1);
        abort();
    }
    *slot = f;
}

static void resolve_all(void)
{
#define R(name) resolve((void **)&real.name, #name)
    R(socket); R(socketpair); R(pipe); R(pipe2); R(accept); R(accept4); R(connect);
    R(read); R(readv); R(recv); R(recvfrom); R(recvmsg);
    R(write); R(writev); R(send); R(sendto); R(sendmsg);
    R(poll); R(ppoll); R(select); R(pselect);
    R(epoll_create); R(epoll_create1); R(epoll_wait); R(epoll_pwait);
    R(sleep); R(usleep); R(nanosleep); R(clock_nanosleep);
    R(close); R(fclose); R(dup); R(dup2); R(dup3); R(fcntl); R(fcntl64); R(ioctl);
    R(setsockopt);
    R(getaddrinfo); R(getnameinfo); R(gethostbyname); R(gethostbyname2);
    R(gethostbyname_r); R(gethostbyname2_r);
#undef R
    const char *v = getenv("GR_HOOK");
    hook_on = !(v && strcmp(v, "0") == 0);
    atomic_store_explicit(&hook_ready, 1, memory_order_release);
}

HIDDEN void hook_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, resolve_all);
}

/* At load time, so that the first hooked call pays nothing. */
__attribute__((constructor)) static void hook_load(void)
{
    hook_init();
}

__attribute__((noinline, noipa)) HIDDEN int hook_get_errno(void)
{
    return errno;
}

__attribute__((noinline, noipa)) HIDDEN void hook_set_errno(int e)
{
    errno = e;
}

HIDDEN long hook_fail(int e)
{
    hook_set_errno(e);
    return -1;
}

HIDDEN int64_t hook_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

HIDDEN int64_t hook_deadline(int64_t ns)
{
    if (ns < 0)
        return INT64_MAX;
    int64_t now = hook_now();
    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

HIDDEN int64_t hook_left(int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t left = deadline - hook_now();
    return left > 0 ? left : 0;
}

/* A wait's result as the errno a blocking call would have given. A wait that the
 * goroutine's context ended (gr_ctx: cancelled, or its deadline passed) fails the
 * call with the context's error, ECANCELED or ETIMEDOUT, whatever else the code
 * could mean: so a library's blocking call returns its own error at once. */
static int wait_result(int rc)
{
    if (rc > 0)
        return 0;
    int ctx_err = hook_ctx_err(rc);
    if (ctx_err)
        return ctx_err;
    switch (-rc) {
    case ETIMEDOUT:
        return EAGAIN; /* SO_RCVTIMEO/SO_SNDTIMEO expired */
    case ECANCELED:
        return EBADF; /* closed (or replaced by dup2) while we waited */
    default:
        return -rc;
    }
}

HIDDEN int hook_ctx_err(int rc)
{
    if (rc != -ECANCELED && rc != -ETIMEDOUT)
        return 0;
    struct gr_ctx *c = gr_ctx_current();
    int e = c ? gr_ctx_err(c) : 0;
    return e < 0 ? -e : 0;
}

HIDDEN int hook_wait_edge(int fd, int dir, int64_t deadline)
{
    int64_t left = hook_left(deadline);
    if (left == 0)
        return EAGAIN;
    return wait_result(gr_io_wait(fd, dir, left));
}

HIDDEN int hook_wait_ready(int fd, int dir, int64_t deadline)
{
    int64_t left = hook_left(deadline);
    if (left == 0)
        return EAGAIN;
    return wait_result(gr_block_io(fd, dir, left));
}
