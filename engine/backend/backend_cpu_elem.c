/* CPU ops: elementwise arithmetic, the gated GELU with Gemma 3n's gaussian
 * top-k sparsity, the final softcap, and AltUp's router/predict/correct and
 * magnitude matching. */
#include "engine/backend/backend_cpu.h"

#include <math.h>

void sk_cpu_add(sk_backend *be, const float *a, const float *b, int64_t count, float scale, float *y)
{
	(void)be;
	if (scale == 1.0f)
		for (int64_t i = 0; i < count; i++)
			y[i] = a[i] + b[i];
	else
		for (int64_t i = 0; i < count; i++)
			y[i] = (a[i] + b[i]) * scale;
}

void sk_cpu_mul_rows(sk_backend *be, const float *x, const float *w, int64_t w_stride, int64_t rows, int64_t dim,
                     float *y)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++)
		for (int64_t i = 0; i < dim; i++)
			y[r * dim + i] = x[r * dim + i] * w[r * w_stride + i];
}

/* The reference GELU's formula (the exact table's; see gelu_part_ref). */
static inline float gelu_tanh(float x)
{
	const float k = 0.7978845608028654f; /* sqrt(2/pi) */
	float inner = k * (x + 0.044715f * x * x * x);
	return 0.5f * x * (1.0f + tanhf(inner));
}

typedef struct {
	float *g;
	const float *u;
	int64_t u_stride, dim;
	const float *cut;  /* per row, or NULL */
} gelu_job;

/* The exact table's GELU, one element at a time with the C library's tanh:
 * the rounding training's gradient checks were tuned on. */
static void gelu_part_ref(void *ctx, int64_t e0, int64_t e1, int tid)
{
	(void)tid;
	gelu_job *j = ctx;
	for (int64_t e = e0; e < e1; e++) {
		float v = j->g[e];
		if (j->cut) {
			v -= j->cut[e / j->dim];
			if (v < 0)
				v = 0;
		}
		v = gelu_tanh(v);
		j->g[e] = j->u ? v * j->u[(e / j->dim) * j->u_stride + e % j->dim] : v;
	}
}

static void gelu_part(void *ctx, int64_t e0, int64_t e1, int tid)
{
	(void)tid;
	gelu_job *j = ctx;
	for (int64_t e = e0; e < e1;) {
		int64_t r = e / j->dim, c0 = e % j->dim, c1 = j->dim - c0 < e1 - e ? j->dim : c0 + (e1 - e);
		float *g = j->g + r * j->dim;
		if (j->cut)
			for (int64_t c = c0; c < c1; c++)
				g[c] = g[c] - j->cut[r] < 0 ? 0 : g[c] - j->cut[r];
		sk_cpu_gelu(g + c0, j->u ? j->u + r * j->u_stride + c0 : NULL, c1 - c0);
		e += c1 - c0;
	}
}

static void gelu_mul(sk_backend *be, float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
                     float sparsity_z, int ref)
{
	sk_cpu *c = sk_cpu_of(be);
	float *cut = NULL;
	if (sparsity_z != 0.0f) {
		cut = sk_cpu_scratch_get(&c->lora, (size_t)rows);
		if (!cut)
			return; /* cannot happen after the first call of a shape; rows are small */
		for (int64_t r = 0; r < rows; r++) {
			const float *gr = g + r * dim;
			double s = 0;
			for (int64_t i = 0; i < dim; i++)
				s += gr[i];
			double mean = s / (double)dim, v = 0;
			for (int64_t i = 0; i < dim; i++)
				v += ((double)gr[i] - mean) * ((double)gr[i] - mean);
			float stdv = (float)sqrt(v / (double)dim); /* population std, as HF (unbiased=False) */
			cut[r] = (float)mean + stdv * sparsity_z;
		}
	}
	gelu_job j = { .g = g, .u = u, .u_stride = u_stride, .dim = dim, .cut = cut };
	sk_threadpool_for(c->pool, rows * dim, 256, ref ? gelu_part_ref : gelu_part, &j);
}

void sk_cpu_gelu_mul(sk_backend *be, float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
                     float sparsity_z)
{
	gelu_mul(be, g, u, u_stride, rows, dim, sparsity_z, 0);
}

void sk_cpu_gelu_mul_ref(sk_backend *be, float *g, const float *u, int64_t u_stride, int64_t rows, int64_t dim,
                         float sparsity_z)
{
	gelu_mul(be, g, u, u_stride, rows, dim, sparsity_z, 1);
}

void sk_cpu_softcap(sk_backend *be, float *x, int64_t count, float cap)
{
	(void)be;
	for (int64_t i = 0; i < count; i++)
		x[i] = tanhf(x[i] / cap) * cap;
}

static float mean_sq(const float *x, int64_t dim)
{
	double s = 0;
	for (int64_t i = 0; i < dim; i++)
		s += (double)x[i] * x[i];
	return (float)(s / (double)dim);
}

void sk_cpu_rescale_rms(sk_backend *be, float *u, const float *ref, int64_t rows, int64_t dim)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		float *ur = u + r * dim;
		float target = sqrtf(mean_sq(ref + r * dim, dim));
		float ms = mean_sq(ur, dim);
		float cur = sqrtf(ms < 1e-5f ? 1e-5f : ms);
		for (int64_t i = 0; i < dim; i++)
			ur[i] = ur[i] * target / cur;
	}
}

void sk_cpu_altup_router(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
                         const float *w, int A, float *out)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		const float *xr = x + r * dim;
		float inv = (float)(1.0 / sqrt((double)(mean_sq(xr, dim) + eps)));
		float sdim = 1.0f / (float)dim;
		for (int k = 0; k < A; k++) {
			const float *wk = w + (int64_t)k * dim;
			float s = 0;
			for (int64_t i = 0; i < dim; i++)
				s += wk[i] * (((xr[i] * inv) * norm_w[i]) * sdim);
			out[r * A + k] = tanhf(s);
		}
	}
}

void sk_cpu_altup_predict(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                          const float *modal, float *p)
{
	(void)be;
	int64_t stride = rows * dim;
	float C[16 * 16];
	if (A > 16)
		return; /* the config check bounds altup_num_inputs */
	for (int64_t r = 0; r < rows; r++) {
		sk_cpu_small_matvec(wp, modal + r * A, A * A, A, C);
		for (int k = 0; k < A; k++) {
			float *pk = p + k * stride + r * dim;
			const float *xk = x + k * stride + r * dim;
			for (int64_t d = 0; d < dim; d++) {
				float s = 0;
				for (int i = 0; i < A; i++)
					s += C[k * A + i] * x[i * stride + r * dim + d];
				pk[d] = s + xk[d];
			}
		}
	}
}

void sk_cpu_altup_correct(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                          int active, const float *wc, const float *modal, float *c)
{
	(void)be;
	int64_t stride = rows * dim;
	float b[16];
	if (A > 16)
		return; /* the config check bounds altup_num_inputs */
	for (int64_t r = 0; r < rows; r++) {
		const float *pa = p + active * stride + r * dim, *yr = y + r * dim;
		sk_cpu_small_matvec(wc, modal + r * A, A, A, b);
		for (int k = 0; k < A; k++) {
			float beta = b[k] + 1.0f;
			const float *pk = p + k * stride + r * dim;
			float *ck = c + k * stride + r * dim;
			for (int64_t d = 0; d < dim; d++)
				ck[d] = (yr[d] - pa[d]) * beta + pk[d];
		}
	}
}
