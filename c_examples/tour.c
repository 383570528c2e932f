/* tour: `make demo` — goroutines against threads, measured live on this machine. */
/*
 * Four short experiments, then a table:
 *
 *   1. start 100,000 goroutines and 10,000 threads that all wait at a gate: how long
 *      it takes, and what each costs in memory while it waits (RSS, the kernel's
 *      thread stacks, reserved address space); then open the gate and let them end;
 *   2. switch cost: two goroutines taking turns (gr_yield, then a channel ping-pong)
 *      against two threads pinned to one CPU (sched_yield, then a pipe ping-pong);
 *   3. an echo server and 1,000 client goroutines talking over loopback TCP;
 *   4. a deadlock caught: in a separate run of this program, gr_main returns -EDEADLK
 *      when every goroutine waits for another one, and gr_dump shows who waits on what.
 *
 * Build: cc -O2 -pthread tour.c $(pkg-config --cflags --libs goroutine)
 * Run:   ./tour             the full tour (well under a minute)
 *        ./tour --quick     a tenth of the sizes (what the tests run)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <goroutine.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------ helpers */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A "Key:   123 kB" field of a /proc file, in KiB (-1 when missing). */
static long proc_kib(const char *file, const char *key)
{
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

static long rss_kib(void) { return proc_kib("/proc/self/status", "VmRSS"); }
static long vsize_kib(void) { return proc_kib("/proc/self/status", "VmSize"); }
static long kernel_stack_kib(void) { return proc_kib("/proc/meminfo", "KernelStack"); }

/* 1234567 -> "1,234,567" (one of eight rotating buffers: up to eight per printf) */
static const char *commas(long v)
{
    static char bufs[8][32];
    static int next;
    char tmp[32], *buf = bufs[next++ & 7];
    int len = snprintf(tmp, sizeof tmp, "%ld", v < 0 ? -v : v), j = 0;
    if (v < 0)
        buf[j++] = '-';
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = tmp[i];
    }
    buf[j] = '\0';
    return buf;
}

