/* The linear op on block-quantized weights with integer dot products
 * (backend_cpu_q8.h): the activation rows are quantized once, then the
 * threads take chunks of weight rows from a shared counter until none are
 * left, so a thread the machine slows down does not leave the others
 * waiting at the end (the 262,144-row LM head has no serial tail). A chunk
 * runs every activation row: up to SK_Q8_MAX_NX rows at a time per weight
 * row, so decoding reads each weight once for the whole batch, and prefill
 * keeps the chunk's weight rows in cache while the activation rows stream
 * past in groups. */
#include "engine/backend/backend_cpu.h"

#include <stdatomic.h>

#include "engine/backend/backend_cpu_q8.h"

typedef struct {
	sk_q8_kernel k;
	const uint8_t *w;
	int64_t rb, out, chunk, nchunks;
	float *y;
	sk_q8_rows x;
	sk_q8_group8 g; /* the rows of full groups of 8 interleaved (prefill), when g.groups */
} q8_mat;

typedef struct {
	q8_mat m[2];
	int nm;
	int64_t n;
	int nxmax;
	atomic_llong next;
	const float *xf;   /* quantize: the fp32 rows */
	sk_q8_isa isa;
} q8_job;

/* rows [r0, r1), a multiple of 8 apart from the end */
static void q8_quantize_part(void *ctx, int64_t r0, int64_t r1, int tid)
{
	(void)tid;
	q8_job *j = ctx;
	sk_q8_quantize(j->xf, r0, r1, &j->m[0].x, j->isa);
	if (j->nm > 1 && j->m[1].x.c && j->m[1].x.c != j->m[0].x.c)
		sk_q8_fill_corr(&j->m[1].x, r0, r1);
	for (int m = 0; m < j->nm; m++) {
		sk_q8_group8 *g = &j->m[m].g;
		int64_t g1 = r1 / 8 < g->groups ? r1 / 8 : g->groups;
		if (g->groups && (m == 0 || g->q != j->m[0].g.q))
			sk_q8_group8_fill(&j->m[m].x, r0 / 8, g1, g);
	}
}

static void q8_run(void *ctx, int64_t t0, int64_t t1, int tid)
{
	(void)t0, (void)t1, (void)tid;
	q8_job *j = ctx;
	const int64_t total = j->m[0].nchunks + (j->nm > 1 ? j->m[1].nchunks : 0);
	for (;;) {
		int64_t c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
		if (c >= total)
			return;
		const q8_mat *m = &j->m[0];
		if (c >= m->nchunks) {
			c -= m->nchunks;
			m = &j->m[1];
		}
		int64_t r0 = c * m->chunk, nr = m->out - r0 < m->chunk ? m->out - r0 : m->chunk;
		for (int64_t g = 0; g < m->g.groups; g++)
			m->k.tile(m->w + m->rb * r0, m->rb, nr, &m->g, g, m->y + 8 * g * m->out + r0, m->out);
		for (int64_t i0 = 8 * m->g.groups; i0 < j->n; i0 += j->nxmax) {
			int nx = (int)(j->n - i0 < j->nxmax ? j->n - i0 : j->nxmax);
			m->k.dot(m->w + m->rb * r0, m->rb, nr, &m->x, i0, nx, m->y + i0 * m->out + r0, m->out);
		}
	}
}

/* Weight rows per chunk: enough chunks for the threads to even out (16 per
 * thread), at most 256 KiB of weights so a chunk stays in cache across the
 * activation groups of a prefill. */
static int64_t chunk_rows(int64_t out, int64_t rb, int threads)
{
	int64_t c = (out + 16 * threads - 1) / (16 * threads);
	int64_t cap = (256 * 1024) / (rb > 0 ? rb : 1);
	if (c > cap)
		c = cap;
	c = (c + 15) & ~(int64_t)15;
	return c < 16 ? 16 : c;
}

static int q8_prepare(sk_cpu *c, const sk_tensor *w, q8_mat *m, sk_q8_isa isa)
{
	if (w->nf4 || w->ndim != 2)
		return 0;
	int64_t in = sk_tensor_cols(w);
	if (in <= 0 || in % SK_Q8_BLOCK || !sk_q8_kernel_for(w->dtype, isa, &m->k))
		return 0;
	m->w = w->data;
	m->rb = sk_dtype_nbytes(w->dtype, in);
	m->out = sk_tensor_rows(w);
	if (m->rb <= 0 || m->out <= 0)
		return 0;
	m->chunk = chunk_rows(m->out, m->rb, c->nthreads);
	m->nchunks = (m->out + m->chunk - 1) / m->chunk;
	return 1;
}

