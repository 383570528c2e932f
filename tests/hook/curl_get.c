/*
 * libcurl's easy API, unchanged, on goroutines: a slow HTTP server (goroutines on
 * the same runtime, plain accept/read/write/usleep, answering 300 ms after each
 * request) and 100 goroutines on 2 processors that each GET one URL with
 * curl_easy_perform. Under the hook layer the requests overlap: about 0.35 s, at
 * most 8 threads more than before (without it: 1.77 s, threads 4 -> 100).
 */
#include "hook_test.h"

#include <curl/curl.h>

#define CLIENTS 100

static int listener, port;
static atomic_int fetched;

static void answer(void *arg)
{
    int c = (int)(intptr_t)arg;
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t n = read(c, req + got, sizeof req - 1 - got);
        CHECK(n > 0);
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    usleep(300000);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow\n";
    CHECK_EQ(write(c, resp, sizeof resp - 1), (ssize_t)sizeof resp - 1);
    close(c);
}

static void server(void *arg)
{
    (void)arg;
    for (int i = 0; i < CLIENTS; i++) {
        int c = accept(listener, NULL, NULL);
        CHECK(c >= 0);
        SPAWN(answer, (void *)(intptr_t)c);
    }
}

struct body {
    char buf[64];
    size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t len = size * n;
    if (b->len + len < sizeof b->buf) {
        memcpy(b->buf + b->len, data, len);
        b->len += len;
    }
    return len;
}

static void client(void *arg)
{
    (void)arg;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    CURL *h = curl_easy_init();
    CHECK(h);
    struct body b = {.len = 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
        FAIL("curl_easy_perform: %s", curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    CHECK_EQ(status, 200);
    CHECK(b.len == 5 && memcmp(b.buf, "slow\n", 5) == 0);
    curl_easy_cleanup(h);
    atomic_fetch_add(&fetched, 1);
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    CHECK_EQ(gr_init(2), 2);
    listener = listen_loopback(&port, CLIENTS);
    struct workload w = run_workload(server, CLIENTS, client);
    printf("libcurl easy: %d x GET (answered after 300 ms), 2 procs: %.3f s, threads %ld -> %ld "
           "(+%ld)\n", CLIENTS, w.seconds, w.before, w.peak, w.added);
    CHECK_EQ(atomic_load(&fetched), CLIENTS);
    CHECK(w.seconds >= 0.3 && w.seconds < 1.0);
    CHECK(w.added <= 8);
    close(listener);
    curl_global_cleanup();
    puts("ok");
    return 0;
}
