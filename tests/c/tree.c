/*
 * A tree of nested spawns, depth 5 and fanout 5 (3,906 goroutines): each node
 * spawns its children, joins them, and adds up their subtree sizes, which live in
 * the parent's stack frame. Run from gr_main, from the main thread, and from
 * several roots at once.
 */
#include "check.h"

#include <stdatomic.h>

#define DEPTH 5
#define FANOUT 5
#define NODES 3906 /* 1 + 5 + 25 + 125 + 625 + 3125 */

struct node {
    int depth;
    long size;
};

static atomic_long visited;

static void node(void *arg)
{
    struct node *n = arg;
    long size = 1;
    if (n->depth < DEPTH) {
        struct node kids[FANOUT];
        gr_id ids[FANOUT];
        for (int k = 0; k < FANOUT; k++) {
            kids[k].depth = n->depth + 1;
            kids[k].size = -1;
            ids[k] = SPAWN(node, &kids[k]);
        }
        for (int k = 0; k < FANOUT; k++) {
            CHECK_EQ(gr_join(ids[k]), 0);
            CHECK(kids[k].size > 0);
            size += kids[k].size;
        }
    }
    n->size = size;
    atomic_fetch_add(&visited, 1);
}

int main(void)
{
    watchdog(60);

    /* From gr_main. */
    struct node root = { 0, -1 };
    CHECK_EQ(gr_main(node, &root), 0);
    CHECK_EQ(root.size, NODES);
    CHECK_EQ(atomic_load(&visited), NODES);

    /* From the main thread: spawn + join. */
    for (int round = 0; round < 3; round++) {
        struct node r = { 0, -1 };
        atomic_store(&visited, 0);
        CHECK_EQ(gr_join(SPAWN(node, &r)), 0);
        CHECK_EQ(r.size, NODES);
        CHECK_EQ(atomic_load(&visited), NODES);
    }

    /* Eight trees at once. */
    struct node roots[8];
    gr_id ids[8];
    atomic_store(&visited, 0);
    for (int i = 0; i < 8; i++) {
        roots[i].depth = 0;
        roots[i].size = -1;
        ids[i] = SPAWN(node, &roots[i]);
    }
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(gr_join(ids[i]), 0);
        CHECK_EQ(roots[i].size, NODES);
    }
    CHECK_EQ(atomic_load(&visited), 8 * NODES);
    CHECK_EQ(gr_count(), 0);
    printf("trees of %d nested goroutines summed correctly\n", NODES);
    puts("ok");
    return 0;
}