/* A duration in ns, scaled: "61 ns", "3.2 us", "41.0 ms" (eight rotating buffers). */
static const char *dur(double ns)
{
    static char bufs[8][32];
    static int next;
    char *b = bufs[next++ & 7];
    if (ns < 1e3)
        snprintf(b, 32, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(b, 32, "%.1f us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(b, 32, "%.1f ms", ns / 1e6);
    else
        snprintf(b, 32, "%.2f s", ns / 1e9);
    return b;
}

/* A size in KiB, scaled (eight rotating buffers); noise below 0 shows as 0. */
static const char *size_kib(double kib)
{
    static char bufs[8][32];
    static int next;
    char *b = bufs[next++ & 7];
    if (kib < 1)
        snprintf(b, 32, "%.1f KiB", kib > 0 ? kib : 0.0);
    else if (kib < 1024)
        snprintf(b, 32, "%.1f KiB", kib);
    else if (kib < 1024 * 1024)
        snprintf(b, 32, "%.1f MiB", kib / 1024);
    else
        snprintf(b, 32, "%.1f GiB", kib / 1024 / 1024);
    return b;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tour: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void check_rc(const char *what, long rc)
{
    if (rc < 0)
        die("%s: %s", what, gr_strerror((int)rc));
}

/* The rows of the final table. */
static char table[16][2][64];
static const char *row_name[16];
static int rows;

static void row(const char *name, const char *g, const char *t)
{
    if (rows == 16)
        return;
    row_name[rows] = name;
    snprintf(table[rows][0], 64, "%s", g);
    snprintf(table[rows][1], 64, "%s", t);
    rows++;
}

/* --------------------------------------------- 1. many goroutines, many threads */

static gr_chan *gate;       /* closed to let every waiting goroutine go */
static gr_wg *g_up;         /* counts goroutines that have reached the gate */

static void gate_goroutine(void *arg)
{
    (void)arg;
    gr_wg_done(g_up);
    gr_chan_recv(gate, NULL); /* parks until the gate is closed (then -EPIPE) */
}

static pthread_mutex_t t_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_open = PTHREAD_COND_INITIALIZER;
static int t_gate_open;
static atomic_long t_up;
static atomic_long t_want;
static sem_t t_all_up;

static void *gate_thread(void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&t_up, 1) + 1 == atomic_load(&t_want))
        sem_post(&t_all_up);
    pthread_mutex_lock(&t_lock);
    while (!t_gate_open)
        pthread_cond_wait(&t_open, &t_lock);
    pthread_mutex_unlock(&t_lock);
    return NULL;
}

struct crowd {
    long n;                 /* how many were started */
    double calls_ms;        /* the gr_spawn / pthread_create calls alone */
    double start_ms;        /* from the first call until all are waiting at the gate */
    double finish_ms;       /* gate opened until all have ended */
    long rss_kib, kstack_kib, vsize_kib; /* growth while all wait */
};

static struct crowd crowd_goroutines(long n)
{
    struct crowd c = { .n = n };
    gate = gr_chan_new(0, 0);
    g_up = gr_wg_new();
    if (!gate || !g_up)
        die("out of memory");
    long rss0 = rss_kib(), ks0 = kernel_stack_kib(), vs0 = vsize_kib();
    double t0 = now_ms();
    check_rc("gr_wg_add", gr_wg_add(g_up, n));
    for (long i = 0; i < n; i++)
        check_rc("gr_spawn", gr_spawn(gate_goroutine, NULL));
    c.calls_ms = now_ms() - t0;
    check_rc("gr_wg_wait", gr_wg_wait(g_up)); /* every one has run and parked */
    c.start_ms = now_ms() - t0;
    c.rss_kib = rss_kib() - rss0;
    c.kstack_kib = kernel_stack_kib() - ks0;
    c.vsize_kib = vsize_kib() - vs0;
    t0 = now_ms();
    check_rc("gr_chan_close", gr_chan_close(gate));
    check_rc("gr_wait_all", gr_wait_all());
    c.finish_ms = now_ms() - t0;
    gr_chan_free(gate);
    gr_wg_free(g_up);
    return c;
}

static struct crowd crowd_threads(long n)
{
    struct crowd c = { 0 };
    pthread_t *th = malloc(sizeof *th * (size_t)n);
    if (!th)
        die("out of memory");
    sem_init(&t_all_up, 0, 0);
    atomic_store(&t_want, n);
    long rss0 = rss_kib(), ks0 = kernel_stack_kib(), vs0 = vsize_kib();
    double t0 = now_ms();
    long made = 0;
    for (; made < n; made++) {
        int rc = pthread_create(&th[made], NULL, gate_thread, NULL); /* default attributes */
        if (rc != 0) {
            printf("  (pthread_create failed after %s threads: %s; going on with those)\n",
                   commas(made), strerror(rc));
            break;
        }
    }
    c.calls_ms = now_ms() - t0;
    c.n = made;
    if (made < n) {
        atomic_store(&t_want, made);
        if (atomic_load(&t_up) >= made)
            sem_post(&t_all_up);
    }
    if (made > 0)
        while (sem_wait(&t_all_up) != 0 && errno == EINTR)
            ;
    c.start_ms = now_ms() - t0;
    c.rss_kib = rss_kib() - rss0;
    c.kstack_kib = kernel_stack_kib() - ks0;
    c.vsize_kib = vsize_kib() - vs0;
    t0 = now_ms();
    pthread_mutex_lock(&t_lock);
    t_gate_open = 1;
    pthread_cond_broadcast(&t_open);
    pthread_mutex_unlock(&t_lock);
    for (long i = 0; i < made; i++)
        pthread_join(th[i], NULL);
    c.finish_ms = now_ms() - t0;
    free(th);
    sem_destroy(&t_all_up);
    return c;
}

static void print_crowd(const char *what, const struct crowd *c)
{
    double n = c->n > 0 ? (double)c->n : 1;
    printf("  %-7s %s: calls took %s (%s each); all waiting after %s (%s each);\n"
           "          all ended %s after the gate opened\n",
           commas(c->n), what, dur(c->calls_ms * 1e6), dur(c->calls_ms * 1e6 / n),
           dur(c->start_ms * 1e6), dur(c->start_ms * 1e6 / n), dur(c->finish_ms * 1e6));
    printf("          memory while waiting: RSS +%s (%s each), kernel stacks +%s, address space +%s\n",
           size_kib(c->rss_kib), size_kib(c->rss_kib / n), size_kib(c->kstack_kib),
           size_kib(c->vsize_kib));
}

/* ------------------------------------------------------------ 2. switch cost */

static atomic_int turn;
static long turns;

static void yield_player(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (long i = 0; i < turns; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != me)
            gr_yield();
        atomic_store_explicit(&turn, 1 - me, memory_order_release);
    }
}

