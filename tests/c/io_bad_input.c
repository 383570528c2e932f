/*
 * Bad input to the I/O calls, and files that cannot be polled, in a goroutine and on
 * a plain thread (each returns at once: a hang here fails by the watchdog):
 *   - gr_block_io on -1, INT_MIN, a huge number, a closed fd (also one that was
 *     registered with the netpoller and then closed with close(2)): -EBADF;
 *   - event masks 0, 4, -1, 8, GR_READ|4, INT_MIN: -EINVAL (also on a bad fd);
 *   - a regular file, /dev/null and a directory are ready at once for every
 *     requested direction, whatever the timeout (as poll(2) reports them);
 *   - the wrappers on bad fds: -EBADF; gr_read/gr_write with NULL and n > 0: -EINVAL;
 *     gr_read/gr_write with n = 0 work; gr_close(-1) and a closed fd: -EBADF;
 *     gr_accept on a pipe: -ENOTSOCK; gr_connect with NULL: -EINVAL; gr_connect to a
 *     closed port: -ECONNREFUSED; gr_blocking(NULL): -EINVAL.
 *   - gr_read/gr_write on a regular file read and write its bytes.
 */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MS 1000000LL

/* A number that was an open fd and is closed now. High, so that no file the
 * runtime opens meanwhile (its epoll fd, /proc reads by sysmon) takes it over:
 * new files get the lowest free number. */
static int closed_fd(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(dup2(p[0], 900), 900);
    close(p[0]);
    close(p[1]);
    close(900);
    return 900;
}

static void checks(int in_goroutine)
{
    const char *who = in_goroutine ? "goroutine" : "plain thread";
    int64_t t0 = now_ns();
    int bad[] = { -1, INT_MIN, 1 << 30, INT_MAX, closed_fd() };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(gr_block_io(bad[i], GR_READ, 0), -EBADF);
        CHECK_EQ(gr_block_io(bad[i], GR_WRITE, -1), -EBADF);
        CHECK_EQ(gr_block_io(bad[i], GR_READ | GR_WRITE, INT64_MAX), -EBADF);
        char c;
        CHECK_EQ(gr_read(bad[i], &c, 1), -EBADF);
        CHECK_EQ(gr_write(bad[i], "x", 1), -EBADF);
        CHECK_EQ(gr_close(bad[i]), -EBADF);
        CHECK_EQ(gr_accept(bad[i], NULL, NULL), -EBADF);
    }

    int p[2];
    CHECK_EQ(pipe(p), 0);
    int masks[] = { 0, 4, -1, 8, GR_READ | 4, GR_WRITE | 16, INT_MIN, INT_MAX };
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        CHECK_EQ(gr_block_io(p[0], masks[i], 0), -EINVAL);
        CHECK_EQ(gr_block_io(p[0], masks[i], -1), -EINVAL);
        CHECK_EQ(gr_block_io(p[1], masks[i], 10 * MS), -EINVAL);
        int rc = gr_block_io(-1, masks[i], -1);
        CHECK(rc == -EINVAL || rc == -EBADF);
    }

    /* Registered with the netpoller, then closed behind its back with close(2). */
    CHECK_EQ(gr_block_io(p[0], GR_READ, 1 * MS), -ETIMEDOUT);
    char c;
    CHECK_EQ(gr_read(p[0], NULL, 1), -EINVAL);
    CHECK_EQ(gr_write(p[1], NULL, 1), -EINVAL);
    CHECK_EQ(gr_read(p[0], NULL, 0), 0); /* read(2) of 0 bytes returns 0 at once */
    CHECK_EQ(gr_write(p[1], NULL, 0), 0);
    CHECK_EQ(gr_write(p[1], "", 0), 0);
    CHECK_EQ(gr_accept(p[0], NULL, NULL), -ENOTSOCK);
    CHECK_EQ(gr_connect(p[0], NULL, 0), -EINVAL);
    /* Move the registered read end to a high number, so that nothing reuses it. */
    CHECK_EQ(dup2(p[0], 901), 901);
    close(p[0]);
    CHECK_EQ(gr_block_io(901, GR_READ, 1 * MS), -ETIMEDOUT); /* registered */
    close(901);
    close(p[1]);
    CHECK_EQ(gr_block_io(901, GR_READ, -1), -EBADF);
    CHECK_EQ(gr_block_io(901, GR_READ | GR_WRITE, 0), -EBADF);
    CHECK_EQ(gr_read(901, &c, 1), -EBADF);

    /* A regular file: always ready, never a hang. */
    char path[] = "/tmp/gr-io-bad-input-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    unlink(path);
    CHECK_EQ(gr_block_io(f, GR_READ, -1), GR_READ);
    CHECK_EQ(gr_block_io(f, GR_WRITE, -1), GR_WRITE);
    CHECK_EQ(gr_block_io(f, GR_READ | GR_WRITE, -1), GR_READ | GR_WRITE);
    CHECK_EQ(gr_block_io(f, GR_READ, 0), GR_READ);
    CHECK_EQ(gr_block_io(f, GR_READ, INT64_MAX), GR_READ);
    CHECK_EQ(gr_write(f, "regular", 7), 7);
    CHECK_EQ(lseek(f, 0, SEEK_SET), 0);
    char buf[16] = { 0 };
    CHECK_EQ(gr_read(f, buf, sizeof buf), 7);
    CHECK(memcmp(buf, "regular", 7) == 0);
    CHECK_EQ(gr_read(f, buf, sizeof buf), 0); /* end of file */
    CHECK_EQ(gr_close(f), 0);
    CHECK_EQ(gr_close(f), -EBADF);

    int dn = open("/dev/null", O_RDWR);
    CHECK(dn >= 0);
    CHECK_EQ(gr_block_io(dn, GR_READ | GR_WRITE, -1), GR_READ | GR_WRITE);
    CHECK_EQ(gr_read(dn, buf, sizeof buf), 0);
    CHECK_EQ(gr_write(dn, "x", 1), 1);
    CHECK_EQ(gr_close(dn), 0);

    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    CHECK(dir >= 0);
    CHECK(gr_block_io(dir, GR_READ, -1) > 0);
    CHECK_EQ(gr_close(dir), 0);

    /* A refused connection is an error code, not a hang. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    close(s); /* nobody listens on that port now */
    s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    CHECK_EQ(gr_connect(s, NULL, sizeof a), -EINVAL);
    CHECK_EQ(gr_connect(s, (struct sockaddr *)&a, sizeof a), -ECONNREFUSED);
    CHECK_EQ(gr_close(s), 0);

    CHECK_EQ(gr_blocking(NULL, NULL), -EINVAL);

    int64_t dt = now_ns() - t0;
    printf("%s: bad input checked in %.2f ms\n", who, dt / 1e6);
    CHECK(dt < 1000 * MS);
}

static void in_goroutine(void *arg)
{
    (void)arg;
    checks(1);
}

int main(void)
{
    watchdog(20);
    CHECK_EQ(gr_main(in_goroutine, NULL), 0);
    checks(0);
    puts("ok");
    return 0;
}
