/*
 * The read and write families (read, readv, recv, recvfrom, recvmsg, write, writev,
 * send, sendto, sendmsg, and the _FORTIFY_SOURCE variants __read_chk, __recv_chk,
 * __recvfrom_chk), accept, accept4 and connect.
 *
 * Every call is described once as a `struct op` and goes through one path
 * (`hooked_io`): straight to libc unless the caller is a goroutine and the fd is a
 * pollable file the program keeps blocking; then the call is made non-blocking for
 * itself alone (MSG_DONTWAIT on sockets, RWF_NOWAIT on pipes and the like, see
 * fdtable.c for why never O_NONBLOCK) and, on EAGAIN, the goroutine parks until the
 * fd's next readiness edge and tries again. After a read that got less than it asked
 * of a TCP socket, the next read waits for that edge first, without the call that
 * would say EAGAIN, when the runtime knows the socket was emptied
 * (gr_io_note_short_read / gr_io_read_drained).
 *
 * What blocking calls promise is kept: a write to a blocking stream socket or pipe
 * returns only when all of it is written (or after an error or SO_SNDTIMEO, with the
 * count written so far), recv with MSG_WAITALL on a stream fills the buffer or ends
 * at end of file, SO_RCVTIMEO/SO_SNDTIMEO give EAGAIN (EINPROGRESS for connect), and
 * errno values are the system call's own.
 */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum op_kind { OP_READ, OP_READV, OP_RECV, OP_RECVFROM, OP_RECVMSG,
               OP_WRITE, OP_WRITEV, OP_SEND, OP_SENDTO, OP_SENDMSG };

struct op {
    enum op_kind kind;
    int fd;
    int flags;                   /* the program's MSG_* flags */
    void *buf;                   /* read, recv, recvfrom; write, send, sendto (const) */
    size_t n;
    const struct iovec *iov;     /* readv, writev */
    int iovcnt;
    struct msghdr *msg;          /* recvmsg, sendmsg (const) */
    struct sockaddr *addr;       /* recvfrom's source, sendto's destination (const) */
    socklen_t *addrlen;          /* recvfrom */
    socklen_t daddrlen;          /* sendto */
};

static int is_write(const struct op *o)
{
    return o->kind >= OP_WRITE;
}

/* Calls that only sockets take (libc says ENOTSOCK for anything else). */
static int socket_only(const struct op *o)
{
    return o->kind != OP_READ && o->kind != OP_READV && o->kind != OP_WRITE &&
           o->kind != OP_WRITEV;
}

/* The call as the program made it. */
static ssize_t op_plain(const struct op *o)
{
    switch (o->kind) {
    case OP_READ: return real.read(o->fd, o->buf, o->n);
    case OP_READV: return real.readv(o->fd, o->iov, o->iovcnt);
    case OP_RECV: return real.recv(o->fd, o->buf, o->n, o->flags);
    case OP_RECVFROM: return real.recvfrom(o->fd, o->buf, o->n, o->flags, o->addr, o->addrlen);
    case OP_RECVMSG: return real.recvmsg(o->fd, o->msg, o->flags);
    case OP_WRITE: return real.write(o->fd, o->buf, o->n);
    case OP_WRITEV: return real.writev(o->fd, o->iov, o->iovcnt);
    case OP_SEND: return real.send(o->fd, o->buf, o->n, o->flags);
    case OP_SENDTO:
        return real.sendto(o->fd, o->buf, o->n, o->flags, o->addr, o->daddrlen);
    case OP_SENDMSG: return real.sendmsg(o->fd, o->msg, o->flags);
    }
    return hook_fail(EINVAL);
}