static gr_chan *ping, *pong;

static void chan_pinger(void *arg)
{
    (void)arg;
    long v = 0;
    for (long i = 0; i < turns; i++) {
        gr_chan_send(ping, &v);
        gr_chan_recv(pong, &v);
    }
}

static void chan_ponger(void *arg)
{
    (void)arg;
    long v;
    for (long i = 0; i < turns; i++) {
        gr_chan_recv(ping, &v);
        v++;
        gr_chan_send(pong, &v);
    }
}

/* ns per switch for a pair of goroutines on one processor */
static double goroutine_pair(gr_fn a, void *aa, gr_fn b, void *ba, long switches)
{
    int before = gr_maxprocs(1);
    double t0 = now_ms();
    gr_id x = gr_spawn(a, aa), y = gr_spawn(b, ba);
    check_rc("gr_spawn", x < 0 ? x : y);
    check_rc("gr_join", gr_join(x));
    check_rc("gr_join", gr_join(y));
    double ns = (now_ms() - t0) * 1e6 / (double)switches;
    gr_maxprocs(before);
    return ns;
}

static void *sched_yield_player(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (long i = 0; i < turns; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != me)
            sched_yield();
        atomic_store_explicit(&turn, 1 - me, memory_order_release);
    }
    return NULL;
}

static int pipe_ab[2], pipe_ba[2];

static void *pipe_pinger(void *arg)
{
    (void)arg;
    char c = 0;
    for (long i = 0; i < turns; i++)
        if (write(pipe_ab[1], &c, 1) != 1 || read(pipe_ba[0], &c, 1) != 1)
            die("pipe ping: %s", strerror(errno));
    return NULL;
}

static void *pipe_ponger(void *arg)
{
    (void)arg;
    char c;
    for (long i = 0; i < turns; i++)
        if (read(pipe_ab[0], &c, 1) != 1 || write(pipe_ba[1], &c, 1) != 1)
            die("pipe pong: %s", strerror(errno));
    return NULL;
}

/* ns per switch for a pair of threads pinned to one CPU (the first we may use) */
static double thread_pair(void *(*a)(void *), void *aa, void *(*b)(void *), void *ba, long switches)
{
    cpu_set_t mine, one;
    CPU_ZERO(&one);
    if (sched_getaffinity(0, sizeof mine, &mine) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &mine)) {
                CPU_SET(cpu, &one);
                break;
            }
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (CPU_COUNT(&one) == 1)
        pthread_attr_setaffinity_np(&attr, sizeof one, &one);
    pthread_t x, y;
    double t0 = now_ms();
    if (pthread_create(&x, &attr, a, aa) != 0 || pthread_create(&y, &attr, b, ba) != 0)
        die("pthread_create failed");
    pthread_join(x, NULL);
    pthread_join(y, NULL);
    pthread_attr_destroy(&attr);
    return (now_ms() - t0) * 1e6 / (double)switches;
}

/* --------------------------------------------------------------- 3. echo */

enum { MSG = 64 };

static int echo_port;
static long echo_rounds;
static atomic_long echo_ok, echo_failed, echo_conns;

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ptrdiff_t n;
    while ((n = gr_read(fd, buf, sizeof buf)) > 0)
        for (ptrdiff_t off = 0; off < n;) {
            ptrdiff_t w = gr_write(fd, buf + off, (size_t)(n - off));
            if (w < 0)
                goto out;
            off += w;
        }
