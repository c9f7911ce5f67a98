/* svc_coro.c - see svc_coro.h */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "xws/check.h"
#include "svc_coro.h"

#if defined(__SANITIZE_ADDRESS__)
#define SVC_CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SVC_CORO_ASAN 1
#endif
#endif
#ifdef SVC_CORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/*
 * The switch. On x86-64 it is a few instructions of our own (below): the callee-saved registers
 * and the SSE/x87 control words go on the stack being left, its stack pointer is stored, the
 * other one is loaded and its registers popped. ucontext's swapcontext would do the same plus a
 * sigprocmask system call at every switch, which costs more than the rest of a request's
 * switching together; it remains the portable fallback (SVC_CORO_UCONTEXT, other processors).
 */
#if defined(__x86_64__) && !defined(SVC_CORO_UCONTEXT)
#define SVC_CORO_ASM 1
/* saves the current context on its stack, *save = its stack pointer, continues on the stack load */
void svc_coro__switch(void **save, void *load);
__asm__(".text\n"
        ".p2align 4\n"
        ".globl svc_coro__switch\n"
        ".hidden svc_coro__switch\n"
        ".type svc_coro__switch, @function\n"
        "svc_coro__switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size svc_coro__switch, .-svc_coro__switch\n");
#else
#include <ucontext.h>
#endif

struct svc_coro {
#ifdef SVC_CORO_ASM
    void *sp;        /* the coroutine's stack pointer while it is suspended */
    void *caller_sp; /* the caller's while the coroutine runs */
#else
    ucontext_t ctx;    /* the coroutine's registers while it is suspended */
    ucontext_t caller; /* where svc_coro_start/resume came from */
#endif
    char *map;                 /* the mapping: guard page + stack */
    size_t map_len;            /* its length */
    char *stack;               /* lowest usable address of the stack */
    size_t stack_len;          /* usable stack bytes */
    svc_coro_fn fn;            /* what runs */
    void *arg;                 /* its argument */
    int busy;                  /* started and not returned */
    void *data;                /* the owner's pointer */
    void *caller_fake;         /* ASan: the caller's fake stack while the coroutine runs */
    void *coro_fake;           /* ASan: the coroutine's fake stack while it is suspended */
    const void *caller_bottom; /* the caller's stack, as ASan reported it at the first switch */
    size_t caller_size;
};

/* the coroutine running on this thread (NULL: the thread's own stack) */
static __thread svc_coro_t *s_current = NULL;

size_t svc_coro_default_stack(void)
{
#ifdef SVC_CORO_ASAN
    return 1024 * 1024;
#else
    return 256 * 1024;
#endif
}

svc_coro_t *svc_coro_new(size_t stack_size)
{
    svc_coro_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        abort();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (stack_size == 0)
        stack_size = svc_coro_default_stack();
    stack_size = (stack_size + page - 1) / page * page;
    self->map_len = stack_size + page;
    /* pages are committed when first touched: a deep stack costs only what a request uses */
    self->map = mmap(NULL, self->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (self->map == MAP_FAILED)
        abort();
    if (mprotect(self->map, page, PROT_NONE) != 0) /* the guard page: stacks grow down into it */
        abort();
    self->stack = self->map + page;
    self->stack_len = stack_size;
    return self;
}

void svc_coro_destroy(svc_coro_t **self_p)
{
    assert(self_p != NULL);
    svc_coro_t *self = *self_p;
    if (self == NULL)
        return;
    assert(!self->busy); /* a suspended coroutine still owns what its frames hold */
    munmap(self->map, self->map_len);
    free(self);
    *self_p = NULL;
}

/* ---- switching ---------------------------------------------------------------------------------- */

/* leaves the caller's stack for the coroutine's */
static void s_switch_in(svc_coro_t *self)
{
#ifdef SVC_CORO_ASAN
    __sanitizer_start_switch_fiber(&self->caller_fake, self->stack, self->stack_len);
#endif
    s_current = self;
#ifdef SVC_CORO_ASM
    svc_coro__switch(&self->caller_sp, self->sp);
#else
    if (swapcontext(&self->caller, &self->ctx) != 0)
        abort();
#endif
#ifdef SVC_CORO_ASAN
    __sanitizer_finish_switch_fiber(self->caller_fake, NULL, NULL);
#endif
}

/* leaves the coroutine's stack for the caller's; finished: the coroutine's stack is not coming back */
static void s_switch_out(svc_coro_t *self, int finished)
{
    s_current = NULL;
#ifdef SVC_CORO_ASAN
    __sanitizer_start_switch_fiber(finished ? NULL : &self->coro_fake, self->caller_bottom, self->caller_size);
#else
    (void)finished;
#endif
#ifdef SVC_CORO_ASM
    svc_coro__switch(&self->sp, self->caller_sp);
#else
    if (swapcontext(&self->ctx, &self->caller) != 0)
        abort();
#endif
    /* resumed */
#ifdef SVC_CORO_ASAN
    __sanitizer_finish_switch_fiber(self->coro_fake, &self->caller_bottom, &self->caller_size);
#endif
}

/* the first frame of every coroutine: runs fn, then leaves for good */
static void s_run(svc_coro_t *self)
{
#ifdef SVC_CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &self->caller_bottom, &self->caller_size);
#endif
    self->fn(self->arg);
    self->busy = 0;
    s_switch_out(self, 1);
    abort(); /* a finished coroutine is never resumed: it is started afresh */
}

#ifdef SVC_CORO_ASM
/* where the first switch into a coroutine "returns" to: the coroutine is the running one */
static void s_entry(void)
{
    s_run(s_current);
}
#else
/* makecontext passes int arguments only: the pointer travels in two halves */
static void s_trampoline(unsigned lo, unsigned hi)
{
    s_run((svc_coro_t *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo));
}
#endif

void svc_coro_start(svc_coro_t *self, svc_coro_fn fn, void *arg)
{
    assert(self != NULL && fn != NULL && !self->busy && s_current == NULL);
#ifdef SVC_CORO_ASM
    /* a stack that svc_coro__switch can pop: control words, six registers, then s_entry as the
     * return address, above it a null return address for s_entry (so that it starts with the
     * stack aligned as after a call) */
    uintptr_t top = ((uintptr_t)(self->stack + self->stack_len)) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = 0;
    *--sp = (uint64_t)(uintptr_t)s_entry;
    for (int i = 0; i < 6; i++)
        *--sp = 0;
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    *--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    self->sp = sp;
#else
    if (getcontext(&self->ctx) != 0)
        abort();
    self->ctx.uc_stack.ss_sp = self->stack;
    self->ctx.uc_stack.ss_size = self->stack_len;
    self->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)self;
    makecontext(&self->ctx, (void (*)(void))s_trampoline, 2, (unsigned)(p & 0xffffffffu), (unsigned)(p >> 16 >> 16));
#endif
    self->fn = fn;
    self->arg = arg;
    self->busy = 1;
    s_switch_in(self);
}

