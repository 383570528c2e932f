/*
 * The fd table, and the hooks that create, change or drop its entries.
 *
 * Indexed by fd number: 256 chunks of 4,096 entries (2^20 fds, the netpoller's own
 * limit), each chunk mmap'ed on first use and kept for the process. An entry is one
 * atomic flags word plus the socket timeouts, so it needs no lock: it is written
 * whole when the layer first meets the fd (classified from fstat(2)) or sees it
 * created, changed with atomic or/and, and cleared in the close hook. Beyond the
 * table, calls go straight to libc.
 *
 * What an entry records (flags in hook.h): what kind of file it is (socket, stream,
 * something epoll cannot wait on), the blocking mode the program set, whether the
 * layer made the kernel file non-blocking, whether the process created the file
 * itself, and SO_RCVTIMEO/SO_SNDTIMEO (read from the kernel when first needed, and
 * again after each setsockopt of them: the kernel rounds them, and keeps them, so
 * getsockopt needs no hook).
 *
 * O_NONBLOCK and shared files: O_NONBLOCK belongs to the open file description,
 * which a dup, an inherited stdin/stdout pipe or a pre-fork listener shares with
 * other fds and other processes. So the layer leaves it alone wherever a per-call
 * alternative exists: sockets are read and written with MSG_DONTWAIT, pipes, FIFOs
 * and the other pollable files (eventfd, timerfd...) with preadv2/pwritev2(RWF_NOWAIT)
 * (where the kernel lacks RWF_NOWAIT for a file: wait until poll(2) says ready, then
 * the blocking call), and connect sets O_NONBLOCK only for the call. The one call
 * with neither is accept: a listening socket the process created itself (since its
 * last fork) is made non-blocking for good at its first accept on a goroutine
 * (FD_KERNEL_NB; fcntl(F_GETFL) still reports the program's mode, and a plain
 * thread's accept on it still blocks, by poll(2)); on a listener it did not create
 * (inherited, pre-fork), accept waits until poll(2) says readable and then blocks,
 * which costs a thread only when another process took the connection first.
 *
 * Every fd the layer sees created (socket, socketpair, pipe, pipe2, accept,
 * epoll_create, dup...) is adopted by the netpoller (gr_io_adopt): its closes all
 * pass through the close hook (gr_close), so it stays registered with epoll between
 * waits. A file closed behind the layer's back (close_range, a raw system call) may
 * leave a later file under the same number unwatched; fclose is hooked for the
 * common case (an fdopen'ed socket).
 */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_BITS 12
#define CHUNK (1 << CHUNK_BITS)
#define NCHUNKS 256

static struct fd_entry *_Atomic chunks[NCHUNKS];

static struct fd_entry *slot(int fd, int create)
{
    if (fd < 0 || fd >= CHUNK * NCHUNKS)
        return NULL;
    struct fd_entry *c = atomic_load_explicit(&chunks[fd >> CHUNK_BITS], memory_order_acquire);
    if (!c) {
        if (!create)
            return NULL;
        c = mmap(NULL, CHUNK * sizeof *c, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
        if (c == MAP_FAILED)
            return NULL;
        struct fd_entry *none = NULL;
        if (!atomic_compare_exchange_strong(&chunks[fd >> CHUNK_BITS], &none, c)) {
            munmap(c, CHUNK * sizeof *c);
            c = none;
        }
    }
    return &c[fd & (CHUNK - 1)];
}

static uint32_t flags_of(struct fd_entry *e)
{
    return atomic_load_explicit(&e->flags, memory_order_acquire);
}

HIDDEN struct fd_entry *fd_peek(int fd)
{
    struct fd_entry *e = slot(fd, 0);
    return e && (flags_of(e) & FD_KNOWN) ? e : NULL;
}

/* What fstat(2) and fcntl(2) say about an fd first met: 0 if it is not open. */
static uint32_t classify(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return 0;
    uint32_t f = FD_KNOWN;
    switch (st.st_mode & S_IFMT) {
    case S_IFSOCK: {
        f |= FD_SOCK;
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
            f |= FD_STREAM;
        break;
    }
    case S_IFIFO:
    case 0: /* anonymous inodes: eventfd, timerfd, signalfd, epoll, inotify... */
        break;
    default: /* regular files, directories, block and character devices (ttys) */
        return f | FD_PASS;
    }
    int fl = real.fcntl(fd, F_GETFL);
    if (fl < 0)
        return 0;
    if (fl & O_NONBLOCK)
        f |= FD_USER_NB;
    return f;
}

HIDDEN struct fd_entry *fd_get(int fd)
{
    struct fd_entry *e = slot(fd, 1);
    if (!e)
        return NULL;
    if (flags_of(e) & FD_KNOWN)
        return e;
    uint32_t f = classify(fd);
    if (!f)
        return NULL;
    uint32_t none = 0;
    /* Another thread may have classified it (or seen it created) meanwhile: its
     * entry stands. */
    atomic_compare_exchange_strong(&e->flags, &none, f);
    return e;
}

HIDDEN struct fd_entry *fd_reclassify(int fd)
{
    struct fd_entry *e = slot(fd, 0);
    if (e)
        atomic_store(&e->flags, 0);
    return fd_get(fd);
}

HIDDEN void fd_created(int fd, uint32_t flags, int64_t rcvtimeo_ns, int64_t sndtimeo_ns)
{
    struct fd_entry *e = slot(fd, 1);
    if (e) {
        atomic_store_explicit(&e->rcvtimeo_ns, rcvtimeo_ns, memory_order_relaxed);
        atomic_store_explicit(&e->sndtimeo_ns, sndtimeo_ns, memory_order_relaxed);
        atomic_store_explicit(&e->flags, flags | FD_KNOWN | FD_OWN, memory_order_release);
    }
    gr_io_adopt(fd);
}

/* A new fd that shares old's file (dup and friends): the same entry, and adopted. */
static void fd_copied(int old, int fd)
{
    struct fd_entry *from = fd_peek(old), *to = slot(fd, 1);
    if (to) {
        if (from) {
            atomic_store(&to->rcvtimeo_ns, atomic_load(&from->rcvtimeo_ns));
            atomic_store(&to->sndtimeo_ns, atomic_load(&from->sndtimeo_ns));
            atomic_store(&to->flags, flags_of(from));
        } else {
            atomic_store(&to->flags, 0);
        }
    }
    gr_io_adopt(fd);
}

static int64_t timeval_ns(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}

HIDDEN int64_t fd_timeout(int fd, struct fd_entry *e, int dir)
{
    if (!(flags_of(e) & FD_TIMEO_KNOWN)) {
        struct timeval tv;
        socklen_t len = sizeof tv;
        int64_t rcv = 0, snd = 0;
        if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0)
            rcv = timeval_ns(&tv);
        len = sizeof tv;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0)
            snd = timeval_ns(&tv);
        atomic_store(&e->rcvtimeo_ns, rcv);
        atomic_store(&e->sndtimeo_ns, snd);
        atomic_fetch_or(&e->flags, FD_TIMEO_KNOWN);
    }
    int64_t t = atomic_load(dir == GR_READ ? &e->rcvtimeo_ns : &e->sndtimeo_ns);
    return t > 0 ? t : -1;
}

