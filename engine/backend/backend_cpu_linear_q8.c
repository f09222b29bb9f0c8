/* The linear op on block-quantized weights with integer dot products
 * (backend_cpu_q8.h): the activation rows are quantized once, then the
 * threads take chunks of weight rows from a shared counter until none are
 * left, so a thread the machine slows down does not leave the others
 * waiting at the end (the 262,144-row LM head has no serial tail). One row
 * (a decode step) takes the one-row kernel; more rows are interleaved in
 * groups of 8 (prefill) and a last group of 4 or fewer (what remains, or
 * a batch of a few sequences), one row per vector lane, and a chunk's
 * weight rows stay in cache while the groups stream past. */
#include "engine/backend/backend_cpu.h"

#include <stdatomic.h>

#include "engine/backend/backend_cpu_q8.h"

typedef struct {
	sk_q8_kernel k;
	const void *w;     /* stored rows, or the sk_nf4_tensor */
	int64_t rb, out, chunk, nchunks; /* rb: bytes a row (NF4: values a row) */
	float *y;
	sk_q8_rows x;
	sk_q8_group g8, g4; /* rows [0, 8·g8.groups) and the rest; groups 0 when unused */
} q8_mat;

typedef struct {
	q8_mat m[2];
	int nm;
	int64_t n, n8; /* rows; rows in groups of 8 */
	int grouped;   /* the grouped kernels (else one-row kernels, up to 8 rows a call) */
	atomic_llong next;
	const float *xf; /* the fp32 rows */
	sk_q8_isa isa;
} q8_job;

/* Quantizes rows [r0, r1) (a multiple of 8 apart, but for the end) and
 * interleaves the groups that lie in them. */
static void q8_quantize_part(void *ctx, int64_t r0, int64_t r1, int tid)
{
	(void)tid;
	q8_job *j = ctx;
	sk_q8_quantize(j->xf, r0, r1, &j->m[0].x, j->isa);
	if (j->nm > 1 && j->m[1].x.c && j->m[1].x.c != j->m[0].x.c)
		sk_q8_fill_corr(&j->m[1].x, r0, r1);
	for (int m = 0; m < j->nm; m++) {
		q8_mat *M = &j->m[m];
		if (m == 1 && M->g8.q == j->m[0].g8.q && M->g4.q == j->m[0].g4.q)
			break; /* the same groups as the first matrix */
		if (M->g8.groups) {
			int64_t g1 = r1 / 8 < M->g8.groups ? r1 / 8 : M->g8.groups;
			sk_q8_group_fill(&M->x, 0, r0 / 8, g1, &M->g8);
		}
		if (M->g4.groups && r1 == j->n) /* the part with the last rows has them all */
			sk_q8_group_fill(&M->x, j->n8, 0, M->g4.groups, &M->g4);
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
		if (!j->grouped) {
			for (int64_t i0 = 0; i0 < j->n; i0 += SK_Q8_MAX_NX) {
				int nx = (int)(j->n - i0 < SK_Q8_MAX_NX ? j->n - i0 : SK_Q8_MAX_NX);
				m->k.dot(m->w, m->rb, r0, nr, &m->x, i0, nx, m->y + i0 * m->out + r0, m->out);
			}
			continue;
		}
		for (int64_t g = 0; g < m->g8.groups; g++)
			m->k.tile(m->w, m->rb, r0, nr, &m->g8, g, m->y + 8 * g * m->out + r0, m->out, 8);
		for (int64_t g = 0; g < m->g4.groups; g++) {
			int64_t i0 = j->n8 + 4 * g;
			int rows = (int)(j->n - i0 < 4 ? j->n - i0 : 4);
			m->k.tile4(m->w, m->rb, r0, nr, &m->g4, g, m->y + i0 * m->out + r0, m->out, rows);
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
	if (w->ndim != 2)
		return 0;
	int64_t in = sk_tensor_cols(w);
	if (in <= 0 || in % SK_Q8_BLOCK)
		return 0;
	if (w->nf4 ? !sk_q8_kernel_nf4(isa, &m->k) : !sk_q8_kernel_for(w->dtype, isa, &m->k))
		return 0;
	m->w = w->data;
	m->rb = w->nf4 ? in : sk_dtype_nbytes(w->dtype, in);
	m->out = sk_tensor_rows(w);
	if (m->rb <= 0 || m->out <= 0)
		return 0;
	m->chunk = chunk_rows(m->out, w->nf4 ? in / 2 : m->rb, c->nthreads);
	m->nchunks = (m->out + m->chunk - 1) / m->chunk;
	return 1;
}

static char *align64(char *p)
{
	return (char *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
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
	/* the portable kernels have no grouped form */
	j.grouped = n > 1 && j.m[0].k.tile && (!w2 || j.m[1].k.tile);
	j.n8 = j.grouped ? n / 8 * 8 : 0;
	int64_t n4 = j.grouped ? n - j.n8 : 0;
	/* the second matrix needs its own groups only when its correction differs */
	int gsep = w2 && j.grouped && (j.m[1].k.tile_corr != j.m[0].k.tile_corr || j.m[1].k.tile_off != j.m[0].k.tile_off);
	size_t bytes = sk_q8_bytes(n, in) + 64;
	size_t cbytes = j.grouped ? 0 : (size_t)(n * (in / SK_Q8_BLOCK)) * 8 * sizeof(int32_t) + 128;
	size_t g8b = j.n8 ? sk_q8_group_bytes(j.n8, in, 8) + 64 : 0, g4b = n4 ? sk_q8_group_bytes(n4, in, 4) + 64 : 0;
	char *mem = (char *)sk_cpu_scratch_get(&c->q8, (bytes + cbytes + (1 + gsep) * (g8b + g4b)) / sizeof(float) + 1);
	if (!mem)
		return -1;
	char *gmem = align64(mem + bytes + cbytes);
	for (int m = 0; m < j.nm; m++) {
		q8_mat *M = &j.m[m];
		if (j.grouped) {
			/* the groups carry their own correction; the rows need none */
			M->k.corr = SK_Q8_CORR_NONE;
			M->k.off = 0;
		}
		if (m == 0) {
			sk_q8_layout(&M->x, mem, n, in, M->k.corr, M->k.off);
		} else {
			/* the same bytes; a second correction array only when the types differ in it */
			M->x = j.m[0].x;
			if (M->k.corr != j.m[0].k.corr || M->k.off != j.m[0].k.off) {
				M->x.corr = M->k.corr;
				M->x.off = M->k.off;
				M->x.c = M->k.corr == SK_Q8_CORR_NONE ? NULL : (int32_t *)align64(mem + bytes);
			}
		}
		M->g8.groups = M->g4.groups = 0;
		M->g8.q = M->g4.q = NULL;
		if (m == 1 && !gsep) {
			M->g8 = j.m[0].g8;
			M->g4 = j.m[0].g4;
			continue;
		}
		if (j.n8)
			sk_q8_group_layout(&M->g8, gmem, j.n8, in, 8, M->k.tile_corr, M->k.tile_off);
		if (n4)
			sk_q8_group_layout(&M->g4, align64(gmem + g8b), n4, in, 4, M->k.tile_corr, M->k.tile_off);
		gmem = align64(gmem + g8b + g4b);
	}
	/* a decode step's few rows are quicker on one thread than a dispatch */
	if (n >= 16)
		sk_threadpool_for(c->pool, n, 8, q8_quantize_part, &j);
	else
		q8_quantize_part(&j, 0, n, 0);
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
