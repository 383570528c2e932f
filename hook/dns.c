/*
 * getaddrinfo, getnameinfo, gethostbyname, gethostbyname2 and their _r forms: a name
 * lookup may wait seconds on a DNS server, inside libc and NSS modules the layer
 * cannot reach, so on a goroutine it runs through gr_blocking: the processor goes to
 * another thread for the lookup's duration and the other goroutines keep running.
 * (The libc calls the lookup makes meanwhile come back through these hooks; inside
 * gr_blocking they block the thread, which is what it is there for.) A numeric
 * address needs no lookup and is answered directly.
 */
#include "hook.h"

#include <arpa/inet.h>
#include <string.h>

static int numeric(const char *node)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return !node || inet_pton(AF_INET, node, buf) == 1 || inet_pton(AF_INET6, node, buf) == 1;
}

struct lookup {
    int kind;
    const char *name, *service;
    const struct addrinfo *hints;
    struct addrinfo **res;
    const struct sockaddr *sa;
    socklen_t salen, hostlen, servlen;
    char *host, *serv;
    int flags, af;
    struct hostent *ret, **result, *hostent;
    char *buf;
    size_t buflen;
    int *h_errnop;
    int rc;
};

enum { GETADDRINFO, GETNAMEINFO, GETHOSTBYNAME, GETHOSTBYNAME2, GETHOSTBYNAME_R,
       GETHOSTBYNAME2_R };

static void run(void *arg)
{
    struct lookup *l = arg;
    switch (l->kind) {
    case GETADDRINFO:
        l->rc = real.getaddrinfo(l->name, l->service, l->hints, l->res);
        break;
    case GETNAMEINFO:
        l->rc = real.getnameinfo(l->sa, l->salen, l->host, l->hostlen, l->serv, l->servlen,
                                 l->flags);
        break;
    case GETHOSTBYNAME:
        l->hostent = real.gethostbyname(l->name);
        break;
    case GETHOSTBYNAME2:
        l->hostent = real.gethostbyname2(l->name, l->af);
        break;
    case GETHOSTBYNAME_R:
        l->rc = real.gethostbyname_r(l->name, l->ret, l->buf, l->buflen, l->result, l->h_errnop);
        break;
    case GETHOSTBYNAME2_R:
        l->rc = real.gethostbyname2_r(l->name, l->af, l->ret, l->buf, l->buflen, l->result,
                                      l->h_errnop);
        break;
    }
}

/* Runs the lookup without the processor when on a goroutine (gr_blocking keeps the
 * goroutine on this thread for the call, so errno and h_errno are this thread's). */
static void lookup(struct lookup *l, int direct)
{
    if (direct || !on_goroutine() || gr_blocking(run, l) < 0)
        run(l);
}

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    HOOK_ENTER();
    struct lookup l = {.kind = GETADDRINFO, .name = node, .service = service, .hints = hints,
                       .res = res};
    lookup(&l, numeric(node) || (hints && (hints->ai_flags & AI_NUMERICHOST)));
    return l.rc;
}

EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                       char *serv, socklen_t servlen, int flags)
{
    HOOK_ENTER();
    struct lookup l = {.kind = GETNAMEINFO, .sa = sa, .salen = salen, .host = host,
                       .hostlen = hostlen, .serv = serv, .servlen = servlen, .flags = flags};
    lookup(&l, !host || (flags & NI_NUMERICHOST));
    return l.rc;
}

EXPORT struct hostent *gethostbyname(const char *name)
{
    HOOK_ENTER();
    struct lookup l = {.kind = GETHOSTBYNAME, .name = name};
    lookup(&l, 0);
    return l.hostent;
}

EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
    HOOK_ENTER();
    struct lookup l = {.kind = GETHOSTBYNAME2, .name = name, .af = af};
    lookup(&l, 0);
    return l.hostent;
}

EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                           struct hostent **result, int *h_errnop)
{
    HOOK_ENTER();
    struct lookup l = {.kind = GETHOSTBYNAME_R, .name = name, .ret = ret, .buf = buf,
                       .buflen = buflen, .result = result, .h_errnop = h_errnop};
    lookup(&l, 0);
    return l.rc;
}

EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                            size_t buflen, struct hostent **result, int *h_errnop)
{
    HOOK_ENTER();
    struct lookup l = {.kind = GETHOSTBYNAME2_R, .name = name, .af = af, .ret = ret, .buf = buf,
                       .buflen = buflen, .result = result, .h_errnop = h_errnop};
    lookup(&l, 0);
    return l.rc;
}
