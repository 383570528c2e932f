/* hello: start goroutines with gr_spawn, wait for each with gr_join. */
/*
 * Three goroutines each say hello, then main joins them one by one. gr_spawn returns
 * a goroutine id (> 0) or a negative errno value; so does every call that can fail.
 *
 * Build: cc -O2 hello.c $(pkg-config --cflags --libs goroutine)
 * Run:   ./hello            prints three greetings (in any order), then "done"
 */
#include <goroutine.h>
#include <stdint.h>
#include <stdio.h>

static void greet(void *arg)
{
    intptr_t n = (intptr_t)arg;
    /* gr_self() is this goroutine's id (unique, though not consecutive). */
    printf("hello from goroutine %lld (argument %ld)\n", (long long)gr_self(), (long)n);
}

int main(void)
{
    gr_id ids[3];
    for (intptr_t i = 0; i < 3; i++) {
        ids[i] = gr_spawn(greet, (void *)i);
        if (ids[i] < 0) {
            fprintf(stderr, "gr_spawn: %s\n", gr_strerror((int)ids[i]));
            return 1;
        }
    }
    for (int i = 0; i < 3; i++) {
        int rc = gr_join(ids[i]); /* main is a plain thread: it blocks until i is done */
        if (rc != 0) {
            fprintf(stderr, "gr_join: %s\n", gr_strerror(rc));
            return 1;
        }
    }
    printf("done (libgoroutine %s)\n", gr_version());
    return 0;
}