out:
    gr_close(fd);
}

static void echo_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = gr_accept(lfd, NULL, NULL);
        if (fd == -ECANCELED || fd == -EBADF)
            return; /* the listening socket was gr_close'd */
        if (fd < 0) {
            gr_sleep(1000000); /* -EMFILE and friends: back off a little */
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_fetch_add(&echo_conns, 1);
        if (gr_spawn(echo_conn, (void *)(intptr_t)fd) < 0)
            gr_close(fd);
    }
}

static int echo_client_run(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)echo_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (gr_connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        gr_close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char out[MSG], in[MSG];
    for (long r = 0; r < echo_rounds; r++) {
        for (int i = 0; i < MSG; i++)
            out[i] = (char)(r + i + fd);
        if (gr_write(fd, out, MSG) != MSG) /* 64 bytes fit any socket buffer */
            goto fail;
        for (int got = 0; got < MSG;) {
            ptrdiff_t n = gr_read(fd, in + got, (size_t)(MSG - got));
            if (n <= 0)
                goto fail;
            got += (int)n;
        }
        if (memcmp(in, out, MSG) != 0)
            goto fail;
    }
    gr_close(fd);
    return 0;
fail:
    gr_close(fd);
    return -1;
}

static void echo_client(void *arg)
{
    (void)arg;
    if (echo_client_run() == 0)
        atomic_fetch_add(&echo_ok, 1);
    else
        atomic_fetch_add(&echo_failed, 1);
}

struct echo_result {
    long clients;
    double ms;
    uint64_t threads;
};

static struct echo_result echo(long clients, long rounds)
{
    struct echo_result res = { clients, 0, 0 };
    /* Each connection takes two fds (client and server side). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (long)rl.rlim_cur < 2 * clients + 64) {
        res.clients = ((long)rl.rlim_cur - 64) / 2;
        printf("  (the fd limit is %ld: %s clients instead of %s)\n", (long)rl.rlim_cur,
               commas(res.clients), commas(clients));
        if (res.clients < 1)
            die("too few file descriptors");
    }
    echo_rounds = rounds;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        die("listen on 127.0.0.1: %s", strerror(errno));
    echo_port = ntohs(a.sin_port);

    gr_id server = gr_spawn(echo_accept, (void *)(intptr_t)lfd);
    check_rc("gr_spawn", server);
    gr_id *ids = malloc(sizeof *ids * (size_t)res.clients);
    if (!ids)
        die("out of memory");
    double t0 = now_ms();
    for (long i = 0; i < res.clients; i++) {
        ids[i] = gr_spawn(echo_client, NULL);
        check_rc("gr_spawn", ids[i]);
    }
    for (long i = 0; i < res.clients; i++)
        check_rc("gr_join", gr_join(ids[i]));
    res.ms = now_ms() - t0;
    free(ids);
    gr_close(lfd); /* wakes the accept loop with -ECANCELED */
    check_rc("gr_join", gr_join(server));
    check_rc("gr_wait_all", gr_wait_all()); /* the connection goroutines end on EOF */
    struct gr_stats st = { .size = sizeof st };
    gr_stats(&st);
    res.threads = st.threads;
    if (atomic_load(&echo_failed) != 0 || atomic_load(&echo_ok) != res.clients)
        die("echo: %ld clients failed", atomic_load(&echo_failed));
    return res;
}

/* ------------------------------------------------------------ 4. deadlock */

static gr_chan *to_a, *to_b;

/* A waits for B's message before sending its own; B does the same: neither starts.
 * Not static, so that gr_dump can name them (it uses dladdr: link with -rdynamic). */
void polite_a(void *arg);
void polite_b(void *arg);
void deadlock_main(void *arg);

void polite_a(void *arg)
{
    (void)arg;
    int v;
    gr_chan_recv(to_a, &v);
    gr_chan_send(to_b, &v);
}

