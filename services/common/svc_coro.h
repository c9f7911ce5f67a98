/*
 * svc_coro - stackful coroutines for the worker: one per request in flight, so that a handler
 * written top to bottom (read, decide, write, retry) can wait for Redis without blocking the
 * other requests of the worker.
 *
 * A coroutine runs fn(arg) on its own stack (mmap'd, with a guard page below it, so that an
 * overflow faults instead of corrupting memory). svc_coro_start and svc_coro_resume run it on the
 * caller's thread until it calls svc_coro_yield or returns; control then comes back to the caller.
 * Nothing is preemptive and nothing is thread-safe: one thread owns its coroutines. A finished
 * coroutine can be started again with another function, so a worker keeps a pool of them and
 * pays for the stack once.
 *
 * The switch saves the callee-saved registers on the stack being left and loads the other one
 * (a few instructions of assembly on x86-64; ucontext elsewhere, or when built with
 * -DSVC_CORO_UCONTEXT); under AddressSanitizer every switch is announced with the fiber
 * annotations, so ASan follows the stacks.
 */
#ifndef SVC_CORO_H
#define SVC_CORO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct svc_coro svc_coro_t;
typedef void (*svc_coro_fn)(void *arg);

/* Stack size used when 0 is given: 256 KiB (1 MiB under AddressSanitizer, whose frames are larger). */
size_t svc_coro_default_stack(void);

/* Creates an idle coroutine with a stack of stack_size bytes (0: the default). Aborts when out of memory. */
svc_coro_t *svc_coro_new(size_t stack_size);
/* NULL-safe; sets *self_p to NULL. The coroutine must not be suspended inside fn (assert). */
void svc_coro_destroy(svc_coro_t **self_p);

/*
 * Runs fn(arg) on the coroutine (which must be idle: new or finished) until fn yields or returns.
 * Must be called from outside any coroutine.
 */
void svc_coro_start(svc_coro_t *self, svc_coro_fn fn, void *arg);
/* Continues a coroutine suspended in svc_coro_yield until it yields again or returns. */
void svc_coro_resume(svc_coro_t *self);
/* Suspends the running coroutine; returns when someone resumes it. Only inside a coroutine. */
void svc_coro_yield(void);

/* The running coroutine, or NULL when called outside any coroutine. */
svc_coro_t *svc_coro_current(void);
/* 1 when started and not yet returned (running or suspended), 0 when idle. */
int svc_coro_busy(const svc_coro_t *self);

/* The owner's pointer, free for the caller to set (e.g. the job the coroutine serves). */
void svc_coro_set_data(svc_coro_t *self, void *data);
void *svc_coro_data(const svc_coro_t *self);

void svc_coro_test(void);

#ifdef __cplusplus
}
#endif
#endif