HIDDEN int fd_make_kernel_nonblocking(int fd, struct fd_entry *e)
{
    int fl = real.fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && real.fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -1;
    atomic_fetch_or(&e->flags, FD_KERNEL_NB);
    return 0;
}

/* After fork, every file is shared with the other process: none is "own" any more. */
static void after_fork_child(void)
{
    for (int c = 0; c < NCHUNKS; c++) {
        struct fd_entry *ch = atomic_load(&chunks[c]);
        for (int i = 0; ch && i < CHUNK; i++)
            atomic_fetch_and(&ch[i].flags, ~(uint32_t)FD_OWN);
    }
}

__attribute__((constructor)) static void fdtable_load(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

/* ---------------------------------------------------------------- creating */

static uint32_t socket_flags(int type)
{
    return FD_SOCK | ((type & 0xf) == SOCK_STREAM ? FD_STREAM : 0) |
           (type & SOCK_NONBLOCK ? FD_USER_NB : 0);
}

EXPORT int socket(int domain, int type, int protocol)
{
    HOOK_ENTER();
    int fd = real.socket(domain, type, protocol);
    if (fd >= 0 && hook_on)
        fd_created(fd, socket_flags(type) | FD_TIMEO_KNOWN, 0, 0);
    return fd;
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    HOOK_ENTER();
    int r = real.socketpair(domain, type, protocol, sv);
    if (r == 0 && hook_on) {
        fd_created(sv[0], socket_flags(type) | FD_TIMEO_KNOWN, 0, 0);
        fd_created(sv[1], socket_flags(type) | FD_TIMEO_KNOWN, 0, 0);
    }
    return r;
}

static void pipe_created(const int fds[2], int flags)
{
    uint32_t f = flags & O_NONBLOCK ? FD_USER_NB : 0;
    fd_created(fds[0], f, 0, 0);
    fd_created(fds[1], f, 0, 0);
}

EXPORT int pipe(int fds[2])
{
    HOOK_ENTER();
    int r = real.pipe(fds);
    if (r == 0 && hook_on)
        pipe_created(fds, 0);
    return r;
}

EXPORT int pipe2(int fds[2], int flags)
{
    HOOK_ENTER();
    int r = real.pipe2(fds, flags);
    if (r == 0 && hook_on)
        pipe_created(fds, flags);
    return r;
}

EXPORT int epoll_create(int size)
{
    HOOK_ENTER();
    int fd = real.epoll_create(size);
    if (fd >= 0 && hook_on)
        fd_created(fd, 0, 0, 0);
    return fd;
}

EXPORT int epoll_create1(int flags)
{
    HOOK_ENTER();
    int fd = real.epoll_create1(flags);
    if (fd >= 0 && hook_on)
        fd_created(fd, 0, 0, 0);
    return fd;
}

/* ---------------------------------------------------------------- closing */

static void fd_drop(int fd)
{
    struct fd_entry *e = slot(fd, 0);
    if (e)
        atomic_store(&e->flags, 0);
}

/* close wakes goroutines waiting on fd (they get EBADF) through gr_close, which
 * also drops the netpoller's registration and closes the fd. */
EXPORT int close(int fd)
{
    HOOK_ENTER();
    if (!hook_on)
        return real.close(fd);
    fd_drop(fd);
    int r = gr_close(fd);
    if (r == -ECHILD) /* a forked child: the runtime is not there */
        return real.close(fd);
    return r < 0 ? (int)hook_fail(-r) : 0;
}

EXPORT int fclose(FILE *fp)
{
    HOOK_ENTER();
    if (hook_on && fp) {
        int fd = fileno(fp);
        if (fd_peek(fd)) {
            /* stdio closes the fd inside libc, out of the close hook's sight. */
            fd_drop(fd);
            gr_io_adopt(fd);
        }
    }
    return real.fclose(fp);
}

/* ---------------------------------------------------------------- duplicating */

EXPORT int dup(int old)
{
    HOOK_ENTER();
    int fd = real.dup(old);
    if (fd >= 0 && hook_on)
        fd_copied(old, fd);
    return fd;
}

/* dup2/dup3 onto an open fd close it: its waiters wake with EBADF (gr_io_adopt). */
EXPORT int dup2(int old, int fd)
{
    HOOK_ENTER();
    int r = real.dup2(old, fd);
    if (r >= 0 && old != fd && hook_on)
        fd_copied(old, fd);
    return r;
}

EXPORT int dup3(int old, int fd, int flags)
{
    HOOK_ENTER();
    int r = real.dup3(old, fd, flags);
    if (r >= 0 && hook_on)
        fd_copied(old, fd);
    return r;
}

/* ---------------------------------------------------------------- flags and options */

static void set_user_nb(struct fd_entry *e, int on)
{
    if (on)
        atomic_fetch_or(&e->flags, FD_USER_NB);
    else
        atomic_fetch_and(&e->flags, ~(uint32_t)FD_USER_NB);
}

static int fcntl_hooked(int (*f)(int, int, ...), int fd, int cmd, void *arg)
{
    struct fd_entry *e;
    switch (cmd) {
    case F_GETFL: {
        int r = f(fd, cmd);
        if (r >= 0 && (e = fd_peek(fd)) && (flags_of(e) & FD_KERNEL_NB))
            r = (r & ~O_NONBLOCK) | (flags_of(e) & FD_USER_NB ? O_NONBLOCK : 0);
        return r;
    }
    case F_SETFL: {
        int v = (int)(intptr_t)arg;
        e = fd_peek(fd);
        int r = f(fd, cmd, e && (flags_of(e) & FD_KERNEL_NB) ? v | O_NONBLOCK : v);
        if (r == 0 && e)
            set_user_nb(e, v & O_NONBLOCK);
        return r;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = f(fd, cmd, arg);
        if (r >= 0)
            fd_copied(fd, r);
        return r;
    }
    default:
        return f(fd, cmd, arg);
    }
}

/* fcntl, and fcntl64 (what programs built with _FILE_OFFSET_BITS=64 call). The
 * argument is read as a pointer, as glibc's own fcntl does: every command's argument
 * (none, an int, a pointer) travels in one register on x86_64. */
#define FCNTL_HOOK(name)                                                                \
    EXPORT int name(int fd, int cmd, ...)                                               \
    {                                                                                   \
        va_list ap;                                                                     \
        va_start(ap, cmd);                                                              \
        void *arg = va_arg(ap, void *);                                                 \
        va_end(ap);                                                                     \
        HOOK_ENTER();                                                                   \
        return hook_on ? fcntl_hooked(real.name, fd, cmd, arg) : real.name(fd, cmd, arg); \
    }
FCNTL_HOOK(fcntl)
FCNTL_HOOK(fcntl64)

EXPORT int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    HOOK_ENTER();
    struct fd_entry *e;
    if (!hook_on || request != FIONBIO || !arg || !(e = fd_peek(fd)))
        return real.ioctl(fd, request, arg);
    int on = *(const int *)arg, one = 1;
    /* A file the layer keeps non-blocking stays so; the entry keeps the program's. */
    int r = real.ioctl(fd, FIONBIO, flags_of(e) & FD_KERNEL_NB ? &one : arg);
    if (r == 0)
        set_user_nb(e, on);
    return r;
}

EXPORT int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    HOOK_ENTER();
    int r = real.setsockopt(fd, level, name, value, len);
    struct fd_entry *e;
    if (r == 0 && hook_on && level == SOL_SOCKET && (e = fd_peek(fd))) {
        switch (name) {
        case SO_RCVTIMEO:
        case SO_SNDTIMEO:
#if defined(SO_RCVTIMEO_NEW) && SO_RCVTIMEO_NEW != SO_RCVTIMEO
        case SO_RCVTIMEO_NEW:
        case SO_SNDTIMEO_NEW:
#endif
            /* Read back from the kernel (which rounds them) when next needed. */
            atomic_fetch_and(&e->flags, ~(uint32_t)FD_TIMEO_KNOWN);
        }
    }
    return r;
}
