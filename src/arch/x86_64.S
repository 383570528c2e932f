/*
 * x86_64 context switch and goroutine entry trampoline (System V ABI, Linux).
 *
 * A goroutine's saved context is a single stack pointer. Everything else lives in a
 * 64-byte frame on the goroutine's own stack, pushed by gr_ctx_switch:
 *
 *      higher addresses
 *      +-------------------+
 *      | return address    |  <- where gr_ctx_switch will `ret` to
 *      | rbp               |
 *      | rbx               |
 *      | r12               |
 *      | r13               |
 *      | r14               |
 *      | r15               |
 *      | fpucw | mxcsr     |  <- saved sp points here (mxcsr at +0, x87 CW at +4)
 *      +-------------------+
 *      lower addresses
 *
 * Only callee-saved state is kept: the caller of gr_ctx_switch (compiled code) has
 * already spilled everything else it needs. MXCSR and the x87 control word are
 * callee-saved "control bits" in the ABI and travel with the goroutine.
 *
 * uintptr_t gr_ctx_switch(void **save_sp, void *load_sp, uintptr_t transfer)
 *   saves the current context into *save_sp, resumes the one at load_sp, and makes
 *   that side's gr_ctx_switch (or the trampoline) see `transfer` in rax.
 *
 * gr_ctx_jump(load_sp, transfer) is the second half alone, for a context that is
 * left for good (nothing is saved).
 *
 * A fresh goroutine stack is laid out by src/arch/mod.rs so that the first switch
 * "returns" into gr_ctx_trampoline with rbx = entry function, r12 = its argument and
 * rsp 16-byte aligned; the trampoline calls entry(transfer, arg), which never returns.
 */
    .text
    .globl  gr_ctx_switch
    .hidden gr_ctx_switch
    .type   gr_ctx_switch,@function
    .p2align 4
gr_ctx_switch:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    /* --- from here on we run on the other stack --- */
    movq    %rsi, %rsp
.Lgr_ctx_resume:                /* gr_ctx_jump joins here, with %rdx = transfer */
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    movq    %rdx, %rax
    ret
    .cfi_endproc
    .size   gr_ctx_switch, .-gr_ctx_switch

/*
 * void gr_ctx_jump(void *load_sp, uintptr_t transfer)  (never returns)
 *   resumes the context at load_sp through the second half of gr_ctx_switch, saving
 *   nothing: for leaving a context that never runs again (an exiting goroutine).
 */
    .globl  gr_ctx_jump
    .hidden gr_ctx_jump
    .type   gr_ctx_jump,@function
    .p2align 4
gr_ctx_jump:
    .cfi_startproc
    movq    %rdi, %rsp
    movq    %rsi, %rdx
    jmp     .Lgr_ctx_resume
    .cfi_endproc
    .size   gr_ctx_jump, .-gr_ctx_jump

    .globl  gr_ctx_trampoline
    .hidden gr_ctx_trampoline
    .type   gr_ctx_trampoline,@function
    .p2align 4
gr_ctx_trampoline:
    .cfi_startproc
    /* The outermost frame of every goroutine: tell unwinders and debuggers to stop. */
    .cfi_undefined %rip
    xorl    %ebp, %ebp
    movq    %rax, %rdi      /* transfer: the M now running this goroutine */
    movq    %r12, %rsi      /* the entry argument (the G) */
    call    *%rbx           /* entry(transfer, arg): never returns */
    ud2
    .cfi_endproc
    .size   gr_ctx_trampoline, .-gr_ctx_trampoline

/*
 * The calling thread's M, in an initial-exec thread-local: two instructions to read,
 * where a Rust thread_local in a shared library goes through __tls_get_addr. The
 * library then needs a few bytes of static TLS (glibc keeps spare room for that even
 * for dlopen, as ctypes does). Read by arch::tls_m's inline assembly, which works out
 * the address and loads the word in one block that the compiler may neither merge
 * with another nor move across a call, so no caller keeps the variable's address
 * across a goroutine switch (a goroutine may resume on another thread). Written by
 * gr_tls_set_m, a real call.
 */
    .section .tbss,"awT",@nobits
    .globl  gr_tls_m
    .hidden gr_tls_m
    .p2align 3
    .type   gr_tls_m, @object
    .size   gr_tls_m, 8
gr_tls_m:
    .zero   8

    .text
    .globl  gr_tls_set_m
    .hidden gr_tls_set_m
    .type   gr_tls_set_m,@function
    .p2align 4
gr_tls_set_m:
    .cfi_startproc
    movq    gr_tls_m@gottpoff(%rip), %rax
    movq    %rdi, %fs:(%rax)
    ret
    .cfi_endproc
    .size   gr_tls_set_m, .-gr_tls_set_m

    .section .note.GNU-stack,"",@progbits
