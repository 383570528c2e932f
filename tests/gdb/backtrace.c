/* A goroutine stops in a nested call; gdb must backtrace it to the entry trampoline. */
#include <signal.h>
#include <stdio.h>
#include "goroutine.h"
__attribute__((noinline)) void deep_inside(int n) { if (n == 0) raise(SIGTRAP); else deep_inside(n - 1); __asm__ volatile(""); }
static void body(void *a) { (void)a; gr_yield(); deep_inside(3); }
int main(void) { gr_init(1); gr_join(gr_spawn(body, 0)); puts("done"); return 0; }