/* The bytes the call asks for (the sum of its iovecs). */
static size_t op_len(const struct op *o)
{
    const struct iovec *iov = o->iov;
    int cnt = o->iovcnt;
    if (o->kind == OP_RECVMSG || o->kind == OP_SENDMSG) {
        iov = o->msg->msg_iov;
        cnt = (int)o->msg->msg_iovlen;
    } else if (o->kind != OP_READV && o->kind != OP_WRITEV) {
        return o->n;
    }
    size_t sum = 0;
    for (int i = 0; i < cnt; i++)
        sum += iov[i].iov_len;
    return sum;
}

/* The iovecs of `o` less the first `done` bytes, in `out` (cnt entries). Returns the
 * entries used. */
static int iov_rest(const struct iovec *iov, int cnt, size_t done, struct iovec *out)
{
    int k = 0;
    for (int i = 0; i < cnt; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        out[k].iov_base = (char *)iov[i].iov_base + done;
        out[k].iov_len = iov[i].iov_len - done;
        done = 0;
        k++;
    }
    return k;
}

/* The call without blocking, from byte `done` on (done > 0 only when completing a
 * blocking write or a MSG_WAITALL read). `sock`: MSG_DONTWAIT, else RWF_NOWAIT. */
static ssize_t op_nowait(const struct op *o, size_t done, int sock)
{
    const struct iovec *iov = o->iov;
    int cnt = o->iovcnt;
    struct iovec one, small[16], *rest = small;
    struct msghdr m;
    if (o->kind == OP_RECVMSG || o->kind == OP_SENDMSG) {
        iov = o->msg->msg_iov;
        cnt = (int)o->msg->msg_iovlen;
    } else if (o->kind != OP_READV && o->kind != OP_WRITEV) {
        one.iov_base = (char *)o->buf + done;
        one.iov_len = o->n - done;
        iov = &one;
        cnt = 1;
        done = 0;
    }
    if (done > 0) {
        if (cnt > 16 && !(rest = malloc(sizeof *rest * (size_t)cnt)))
            return hook_fail(ENOMEM);
        cnt = iov_rest(iov, cnt, done, rest);
        iov = rest;
    }
    ssize_t r;
    int fl = o->flags | MSG_DONTWAIT;
    if (!sock) {
        r = is_write(o) ? pwritev2(o->fd, iov, cnt, -1, RWF_NOWAIT)
                        : preadv2(o->fd, iov, cnt, -1, RWF_NOWAIT);
    } else if (o->kind == OP_READ || o->kind == OP_RECV) {
        r = real.recv(o->fd, iov->iov_base, iov->iov_len, fl);
    } else if (o->kind == OP_WRITE || o->kind == OP_SEND) {
        r = real.send(o->fd, iov->iov_base, iov->iov_len, fl);
    } else if (o->kind == OP_RECVFROM) {
        r = real.recvfrom(o->fd, iov->iov_base, iov->iov_len, fl, o->addr, o->addrlen);
    } else if (o->kind == OP_SENDTO) {
        r = real.sendto(o->fd, iov->iov_base, iov->iov_len, fl, o->addr, o->daddrlen);
    } else {
        memset(&m, 0, sizeof m);
        if (o->msg) {
            m = *o->msg;
            if (done > 0) { /* the ancillary data went with the first part */
                m.msg_control = NULL;
                m.msg_controllen = 0;
            }
        }
        m.msg_iov = (struct iovec *)iov;
        m.msg_iovlen = (size_t)cnt;
        r = is_write(o) ? real.sendmsg(o->fd, &m, fl) : real.recvmsg(o->fd, &m, fl);
        if (o->kind == OP_RECVMSG && r >= 0) {
            o->msg->msg_namelen = m.msg_namelen;
            o->msg->msg_controllen = m.msg_controllen;
            o->msg->msg_flags = m.msg_flags;
        }
    }
    if (rest != small)
        free(rest);
    return r;
}

/* Waits for the fd's next readiness edge in `dir`, within the socket's SO_RCVTIMEO /
 * SO_SNDTIMEO counted from the call's first wait (*deadline: -1 until then). 0, or
 * an errno value. */
