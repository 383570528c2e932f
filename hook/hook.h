/*
 * libgoroutine_hook.so: what its files share. See init.c for the layer as a whole.
 *
 *   init.c     the real libc functions (dlsym(RTLD_NEXT), resolved once), GR_HOOK,
 *              the errno helpers, the waits every hook uses
 *   fdtable.c  the fd table, and the hooks that create, change or drop its entries:
 *              socket, socketpair, pipe, pipe2, accept's new fd, epoll_create,
 *              close, fclose, dup, dup2, dup3, fcntl, ioctl(FIONBIO), setsockopt
 *   rw.c       the read and write families, accept, accept4, connect
 *   poll.c     poll, ppoll, select, pselect, epoll_wait, epoll_pwait
 *   sleep.c    sleep, usleep, nanosleep, clock_nanosleep
 *   dns.c      getaddrinfo, getnameinfo, gethostbyname(2)(_r)
 *
 * Every hook starts with HOOK_ENTER(): it resolves the real functions on first use
 * (a hook may run before this library's constructor, from another library's).
 */
#ifndef GR_HOOK_H
#define GR_HOOK_H

#define _GNU_SOURCE
#include <goroutine.h>
#include <netdb.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#define HIDDEN __attribute__((visibility("hidden")))
#define EXPORT __attribute__((visibility("default")))

/* ---------------------------------------------------------------- the real functions */

struct real_fns {
    int (*socket)(int, int, int);
    int (*socketpair)(int, int, int, int[2]);
    int (*pipe)(int[2]);
    int (*pipe2)(int[2], int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int (*epoll_create)(int);
    int (*epoll_create1)(int);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    unsigned (*sleep)(unsigned);
    int (*usleep)(useconds_t);
    int (*nanosleep)(const struct timespec *, struct timespec *);
    int (*clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
    int (*close)(int);
    int (*fclose)(FILE *);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int);
    struct hostent *(*gethostbyname)(const char *);
    struct hostent *(*gethostbyname2)(const char *, int);
    int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
    int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **,
                            int *);
};

HIDDEN extern struct real_fns real;
/* Set once the real functions are resolved; hook_on says whether the layer is on
 * (GR_HOOK=0 turns it off for the life of the process). */
HIDDEN extern atomic_int hook_ready;
HIDDEN extern int hook_on;
HIDDEN void hook_init(void);

#define HOOK_ENTER()                                                                    \
    do {                                                                                \
        if (__builtin_expect(!atomic_load_explicit(&hook_ready, memory_order_acquire), \
                             0))                                                        \
            hook_init();                                                                \
    } while (0)

/* True when the caller is a goroutine (gr_self() > 0; a plain thread, a worker's
 * scheduler context and sysmon have 0, a forked child -ECHILD) and the layer is on.
 * Only then does a hook do anything but call libc. */
static inline int on_goroutine(void)
{
    return hook_on && gr_self() > 0;
}

/* errno through functions the compiler may not inline or analyse: gcc keeps the
 * address of a thread-local (errno's included) across calls within a function, and a
 * goroutine that parked may resume on another thread. Every errno access in this
 * library goes through these. */
HIDDEN int hook_get_errno(void);
HIDDEN void hook_set_errno(int e);
/* Sets errno to e and returns -1 (the libc failure convention). */
HIDDEN long hook_fail(int e);

/* The monotonic clock in nanoseconds, and a deadline `ns` from now (ns < 0: none,
 * INT64_MAX); hook_left gives what is left of one (-1: for ever, else >= 0). */
HIDDEN int64_t hook_now(void);
HIDDEN int64_t hook_deadline(int64_t ns);
HIDDEN int64_t hook_left(int64_t deadline);

/* ---------------------------------------------------------------- the fd table */

enum {
    FD_KNOWN = 1 << 0,      /* the entry describes the fd's current file */
    FD_SOCK = 1 << 1,       /* a socket: MSG_DONTWAIT per call */
    FD_STREAM = 1 << 2,     /* a stream socket (writes are completed, MSG_WAITALL) */
    FD_PASS = 1 << 3,       /* regular file, directory, device, tty: straight to libc */
    FD_USER_NB = 1 << 4,    /* the program's O_NONBLOCK */
    FD_OWN = 1 << 5,        /* created here by a hooked call since the last fork */
    FD_KERNEL_NB = 1 << 6,  /* we set O_NONBLOCK on the kernel file (own listeners) */
    FD_NO_NOWAIT = 1 << 7,  /* RWF_NOWAIT unsupported: poll first, then the call */
    FD_TIMEO_KNOWN = 1 << 8 /* rcv/snd timeouts below are the kernel's */
};

struct fd_entry {
    _Atomic uint32_t flags;
    _Atomic int64_t rcvtimeo_ns; /* SO_RCVTIMEO, 0: none */
    _Atomic int64_t sndtimeo_ns; /* SO_SNDTIMEO, 0: none */
};

/* The entry of an fd the caller is about to use on a goroutine: classified from
 * fstat(2) on first sight. NULL: not an open fd, or beyond the table (call libc). */
HIDDEN struct fd_entry *fd_get(int fd);
/* The entry if one exists (no classification, no allocation), else NULL. */
HIDDEN struct fd_entry *fd_peek(int fd);
/* Records a file this process just created (socket, pipe, accept...) under fd, and
 * adopts it in the netpoller (every close of it passes through this layer). */
HIDDEN void fd_created(int fd, uint32_t flags, int64_t rcvtimeo_ns, int64_t sndtimeo_ns);
/* The socket timeouts of e (reads them from the kernel the first time). */
HIDDEN int64_t fd_timeout(int fd, struct fd_entry *e, int dir);
/* Forgets what the entry says (after ENOTSOCK on a "socket": a file closed behind
 * the layer's back was replaced) and classifies the fd again. */
HIDDEN struct fd_entry *fd_reclassify(int fd);
/* Makes the kernel file of an own socket non-blocking for good (listeners). */
HIDDEN int fd_make_kernel_nonblocking(int fd, struct fd_entry *e);

/* ---------------------------------------------------------------- waiting */

/* For a wait that returned rc < 0: the errno value of the goroutine's cancelled
 * context (ECANCELED, ETIMEDOUT) when rc is the context's error, else 0. */
HIDDEN int hook_ctx_err(int rc);
/* After a non-blocking attempt said EAGAIN: waits for the next edge in dir
 * (GR_READ/GR_WRITE) until deadline. 0: try again; else an errno value (EAGAIN on
 * timeout, EBADF when the fd was closed meanwhile, ECANCELED or ETIMEDOUT when the
 * goroutine's context was cancelled). */
HIDDEN int hook_wait_edge(int fd, int dir, int64_t deadline);
/* Waits until the fd is ready for dir as poll(2) says (for calls made blocking
 * afterwards). 0, or an errno value as above. */
HIDDEN int hook_wait_ready(int fd, int dir, int64_t deadline);

#endif
