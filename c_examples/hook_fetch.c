/*
 * Fetching many URLs at once with libcurl's easy API, one goroutine per URL.
 *
 * curl_easy_perform is a blocking call: with threads, N fetches at once need N
 * threads. Here each runs on a goroutine, and the hook library (libgoroutine_hook,
 * linked through `pkg-config --libs goroutine-hook`) turns the blocking socket calls
 * libcurl makes (connect, poll, recv, send) into parks: a few threads serve any
 * number of fetches, and libcurl is used exactly as its manual says.
 *
 *   hook_fetch URL...        fetch each URL in its own goroutine; print status,
 *                            size and time per URL, then the total
 *   hook_fetch --selftest    serve 50 paths on a free local port (goroutines that
 *                            answer each request after 200 ms), fetch them all at
 *                            once and check every body; the fetches must overlap
 *                            (well under 50 x 200 ms) on few threads; "ok" last
 *
 * Build: cc -O2 hook_fetch.c $(pkg-config --cflags --libs goroutine-hook) -lcurl
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <goroutine.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define die(...)                                                                        \
    do {                                                                                \
        fprintf(stderr, "hook_fetch: " __VA_ARGS__);                                    \
        fputc('\n', stderr);                                                            \
        exit(1);                                                                        \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- fetching */

struct fetch {
    const char *url;
    char body[256]; /* the first bytes, for the self-test */
    size_t size;
    long status;
    double seconds;
    CURLcode rc;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct fetch *f = arg;
    size_t len = size * n;
    if (f->size < sizeof f->body - 1) {
        size_t room = sizeof f->body - 1 - f->size;
        memcpy(f->body + f->size, data, len < room ? len : room);
    }
    f->size += len;
    return len;
}

/* A goroutine: one blocking curl_easy_perform, as in a thread-per-request program. */
static void fetch_one(void *arg)
{
    struct fetch *f = arg;
    double t0 = now();
    CURL *h = curl_easy_init();
    if (!h) {
        f->rc = CURLE_OUT_OF_MEMORY;
        return;
    }
    curl_easy_setopt(h, CURLOPT_URL, f->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* no alarm() for timeouts in goroutines */
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    f->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->status);
    curl_easy_cleanup(h);
    f->seconds = now() - t0;
}

/* Fetches every URL at once; returns how many failed. */
static int fetch_all(struct fetch *fs, int n)
{
    for (int i = 0; i < n; i++) {
        gr_id id = gr_spawn(fetch_one, &fs[i]);
        if (id < 0)
            die("gr_spawn: %s", gr_strerror((int)id));
    }
    gr_wait_all();
    int failed = 0;
    for (int i = 0; i < n; i++)
        failed += fs[i].rc != CURLE_OK;
    return failed;
}

/* ---------------------------------------------------------------- the self-test's server */

#define PATHS 50
#define DELAY_US 200000

static int listener;

/* One connection: read the request head, wait, answer with a body naming the path.
 * Plain read, write and usleep: the hook library parks them too. */
static void answer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[2048];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t n = read(fd, req + got, sizeof req - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char path[64] = "?";
    sscanf(req, "GET %63s", path);
    usleep(DELAY_US);
    char body[128], resp[256];
    int blen = snprintf(body, sizeof body, "this is %s\n", path);
    int rlen = snprintf(resp, sizeof resp,
                        "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                        blen, body);
    if (write(fd, resp, (size_t)rlen) != rlen)
        fprintf(stderr, "hook_fetch: a short write to a client\n");
    close(fd);
}

static void serve(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            die("accept: %s", strerror(errno));
        if (gr_spawn(answer, (void *)(intptr_t)fd) < 0)
            close(fd);
    }
}

static long threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static int selftest(void)
{
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(listener, PATHS) < 0 || getsockname(listener, (struct sockaddr *)&a, &alen) < 0)
        die("cannot listen on 127.0.0.1: %s", strerror(errno));
    int port = ntohs(a.sin_port);

    static struct fetch fs[PATHS];
    static char urls[PATHS][64];
    for (int i = 0; i < PATHS; i++) {
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/page/%d", port, i);
        fs[i].url = urls[i];
    }
    long threads_before = threads_now();
    gr_spawn(serve, (void *)(intptr_t)PATHS);
    double t0 = now();
    int failed = fetch_all(fs, PATHS);
    double total = now() - t0;
    long threads_after = threads_now();
    close(listener);

    for (int i = 0; i < PATHS; i++) {
        char want[64];
        snprintf(want, sizeof want, "this is /page/%d\n", i);
        if (fs[i].rc != CURLE_OK || fs[i].status != 200 || strcmp(fs[i].body, want) != 0) {
            fprintf(stderr, "hook_fetch: %s: %s, status %ld, body \"%s\"\n", fs[i].url,
                    curl_easy_strerror(fs[i].rc), fs[i].status, fs[i].body);
            failed++;
        }
    }
    printf("%d URLs, each answered after %d ms: %.3f s in all (one at a time: %.1f s), "
           "threads %ld -> %ld\n",
           PATHS, DELAY_US / 1000, total, PATHS * DELAY_US / 1e6, threads_before,
           threads_after);
    if (failed)
        die("%d fetches failed", failed);
    if (total > PATHS * DELAY_US / 1e6 / 4)
        die("the fetches did not overlap (is libgoroutine_hook linked?)");
    if (threads_after - threads_before > 8)
        die("%ld threads more: the fetches blocked threads", threads_after - threads_before);
    puts("ok");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hook_fetch URL... | hook_fetch --selftest\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("curl_global_init failed");
    gr_init(0);
    int rc;
    if (strcmp(argv[1], "--selftest") == 0) {
        rc = selftest();
    } else {
        int n = argc - 1;
        struct fetch *fs = calloc((size_t)n, sizeof *fs);
        if (!fs)
            die("out of memory");
        for (int i = 0; i < n; i++)
            fs[i].url = argv[i + 1];
        double t0 = now();
        int failed = fetch_all(fs, n);
        for (int i = 0; i < n; i++) {
            if (fs[i].rc == CURLE_OK)
                printf("%3ld %8zu bytes %6.3f s  %s\n", fs[i].status, fs[i].size, fs[i].seconds,
                       fs[i].url);
            else
                printf("ERR %s  %s\n", curl_easy_strerror(fs[i].rc), fs[i].url);
        }
        printf("%d URLs in %.3f s, %d failed\n", n, now() - t0, failed);
        free(fs);
        rc = failed ? 1 : 0;
    }
    curl_global_cleanup();
    return rc;
}