static int wait_edge_within(const struct op *o, struct fd_entry *e, int dir, int sock,
                            int64_t *deadline)
{
    if (*deadline == -1)
        *deadline = hook_deadline(sock ? fd_timeout(o->fd, e, dir) : -1);
    return hook_wait_edge(o->fd, dir, *deadline);
}

/* A socket or pollable file on a goroutine, which the program keeps blocking. */
static ssize_t park_io(struct op *o, struct fd_entry *e, uint32_t f)
{
    int dir = is_write(o) ? GR_WRITE : GR_READ;
    int sock = (f & FD_SOCK) != 0;
    /* Writes complete; so do MSG_WAITALL reads on a stream socket. */
    int complete = is_write(o) ? (f & (FD_STREAM | FD_SOCK)) != FD_SOCK
                               : sock && (f & FD_STREAM) && (o->flags & MSG_WAITALL);
    size_t total = complete ? op_len(o) : 0, done = 0;
    int64_t deadline = -1;
    /* A read that consumes what it gets from a stream socket: after one that got less
     * than asked, the runtime may know that the next would say EAGAIN and wait for
     * the next edge first (gr_io_read_drained; one system call fewer per request in
     * a server). */
    int drains = !is_write(o) && !complete && sock && (f & FD_STREAM) &&
                 !(o->flags & (MSG_PEEK | MSG_OOB));
    if (drains && gr_io_read_drained(o->fd) == 1) {
        int w = wait_edge_within(o, e, dir, sock, &deadline);
        if (w)
            return hook_fail(w);
    }
    for (;;) {
        ssize_t r = op_nowait(o, done, sock);
        if (r >= 0) {
            done += (size_t)r;
            if (drains && r > 0 && (size_t)r < op_len(o))
                gr_io_note_short_read(o->fd);
            if (!complete || done >= total || r == 0)
                return complete ? (ssize_t)done : r;
            continue;
        }
        int err = hook_get_errno();
        if (err == EOPNOTSUPP && !sock) {
            /* No RWF_NOWAIT for this file: wait until readable or writable as poll(2)
             * says, then make the blocking call (remembered for the fd). */
            atomic_fetch_or(&e->flags, FD_NO_NOWAIT);
            break;
        }
        if (err == ENOTSOCK && sock && done == 0) {
            /* The entry was stale: a file closed behind the layer's back. */
            return -2;
        }
        if (err != EAGAIN)
            return done ? (ssize_t)done : -1;
        int w = wait_edge_within(o, e, dir, sock, &deadline);
        if (w)
            return done ? (ssize_t)done : hook_fail(w);
    }
    int w = hook_wait_ready(o->fd, dir, INT64_MAX);
    if (w)
        return done ? (ssize_t)done : hook_fail(w);
    if (done == 0)
        return op_plain(o);
    /* The rest of a write begun with RWF_NOWAIT (old kernels only). */
    ssize_t r;
    struct op rest = *o;
    rest.kind = OP_WRITE;
    if (o->kind == OP_WRITE) {
        rest.buf = (char *)o->buf + done;
        rest.n = o->n - done;
        r = op_plain(&rest);
    } else {
        struct iovec *v = malloc(sizeof *v * (size_t)o->iovcnt);
        if (!v)
            return (ssize_t)done;
        rest.kind = OP_WRITEV;
        rest.iov = v;
        rest.iovcnt = iov_rest(o->iov, o->iovcnt, done, v);
        r = op_plain(&rest);
        free(v);
    }
    return r < 0 ? (ssize_t)done : (ssize_t)done + r;
}