/* Runs one or two matrices of the same input; 1 done, 0 not applicable
 * (the caller takes the fp32 path), -1 out of memory. */
static int q8_linear(sk_cpu *c, const sk_tensor *w1, const sk_tensor *w2, const float *x, int64_t n, float *y1,
                     float *y2)
{
	q8_job j = { .n = n, .xf = x, .isa = sk_q8_isa_best() };
	j.nm = w2 ? 2 : 1;
	if (!q8_prepare(c, w1, &j.m[0], j.isa) || (w2 && !q8_prepare(c, w2, &j.m[1], j.isa)))
		return 0;
	int64_t in = sk_tensor_cols(w1);
	if (w2 && sk_tensor_cols(w2) != in)
		return 0;
	j.m[0].y = y1;
	j.m[1].y = y2;
	/* prefill: full groups of 8 rows go to the interleaved kernels */
	int64_t groups = n >= 8 && j.m[0].k.tile && (!w2 || j.m[1].k.tile) ? n / 8 : 0;
	int gsep = w2 && groups && (j.m[1].k.tile_corr != j.m[0].k.tile_corr || j.m[1].k.tile_off != j.m[0].k.tile_off);
	size_t bytes = sk_q8_bytes(n, in);
	size_t cbytes = (size_t)(n * (in / SK_Q8_BLOCK)) * 8 * sizeof(int32_t) + 64;
	size_t gbytes = groups ? sk_q8_group8_bytes(n, in) + 64 : 0;
	char *mem = (char *)sk_cpu_scratch_get(&c->q8, (bytes + cbytes + (1 + gsep) * gbytes) / sizeof(float) + 1);
	if (!mem)
		return -1;
	char *gmem = (char *)(((uintptr_t)(mem + bytes + cbytes) + 63) & ~(uintptr_t)63);
	sk_q8_layout(&j.m[0].x, mem, n, in, j.m[0].k.corr, j.m[0].k.off);
	j.m[0].g.groups = j.m[1].g.groups = 0;
	if (groups)
		sk_q8_group8_layout(&j.m[0].g, gmem, n, in, j.m[0].k.tile_corr, j.m[0].k.tile_off);
	if (w2) {
		/* the same bytes; a second correction array only when the types differ in it */
		j.m[1].x = j.m[0].x;
		if (j.m[1].k.corr != j.m[0].k.corr || j.m[1].k.off != j.m[0].k.off) {
			j.m[1].x.corr = j.m[1].k.corr;
			j.m[1].x.off = j.m[1].k.off;
			j.m[1].x.c = j.m[1].k.corr == SK_Q8_CORR_NONE
			                     ? NULL
			                     : (int32_t *)(((uintptr_t)(mem + bytes) + 63) & ~(uintptr_t)63);
		}
		j.m[1].g = j.m[0].g;
		if (gsep)
			sk_q8_group8_layout(&j.m[1].g, gmem + gbytes, n, in, j.m[1].k.tile_corr, j.m[1].k.tile_off);
	}
	/* a decode step's few rows are quicker on one thread than a dispatch */
	if (n >= 16)
		sk_threadpool_for(c->pool, n, 8, q8_quantize_part, &j);
	else
		q8_quantize_part(&j, 0, n, 0);
	j.nxmax = j.isa == SK_Q8_ISA_AVX512VNNI ? SK_Q8_MAX_NX : 4;
	atomic_init(&j.next, 0);
	sk_threadpool_for(c->pool, c->nthreads, 1, q8_run, &j);
	return 1;
}

int sk_cpu_linear_q8(sk_cpu *c, const sk_tensor *w, const float *x, int64_t n, float *y)
{
	return q8_linear(c, w, NULL, x, n, y, NULL);
}

int sk_cpu_linear2_q8(sk_cpu *c, const sk_tensor *w1, const sk_tensor *w2, const float *x, int64_t n, float *y1,
                      float *y2)
{
	return q8_linear(c, w1, w2, x, n, y1, y2);
}