void svc_coro_resume(svc_coro_t *self)
{
    assert(self != NULL && self->busy && s_current == NULL);
    s_switch_in(self);
}

void svc_coro_yield(void)
{
    svc_coro_t *self = s_current;
    assert(self != NULL);
    s_switch_out(self, 0);
}

svc_coro_t *svc_coro_current(void)
{
    return s_current;
}

int svc_coro_busy(const svc_coro_t *self)
{
    return self->busy;
}

void svc_coro_set_data(svc_coro_t *self, void *data)
{
    self->data = data;
}

void *svc_coro_data(const svc_coro_t *self)
{
    return self->data;
}

/* ---- self-test ---------------------------------------------------------------------------------- */

typedef struct {
    int steps;
    int trace[16];
    int ntrace;
    int id;
} s_test_state_t;

static void s_test_body(void *arg)
{
    s_test_state_t *st = arg;
    for (int i = 0; i < st->steps; i++) {
        XWS_CHECK(svc_coro_current() != NULL);
        st->trace[st->ntrace++] = st->id * 10 + i;
        svc_coro_yield();
    }
}

static int s_deep(int n)
{
    volatile char pad[1024];
    memset((char *)pad, n & 0xff, sizeof(pad));
    return n == 0 ? pad[0] : s_deep(n - 1) + pad[10];
}

static void s_test_deep(void *arg)
{
    *(int *)arg = s_deep(100); /* about 100 KiB of stack */
}

void svc_coro_test(void)
{
    XWS_CHECK(svc_coro_current() == NULL);
    /* two coroutines interleaved: each resumes exactly where it yielded */
    svc_coro_t *a = svc_coro_new(0), *b = svc_coro_new(64 * 1024);
    s_test_state_t sa = {.steps = 3, .id = 1}, sb = {.steps = 2, .id = 2};
    svc_coro_start(a, s_test_body, &sa);
    svc_coro_start(b, s_test_body, &sb);
    XWS_CHECK(svc_coro_busy(a) && svc_coro_busy(b) && svc_coro_current() == NULL);
    while (svc_coro_busy(a) || svc_coro_busy(b)) {
        if (svc_coro_busy(a))
            svc_coro_resume(a);
        if (svc_coro_busy(b))
            svc_coro_resume(b);
    }
    XWS_CHECK(sa.ntrace == 3 && sa.trace[0] == 10 && sa.trace[2] == 12);
    XWS_CHECK(sb.ntrace == 2 && sb.trace[0] == 20 && sb.trace[1] == 21);
    /* a finished coroutine is started again with another function; data is the owner's */
    int out = -1;
    svc_coro_set_data(a, &out);
    XWS_CHECK(svc_coro_data(a) == &out);
    svc_coro_start(a, s_test_deep, &out);
    XWS_CHECK(!svc_coro_busy(a) && out >= 0);
    /* many start/finish cycles reuse the same stack */
    for (int i = 0; i < 1000; i++) {
        s_test_state_t s = {.steps = 1, .id = 0};
        svc_coro_start(b, s_test_body, &s);
        svc_coro_resume(b);
        XWS_CHECK(!svc_coro_busy(b) && s.ntrace == 1);
    }
    svc_coro_destroy(&a);
    svc_coro_destroy(&b);
    XWS_CHECK(a == NULL);
    svc_coro_destroy(&a);
}