static ssize_t hooked_io(struct op *o)
{
    HOOK_ENTER();
    if (!on_goroutine())
        return op_plain(o);
    for (int tries = 0; tries < 2; tries++) {
        struct fd_entry *e = tries ? fd_reclassify(o->fd) : fd_get(o->fd);
        if (!e)
            return op_plain(o);
        uint32_t f = atomic_load(&e->flags);
        if ((f & (FD_PASS | FD_USER_NB | FD_NO_NOWAIT)) == FD_NO_NOWAIT && !socket_only(o)) {
            int w = hook_wait_ready(o->fd, is_write(o) ? GR_WRITE : GR_READ, INT64_MAX);
            return w ? hook_fail(w) : op_plain(o);
        }
        if ((f & (FD_PASS | FD_USER_NB)) || (o->flags & MSG_DONTWAIT) ||
            (!(f & FD_SOCK) && socket_only(o)))
            return op_plain(o);
        ssize_t r = park_io(o, e, f);
        if (r != -2)
            return r;
    }
    return op_plain(o);
}

/* ---------------------------------------------------------------- the family */

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    struct op o = {.kind = OP_READ, .fd = fd, .buf = buf, .n = n};
    return hooked_io(&o);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    struct op o = {.kind = OP_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return hooked_io(&o);
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    struct op o = {.kind = OP_RECV, .fd = fd, .buf = buf, .n = n, .flags = flags};
    return hooked_io(&o);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                        socklen_t *addrlen)
{
    struct op o = {.kind = OP_RECVFROM, .fd = fd, .buf = buf, .n = n, .flags = flags,
                   .addr = addr, .addrlen = addrlen};
    return hooked_io(&o);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (!msg) {
        HOOK_ENTER();
        return real.recvmsg(fd, msg, flags);
    }
    struct op o = {.kind = OP_RECVMSG, .fd = fd, .msg = msg, .flags = flags};
    return hooked_io(&o);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    struct op o = {.kind = OP_WRITE, .fd = fd, .buf = (void *)buf, .n = n};
    return hooked_io(&o);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct op o = {.kind = OP_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt};
    return hooked_io(&o);
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    struct op o = {.kind = OP_SEND, .fd = fd, .buf = (void *)buf, .n = n, .flags = flags};
    return hooked_io(&o);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                      socklen_t addrlen)
{
    struct op o = {.kind = OP_SENDTO, .fd = fd, .buf = (void *)buf, .n = n, .flags = flags,
                   .addr = (struct sockaddr *)addr, .daddrlen = addrlen};
    return hooked_io(&o);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (!msg) {
        HOOK_ENTER();
        return real.sendmsg(fd, msg, flags);
    }
    struct op o = {.kind = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg, .flags = flags};
    return hooked_io(&o);
}

/* _FORTIFY_SOURCE: the same calls after glibc's buffer-size check. */
extern void __chk_fail(void) __attribute__((noreturn));

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return read(fd, buf, n);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        __chk_fail();
    return recv(fd, buf, n, flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                              struct sockaddr *addr, socklen_t *addrlen)
{
    if (n > buflen)
        __chk_fail();
    return recvfrom(fd, buf, n, flags, addr, addrlen);
}

/* ---------------------------------------------------------------- accept, connect */

/* The new fd of an accept: a socket of the listener's kind, created here. The kernel
 * copies the listener's timeouts to it. */
static void accepted(int fd, struct fd_entry *listener, int flags)
{
    uint32_t f = FD_SOCK | (flags & SOCK_NONBLOCK ? FD_USER_NB : 0);
    int64_t rcv = 0, snd = 0;
    if (listener) {
        uint32_t lf = atomic_load(&listener->flags);
        f |= lf & (FD_STREAM | FD_TIMEO_KNOWN);
        rcv = atomic_load(&listener->rcvtimeo_ns);
        snd = atomic_load(&listener->sndtimeo_ns);
    }
    fd_created(fd, f, rcv, snd);
}