void polite_b(void *arg)
{
    (void)arg;
    int v;
    gr_chan_recv(to_b, &v);
    gr_chan_send(to_a, &v);
}

void deadlock_main(void *arg)
{
    (void)arg;
    gr_attr attr = { 0 };
    attr.name = "polite A";
    gr_id a = gr_spawn_attr(polite_a, NULL, &attr);
    attr.name = "polite B";
    gr_id b = gr_spawn_attr(polite_b, NULL, &attr);
    gr_join(a);
    gr_join(b);
}

/* Run as `tour --deadlock`, in a process of its own. */
static int deadlock_child(void)
{
    to_a = gr_chan_new(sizeof(int), 0);
    to_b = gr_chan_new(sizeof(int), 0);
    double t0 = now_ms();
    int rc = gr_main(deadlock_main, NULL);
    double ms = now_ms() - t0;
    printf("gr_main returned %d (%s) after %.0f ms; gr_dump(1) says:\n", rc, gr_strerror(rc), ms);
    fflush(stdout);
    gr_dump(1);
    return rc == -EDEADLK ? 0 : 1;
}

/* Runs this program again with --deadlock, relaying its output; 0 when it caught one.
 * *ms: how long gr_main took to see the deadlock, as the child reports it. */
static int deadlock(double *ms)
{
    int out[2];
    if (pipe(out) != 0)
        die("pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = { "tour", "--deadlock", NULL };
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0)
        die("posix_spawn: %s", strerror(rc));
    FILE *f = fdopen(out[0], "r");
    char line[512];
    *ms = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *after = strstr(line, ") after ");
        if (after && *ms < 0)
            *ms = atof(after + 8);
        if (line[0] != '\n')
            printf("    | %s", line);
    }
    if (f)
        fclose(f);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--deadlock") == 0)
            return deadlock_child();
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else
            die("usage: tour [--quick]");
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    long ng = quick ? 10000 : 100000, nt = quick ? 1000 : 10000;
    long clients = quick ? 100 : 1000, rounds = 50;
    double start = now_ms();

    int procs = gr_init(0);
    check_rc("gr_init", procs);
    struct gr_stats st = { .size = sizeof st };
    gr_stats(&st);
    struct utsname u;
    uname(&u);
    printf("libgoroutine %s: %d processors on %ld CPUs, Linux %s, guard pages by %s\n\n",
           gr_version(), procs, sysconf(_SC_NPROCESSORS_ONLN), u.release,
           st.guard_mode == 1 ? "MADV_GUARD_INSTALL" : "mprotect (budgeted)");

    printf("1. %s goroutines and %s threads (default attributes), each waiting at a gate\n",
           commas(ng), commas(nt));
    struct crowd g = crowd_goroutines(ng);
    print_crowd("goroutines", &g);
    struct crowd t = crowd_threads(nt);
    print_crowd("threads", &t);
    char a[64], b[64];
    snprintf(a, sizeof a, "%s (%s each)", dur(g.start_ms * 1e6), dur(g.start_ms * 1e6 / g.n));
    snprintf(b, sizeof b, "%s (%s each)", dur(t.start_ms * 1e6), dur(t.start_ms * 1e6 / (t.n ? t.n : 1)));
    row("start, until all wait", a, b);
    snprintf(a, sizeof a, "%s each (gr_spawn)", dur(g.calls_ms * 1e6 / g.n));
    snprintf(b, sizeof b, "%s each (pthread_create)", dur(t.calls_ms * 1e6 / (t.n ? t.n : 1)));
    row("  of which the calls", a, b);
    snprintf(a, sizeof a, "%s each", size_kib((double)g.rss_kib / g.n));
    snprintf(b, sizeof b, "%s each", size_kib((double)t.rss_kib / (t.n ? t.n : 1)));
    row("memory while waiting (RSS)", a, b);
    snprintf(a, sizeof a, "%s each", size_kib((double)g.kstack_kib / g.n));
    snprintf(b, sizeof b, "%s each", size_kib((double)t.kstack_kib / (t.n ? t.n : 1)));
    row("  + kernel stacks", a, b);
    snprintf(a, sizeof a, "%s each", size_kib((double)g.vsize_kib / g.n));
    snprintf(b, sizeof b, "%s each", size_kib((double)t.vsize_kib / (t.n ? t.n : 1)));
    row("  address space reserved", a, b);
    snprintf(a, sizeof a, "%s", dur(g.finish_ms * 1e6));
    snprintf(b, sizeof b, "%s", dur(t.finish_ms * 1e6));
    row("open the gate, until all end", a, b);

    long pairs = quick ? 20000 : 200000, tpairs = quick ? 5000 : 50000;
    printf("\n2. switch cost: two goroutines on one processor, two threads on one CPU\n");
    turns = pairs;
    atomic_store(&turn, 0);
    double gy = goroutine_pair(yield_player, (void *)0, yield_player, (void *)1, 2 * pairs);
    ping = gr_chan_new(sizeof(long), 0);
    pong = gr_chan_new(sizeof(long), 0);
    double gc = goroutine_pair(chan_pinger, NULL, chan_ponger, NULL, 2 * pairs);
    gr_chan_free(ping);
    gr_chan_free(pong);
    turns = tpairs;
    atomic_store(&turn, 0);
    double ty = thread_pair(sched_yield_player, (void *)0, sched_yield_player, (void *)1, 2 * tpairs);
    if (pipe(pipe_ab) != 0 || pipe(pipe_ba) != 0)
        die("pipe: %s", strerror(errno));
    double tp = thread_pair(pipe_pinger, NULL, pipe_ponger, NULL, 2 * tpairs);
    printf("  turn-taking:  gr_yield %s per switch,  sched_yield %s per switch (%.0fx)\n", dur(gy),
           dur(ty), ty / gy);
    printf("  ping-pong:    channel  %s per message, pipe        %s per message (%.0fx)\n", dur(gc),
           dur(tp), tp / gc);
    snprintf(a, sizeof a, "%s (gr_yield)", dur(gy));
    snprintf(b, sizeof b, "%s (sched_yield)", dur(ty));
    row("switch, taking turns", a, b);
    snprintf(a, sizeof a, "%s (channel)", dur(gc));
    snprintf(b, sizeof b, "%s (pipe)", dur(tp));
    row("ping-pong, per message", a, b);

    printf("\n3. an echo server and %s client goroutines over loopback TCP, %ld round trips "
           "of %d bytes each\n", commas(clients), rounds, MSG);
    struct echo_result e = echo(clients, rounds);
    long trips = e.clients * rounds;
    printf("  %s round trips in %s: %s per second; %s connections served by %s goroutines "
           "on %llu threads\n", commas(trips), dur(e.ms * 1e6), commas((long)(trips / (e.ms / 1e3))),
           commas(atomic_load(&echo_conns)), commas(2 * e.clients + 1), (unsigned long long)e.threads);
    snprintf(a, sizeof a, "%s round trips/s, %s clients", commas((long)(trips / (e.ms / 1e3))),
             commas(e.clients));
    row("echo over loopback TCP", a, "");

    printf("\n4. a deadlock: goroutines A and B each wait for the other's message first\n");
    double dms;
    int caught = deadlock(&dms);
    if (caught == 0)
        snprintf(a, sizeof a, "gr_main returned -EDEADLK after %s", dur(dms * 1e6));
    else
        snprintf(a, sizeof a, "NOT caught");
    row("deadlock (every goroutine waits)", a, "");

    printf("\n%-32s %-32s %s\n", "", "goroutines", "threads");
    for (int i = 0; i < rows; i++)
        printf("%-32s %-32s %s\n", row_name[i], table[i][0], table[i][1]);
    printf("\nRSS is user-space memory; the kernel keeps a stack of its own (\"kernel stacks\") for\n"
           "every thread, and none for a goroutine. Switches: the goroutines on one processor\n"
           "(gr_maxprocs(1)), the threads pinned to one CPU. The tour took %.1f s.\n",
           (now_ms() - start) / 1e3);
    if (caught != 0)
        die("the deadlock was not caught");
    return 0;
}
