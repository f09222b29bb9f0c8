/* Persistent pool: a generation counter announces a job; workers spin on it
 * for a while, then sleep on a condition variable. */
#include "engine/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/i18n.h"

/* Spin this many polls before sleeping (workers) or yielding (the caller):
 * long enough to bridge the gap between two ops of a decode step, short
 * enough not to starve other processes on a busy machine. */
#define SK_SPIN_ITERS 20000

struct sk_threadpool {
	int n;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_uint gen;
	atomic_int done;
	atomic_int sleeping;
	atomic_int quit;
	/* the current job */
	sk_parallel_fn fn;
	void *ctx;
	int64_t total, grain;
};

typedef struct {
	sk_threadpool *p;
	int tid;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("" ::: "memory"); /* PAUSE makes KVM guests exit to the host (pause-loop exiting) */
#endif
}

static void run_part(sk_threadpool *p, int tid)
{
	int64_t blocks = (p->total + p->grain - 1) / p->grain;
	int64_t b0 = blocks * tid / p->n, b1 = blocks * (tid + 1) / p->n;
	int64_t begin = b0 * p->grain, end = b1 * p->grain;
	if (end > p->total)
		end = p->total;
	if (begin > end)
		begin = end;
	p->fn(p->ctx, begin, end, tid);
}

static void *worker(void *arg)
{
	worker_arg *wa = arg;
	sk_threadpool *p = wa->p;
	int tid = wa->tid;
	free(wa);
	unsigned seen = 0; /* gen at creation: a job may be announced before this thread runs */
	for (;;) {
		unsigned g;
		int spins = 0;
		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && spins < SK_SPIN_ITERS) {
			cpu_relax();
			spins++;
		}
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleeping, 1);
			while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit))
				pthread_cond_wait(&p->cv, &p->mu);
			atomic_fetch_sub(&p->sleeping, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->quit))
			return NULL;
		seen = g;
		run_part(p, tid);
		atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
	}
}

int sk_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

sk_threadpool *sk_threadpool_new(int n)
{
	if (n <= 0)
		n = sk_cpu_count();
	if (n > 256)
		n = 256;
	sk_threadpool *p = calloc(1, sizeof *p);
	if (!p) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	p->n = n;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	atomic_init(&p->gen, 0);
	atomic_init(&p->done, 0);
	atomic_init(&p->sleeping, 0);
	atomic_init(&p->quit, 0);
	p->threads = calloc((size_t)n, sizeof *p->threads);
	if (!p->threads) {
		free(p);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	for (int i = 1; i < n; i++) {
		worker_arg *wa = malloc(sizeof *wa);
		if (!wa || pthread_create(&p->threads[i], NULL, worker, wa ? (wa->p = p, wa->tid = i, wa) : NULL) != 0) {
			free(wa);
			p->n = i; /* keep the threads that started */
			break;
		}
	}
	return p;
}

void sk_threadpool_free(sk_threadpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->quit, 1);
	atomic_fetch_add(&p->gen, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
}

int sk_threadpool_size(const sk_threadpool *p)
{
	return p ? p->n : 1;
}

void sk_threadpool_for(sk_threadpool *p, int64_t n, int64_t grain, sk_parallel_fn fn, void *ctx)
{
	if (grain < 1)
		grain = 1;
	if (!p || p->n == 1 || n <= grain) {
		fn(ctx, 0, n, 0);
		return;
	}
	p->fn = fn;
	p->ctx = ctx;
	p->total = n;
	p->grain = grain;
	atomic_store(&p->done, 0);
	if (atomic_load(&p->sleeping) > 0) {
		pthread_mutex_lock(&p->mu);
		atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	} else {
		atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
		/* a worker may have gone to sleep between the check and the bump */
		if (atomic_load(&p->sleeping) > 0) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_broadcast(&p->cv);
			pthread_mutex_unlock(&p->mu);
		}
	}
	run_part(p, 0);
	int spins = 0;
	while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1) {
		if (++spins < SK_SPIN_ITERS)
			cpu_relax();
		else
			sched_yield(); /* a worker may be waiting for this core */
	}
}
