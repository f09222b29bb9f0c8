/* CPU attention: causal, optional sliding window, GQA, keys from a ring
 * cache plus the batch's new keys. A task is one query head over a block
 * of query rows: the scores of the block against every key any of its rows
 * sees come from one sgemm per contiguous run of keys (the ring wraps at
 * most once, then the new rows), each row is masked to its own causal
 * window and softmaxed, and the output is another sgemm over the same
 * runs. Decoding is the same with a block of one row. Tasks are taken from
 * a shared counter, the longest (latest rows) first. */
#include "engine/backend/backend_cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>

#include "engine/error.h"
#include "engine/i18n.h"

typedef struct {
	sk_cpu *cpu;
	const float *q;
	const sk_attn_kv *kv;
	int64_t n;
	int nh, nkv, hd, window;
	float scale, softcap;
	float *out;
	int64_t kv_dim, bq, nblocks;
	atomic_llong next;
	atomic_int failed;
} attn_job;

typedef struct {
	const float *k, *v;
	int64_t n;
} key_run;

/* Keys [k0, k1) as runs of consecutive rows in memory. */
static int key_runs(const attn_job *j, int64_t k0, int64_t k1, key_run *r)
{
	const sk_attn_kv *kv = j->kv;
	int nr = 0;
	int64_t p = k0;
	while (p < k1 && p < kv->past_hi) {
		int64_t slot = p % kv->cap, end = k1 < kv->past_hi ? k1 : kv->past_hi;
		int64_t len = end - p < kv->cap - slot ? end - p : kv->cap - slot;
		r[nr++] = (key_run){ kv->k_past + slot * j->kv_dim, kv->v_past + slot * j->kv_dim, len };
		p += len;
	}
	if (p < k1)
		r[nr++] = (key_run){ kv->k_new + (p - kv->past_hi) * j->kv_dim, kv->v_new + (p - kv->past_hi) * j->kv_dim,
			             k1 - p };
	return nr;
}

/* first key row i sees */
static int64_t first_key(const attn_job *j, int64_t i)
{
	int64_t p = j->kv->past_hi + i, lo = j->kv->past_lo;
	if (j->window > 0 && p - j->window + 1 > lo)
		lo = p - j->window + 1;
	return lo;
}

static void attn_block(attn_job *j, int h, int64_t i0, int64_t i1, float *sc)
{
	const sk_attn_kv *kv = j->kv;
	const int64_t m = i1 - i0, k0 = first_key(j, i0), k1 = kv->past_hi + i1, nk = k1 - k0;
	const int64_t qstride = (int64_t)j->nh * j->hd;
	const int64_t off = (int64_t)(h / (j->nh / j->nkv)) * j->hd;
	const float *q = j->q + i0 * qstride + (int64_t)h * j->hd;
	float *o = j->out + i0 * qstride + (int64_t)h * j->hd;
	key_run runs[4];
	int nr = key_runs(j, k0, k1, runs);
	int64_t c0 = 0;
	for (int r = 0; r < nr; c0 += runs[r].n, r++)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)runs[r].n, j->hd, j->scale, q,
		            (int)qstride, runs[r].k + off, (int)j->kv_dim, 0.0f, sc + c0, (int)nk);
	for (int64_t i = 0; i < m; i++) {
		float *s = sc + i * nk;
		int64_t lo = first_key(j, i0 + i) - k0, hi = kv->past_hi + i0 + i - k0; /* inclusive */
		float mx = -INFINITY;
		for (int64_t k = lo; k <= hi; k++) {
			if (j->softcap > 0)
				s[k] = tanhf(s[k] / j->softcap) * j->softcap;
			if (s[k] > mx)
				mx = s[k];
		}
		double sum = sk_cpu_exp_sub(s + lo, hi - lo + 1, mx);
		float inv = (float)(1.0 / sum);
		for (int64_t k = 0; k < lo; k++)
			s[k] = 0;
		for (int64_t k = lo; k <= hi; k++)
			s[k] *= inv;
		for (int64_t k = hi + 1; k < nk; k++)
			s[k] = 0;
	}
	c0 = 0;
	for (int r = 0; r < nr; c0 += runs[r].n, r++)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, j->hd, (int)runs[r].n, 1.0f, sc + c0, (int)nk,
		            runs[r].v + off, (int)j->kv_dim, r ? 1.0f : 0.0f, o, (int)qstride);
}

static void attn_task(void *ctx, int64_t t0, int64_t t1, int tid)
{
	(void)t0, (void)t1;
	attn_job *j = ctx;
	const int64_t total = j->nblocks * j->nh;
	float *sc = sk_cpu_scratch_get(&j->cpu->scratch[tid],
	                               (size_t)(j->bq * (j->kv->past_hi - j->kv->past_lo + j->n)));
	if (!sc) {
		atomic_store(&j->failed, 1);
		return;
	}
	for (;;) {
		int64_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
		if (t >= total)
			return;
		int64_t b = j->nblocks - 1 - t / j->nh; /* latest rows, the most keys, first */
		int h = (int)(t % j->nh);
		int64_t i0 = b * j->bq, i1 = i0 + j->bq < j->n ? i0 + j->bq : j->n;
		attn_block(j, h, i0, i1, sc);
	}
}

int sk_cpu_attention(sk_backend *be, const float *q, int64_t n, const sk_attn_kv *kv, int nh, int nkv, int hd,
                      int window, float scale, float softcap, float *out)
{
	sk_cpu *c = sk_cpu_of(be);
	attn_job j = { .cpu = c, .q = q, .kv = kv, .n = n, .nh = nh, .nkv = nkv, .hd = hd, .window = window,
	               .scale = scale, .softcap = softcap, .out = out, .kv_dim = (int64_t)nkv * hd };
	if (n <= 0)
		return 0;
	/* blocks of up to 64 rows, smaller when that leaves too few tasks for the threads */
	j.bq = 64;
	while (j.bq > 1 && ((n + j.bq - 1) / j.bq) * nh < 4 * c->nthreads)
		j.bq /= 2;
	j.nblocks = (n + j.bq - 1) / j.bq;
	atomic_init(&j.next, 0);
	atomic_init(&j.failed, 0);
	int64_t tasks = j.nblocks * nh;
	sk_threadpool_for(c->pool, tasks < c->nthreads ? tasks : c->nthreads, 1, attn_task, &j);
	if (atomic_load(&j.failed))
		return sk_fail("%s", _("attention: out of memory"));
	return 0;
}
