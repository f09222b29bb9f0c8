/* CPU attention: causal, optional sliding window, GQA, keys from a ring
 * cache plus the batch's new keys. A task is one query head over a block
 * of query rows: the scores of the block against every key any of its rows
 * sees come from one sgemm per contiguous run of keys (the ring wraps at
 * most once, then the new rows), each row is masked to its own causal
 * window and softmaxed, and the output is another sgemm over the same
 * runs. Tasks are taken from a shared counter, the longest (latest rows)
 * first. A decode step (one row) instead takes the heads of a KV group
 * together (one sgemm reads each key once for all of them) and splits the
 * keys between the threads, each softmaxing its part against its own
 * maximum; the parts are then merged by their maxima and sums. */
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

/* ---- a decode step: one query row ---- */

typedef struct {
	attn_job *j;
	int64_t k0, nk, chunk, nchunks;
	int group;
	float *part; /* per task: [group][hd] unnormalized output, then per row its max and sum */
	atomic_llong next;
	atomic_int failed;
} step_job;

static int64_t part_floats(const step_job *s)
{
	return (int64_t)s->group * (s->j->hd + 2);
}

static void step_task(void *ctx, int64_t t0, int64_t t1, int tid)
{
	(void)t0, (void)t1;
	step_job *s = ctx;
	attn_job *j = s->j;
	const int hd = j->hd, G = s->group;
	float *sc = sk_cpu_scratch_get(&j->cpu->scratch[tid], (size_t)(G * s->chunk));
	if (!sc) {
		atomic_store(&s->failed, 1);
		return;
	}
	for (;;) {
		int64_t t = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
		if (t >= (int64_t)j->nkv * s->nchunks)
			return;
		int g = (int)(t / s->nchunks);
		int64_t a = s->k0 + (t % s->nchunks) * s->chunk, b = a + s->chunk < s->k0 + s->nk ? a + s->chunk : s->k0 + s->nk;
		int64_t len = b - a, off = (int64_t)g * hd;
		const float *q = j->q + (int64_t)g * G * hd; /* the group's heads, one after another */
		float *o = s->part + t * part_floats(s), *mx = o + G * hd, *sum = mx + G;
		key_run runs[4];
		int nr = key_runs(j, a, b, runs);
		int64_t c0 = 0;
		for (int r = 0; r < nr; c0 += runs[r].n, r++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, (int)runs[r].n, hd, j->scale, q, hd,
			            runs[r].k + off, (int)j->kv_dim, 0.0f, sc + c0, (int)len);
		for (int h = 0; h < G; h++) {
			float *sr = sc + h * len, m = -INFINITY;
			for (int64_t k = 0; k < len; k++) {
				if (j->softcap > 0)
					sr[k] = tanhf(sr[k] / j->softcap) * j->softcap;
				if (sr[k] > m)
					m = sr[k];
			}
			mx[h] = m;
			sum[h] = (float)sk_cpu_exp_sub(sr, len, m);
		}
		c0 = 0;
		for (int r = 0; r < nr; c0 += runs[r].n, r++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, G, hd, (int)runs[r].n, 1.0f, sc + c0, (int)len,
			            runs[r].v + off, (int)j->kv_dim, r ? 1.0f : 0.0f, o, hd);
	}
}

static int attn_step(attn_job *j)
{
	sk_cpu *c = j->cpu;
	step_job s = { .j = j, .group = j->nh / j->nkv };
	s.k0 = first_key(j, 0);
	s.nk = j->kv->past_hi + 1 - s.k0;
	/* enough parts for the threads, of at least 64 keys */
	int64_t parts = (c->nthreads + j->nkv - 1) / j->nkv;
	if (parts > 64)
		parts = 64;
	s.chunk = (s.nk + parts - 1) / parts;
	if (s.chunk < 64)
		s.chunk = 64;
	s.nchunks = (s.nk + s.chunk - 1) / s.chunk;
	int64_t tasks = j->nkv * s.nchunks;
	s.part = sk_cpu_scratch_get(&c->attn, (size_t)(tasks * part_floats(&s)));
	if (!s.part)
		return -1;
	atomic_init(&s.next, 0);
	atomic_init(&s.failed, 0);
	sk_threadpool_for(c->pool, tasks < c->nthreads ? tasks : c->nthreads, 1, step_task, &s);
	if (atomic_load(&s.failed))
		return -1;
	/* merge the parts: each scaled by e^(its max - the max), over the scaled sums */
	const int hd = j->hd, G = s.group;
	for (int g = 0; g < j->nkv; g++)
		for (int h = 0; h < G; h++) {
			float m = -INFINITY;
			for (int64_t p = 0; p < s.nchunks; p++) {
				const float *mx = s.part + (g * s.nchunks + p) * part_floats(&s) + G * hd;
				m = mx[h] > m ? mx[h] : m;
			}
			double total = 0, wgt[64];
			for (int64_t p = 0; p < s.nchunks; p++) {
				const float *mx = s.part + (g * s.nchunks + p) * part_floats(&s) + G * hd;
				wgt[p] = exp((double)mx[h] - m);
				total += wgt[p] * mx[G + h];
			}
			float *o = j->out + ((int64_t)g * G + h) * hd;
			for (int d = 0; d < hd; d++) {
				double v = 0;
				for (int64_t p = 0; p < s.nchunks; p++)
					v += wgt[p] * s.part[(g * s.nchunks + p) * part_floats(&s) + (int64_t)h * hd + d];
				o[d] = (float)(v / total);
			}
		}
	return 0;
}

int sk_cpu_attention(sk_backend *be, const float *q, int64_t n, const sk_attn_kv *kv, int nh, int nkv, int hd,
                      int window, float scale, float softcap, float *out)
{
	sk_cpu *c = sk_cpu_of(be);
	attn_job j = { .cpu = c, .q = q, .kv = kv, .n = n, .nh = nh, .nkv = nkv, .hd = hd, .window = window,
	               .scale = scale, .softcap = softcap, .out = out, .kv_dim = (int64_t)nkv * hd };
	if (n <= 0)
		return 0;
	if (n == 1 && nh % nkv == 0)
		return attn_step(&j) == 0 ? 0 : sk_fail("%s", _("attention: out of memory"));
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
