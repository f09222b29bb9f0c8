/* A small persistent thread pool with one operation: parallel-for over an
 * index range. Workers spin briefly before sleeping, because a decode step
 * dispatches a few hundred short jobs and a sleep/wake per job costs more
 * than the job. The calling thread takes part (it runs chunk 0). */
#ifndef SK_THREADPOOL_H
#define SK_THREADPOOL_H

#include <stdint.h>

typedef struct sk_threadpool sk_threadpool;

/* Called once per thread with its contiguous part [begin, end) of the range
 * (possibly empty) and its thread index tid in [0, size). */
typedef void (*sk_parallel_fn)(void *ctx, int64_t begin, int64_t end, int tid);

/* n threads in all, the caller included; 0 = one per online core. NULL on error. */
sk_threadpool *sk_threadpool_new(int n);
void sk_threadpool_free(sk_threadpool *p);
int sk_threadpool_size(const sk_threadpool *p);
/* Splits [0, n) into size() parts whose boundaries are multiples of grain
 * (grain >= 1) and runs fn on each; returns when all are done. A NULL pool
 * runs everything on the caller. Not re-entrant. */
void sk_threadpool_for(sk_threadpool *p, int64_t n, int64_t grain, sk_parallel_fn fn, void *ctx);
/* Number of online cores. */
int sk_cpu_count(void);

#endif