static int accept_any(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four)
{
    HOOK_ENTER();
    struct fd_entry *e = NULL;
    uint32_t f = 0;
    if (hook_on && (e = on_goroutine() ? fd_get(fd) : fd_peek(fd)))
        f = atomic_load(&e->flags);
    int blocking = (f & FD_SOCK) && !(f & FD_USER_NB);
    int nfd;
    if (blocking && on_goroutine()) {
        int64_t deadline = hook_deadline(fd_timeout(fd, e, GR_READ));
        if ((f & FD_OWN) && !(f & FD_KERNEL_NB) && fd_make_kernel_nonblocking(fd, e) == 0)
            f |= FD_KERNEL_NB;
        if (f & FD_KERNEL_NB) {
            while ((nfd = real.accept4(fd, addr, len, flags)) < 0) {
                int err = hook_get_errno();
                if (err != EAGAIN)
                    return -1;
                if ((err = hook_wait_edge(fd, GR_READ, deadline)))
                    return (int)hook_fail(err);
            }
        } else {
            /* A listener this process did not create: its file's flags are not ours
             * to change (fdtable.c). */
            int err = hook_wait_ready(fd, GR_READ, deadline);
            if (err)
                return (int)hook_fail(err);
            nfd = four ? real.accept4(fd, addr, len, flags) : real.accept(fd, addr, len);
        }
    } else if (blocking && (f & FD_KERNEL_NB)) {
        /* A plain thread on a listener the layer made non-blocking: block in poll(2). */
        int64_t t = fd_timeout(fd, e, GR_READ);
        int ms = t < 0 ? -1 : (int)((t + 999999) / 1000000);
        while ((nfd = real.accept4(fd, addr, len, flags)) < 0) {
            if (hook_get_errno() != EAGAIN)
                return -1;
            struct pollfd p = {.fd = fd, .events = POLLIN};
            int r = real.poll(&p, 1, ms);
            if (r == 0)
                return (int)hook_fail(EAGAIN);
            if (r < 0 && hook_get_errno() != EINTR)
                return -1;
        }
    } else {
        nfd = four ? real.accept4(fd, addr, len, flags) : real.accept(fd, addr, len);
    }
    if (nfd >= 0 && hook_on)
        accepted(nfd, e, flags);
    return nfd;
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return accept_any(fd, addr, len, 0, 0);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return accept_any(fd, addr, len, flags, 1);
}

/* connect on a blocking socket: the connect itself with O_NONBLOCK set for the call,
 * then park until poll(2) says writable (connected or refused) and report SO_ERROR,
 * as the kernel's blocking connect does. SO_SNDTIMEO expiring gives EINPROGRESS. */
EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    HOOK_ENTER();
    struct fd_entry *e;
    uint32_t f;
    if (!on_goroutine() || !(e = fd_get(fd)) || !((f = atomic_load(&e->flags)) & FD_SOCK) ||
        (f & FD_USER_NB))
        return real.connect(fd, addr, len);
    int64_t deadline = hook_deadline(fd_timeout(fd, e, GR_WRITE));
    for (;;) {
        int fl = -1, r, err = 0;
        if (!(f & FD_KERNEL_NB)) {
            fl = real.fcntl(fd, F_GETFL);
            if (fl < 0 || real.fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -1;
        }
        r = real.connect(fd, addr, len);
        if (r < 0)
            err = hook_get_errno();
        if (fl >= 0)
            real.fcntl(fd, F_SETFL, fl);
        if (r == 0)
            return 0;
        if (err == EAGAIN) {
            /* A Unix socket whose listener's backlog is full: wait, then again. */
            int w = hook_wait_ready(fd, GR_WRITE, deadline);
            if (w)
                return (int)hook_fail(w);
            continue;
        }
        if (err != EINPROGRESS && err != EINTR)
            return (int)hook_fail(err);
        int w = hook_wait_ready(fd, GR_WRITE, deadline);
        if (w)
            return (int)hook_fail(w == EAGAIN ? EINPROGRESS : w);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            return -1;
        return soerr ? (int)hook_fail(soerr) : 0;
    }
}
