/*
 * libpq, unchanged, on goroutines: 50 goroutines on 2 processors each connect to the
 * PostgreSQL server that tests/hook.rs started (its connection string in argv[1])
 * and run `SELECT pg_sleep(0.2)`. Under the hook layer the queries overlap: a few
 * tenths of a second in all (the server forks a backend per connection), at most 8
 * threads more than before (without it: a thread per waiting query).
 */
#include "hook_test.h"

#include <libpq-fe.h>

#define CLIENTS 50

static const char *conninfo;
static atomic_int done;

static void client(void *arg)
{
    (void)arg;
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        FAIL("PQconnectdb: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SELECT pg_sleep(0.2)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        FAIL("SELECT pg_sleep(0.2): %s", PQerrorMessage(c));
    CHECK_EQ(PQntuples(r), 1);
    PQclear(r);
    PQfinish(c);
    atomic_fetch_add(&done, 1);
}

int main(int argc, char **argv)
{
    watchdog(60);
    CHECK_EQ(argc, 2);
    conninfo = argv[1];
    CHECK_EQ(gr_init(2), 2);
    struct workload w = run_workload(NULL, CLIENTS, client);
    printf("libpq: %d x SELECT pg_sleep(0.2), 2 procs: %.3f s, threads %ld -> %ld (+%ld)\n",
           CLIENTS, w.seconds, w.before, w.peak, w.added);
    CHECK_EQ(atomic_load(&done), CLIENTS);
    CHECK(w.seconds >= 0.2 && w.seconds < 2.0);
    CHECK(w.added <= 8);
    puts("ok");
    return 0;
}
