/* CPU training ops: the LoRA branch with seeded dropout (forward and
 * backward into A/B gradients), and the transposed product of a frozen
 * weight (dx = dy · W) over dequantized tiles and sgemm, split over token
 * rows so no two threads write the same output. */
#include "engine/backend/backend_cpu_backward.h"

#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/format/quants.h"

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

int sk_dropout_keep(uint64_t seed, int64_t row, int64_t col, float p)
{
	uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ull * (uint64_t)(row + 1));
	h = mix64(h ^ (0xD1B54A32D192ED03ull * (uint64_t)(col + 1)));
	float u = (float)(h >> 40) * (1.0f / 16777216.0f);
	return u >= p;
}

/* drop(x) into out */
static void apply_dropout(const float *x, int64_t n, int64_t in, float p, uint64_t seed, float *out)
{
	float inv = 1.0f / (1.0f - p);
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < in; j++)
			out[i * in + j] = sk_dropout_keep(seed, i, j, p) ? x[i * in + j] * inv : 0.0f;
}

static int check_pair(const sk_lora_pair *l, int64_t n)
{
	if (!l || !l->A || !l->B || l->r <= 0 || l->in <= 0 || l->out <= 0 || n < 0)
		return sk_fail("%s", _("LoRA: invalid pair"));
	return 0;
}

int sk_cpu_lora_fwd(sk_backend *be, const sk_lora_pair *l, const float *x, int64_t n, float dropout, uint64_t seed,
                    float *y)
{
	sk_cpu *c = sk_cpu_of(be);
	if (check_pair(l, n) != 0)
		return -1;
	if (n == 0)
		return 0;
	int64_t in = l->in, r = l->r;
	int drop = dropout > 0.0f;
	float *buf = sk_cpu_scratch_get(&c->lora, (size_t)(n * r + (drop ? n * in : 0)));
	if (!buf)
		return sk_fail("%s", _("out of memory"));
	float *t = buf, *xd = buf + n * r;
	if (drop)
		apply_dropout(x, n, in, dropout, seed, xd);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)r, (int)in, 1.0f, drop ? xd : x, (int)in, l->A,
	            (int)in, 0.0f, t, (int)r);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, l->out, (int)r, l->scale, t, (int)r, l->B, (int)r,
	            1.0f, y, l->out);
	return 0;
}

int sk_cpu_lora_bwd(sk_backend *be, const sk_lora_pair *l, const float *x, const float *dy, int64_t n, float dropout,
                    uint64_t seed, float *gA, float *gB, float *dx)
{
	sk_cpu *c = sk_cpu_of(be);
	if (check_pair(l, n) != 0)
		return -1;
	if (n == 0)
		return 0;
	int64_t in = l->in, r = l->r, out = l->out;
	int drop = dropout > 0.0f;
	float *buf = sk_cpu_scratch_get(&c->lora, (size_t)(2 * n * r + (drop ? n * in : 0)));
	if (!buf)
		return sk_fail("%s", _("out of memory"));
	float *t = buf, *dt = buf + n * r, *xd = buf + 2 * n * r;
	const float *xin = x;
	if (drop) {
		apply_dropout(x, n, in, dropout, seed, xd);
		xin = xd;
	}
	/* t = drop(x) Aᵀ [n][r] */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)r, (int)in, 1.0f, xin, (int)in, l->A, (int)in,
	            0.0f, t, (int)r);
	/* gB [out][r] += scale · dyᵀ t */
	if (gB)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)r, (int)n, l->scale, dy, (int)out, t,
		            (int)r, 1.0f, gB, (int)r);
	/* dt = scale · dy B [n][r] */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)r, (int)out, l->scale, dy, (int)out, l->B,
	            (int)r, 0.0f, dt, (int)r);
	/* gA [r][in] += dtᵀ drop(x) */
	if (gA)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)in, (int)n, 1.0f, dt, (int)r, xin, (int)in,
		            1.0f, gA, (int)in);
	if (!dx)
		return 0;
	if (!drop) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)r, 1.0f, dt, (int)r, l->A,
		            (int)in, 1.0f, dx, (int)in);
		return 0;
	}
	/* dt A into the dropout buffer, then through the same mask and scaling */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)r, 1.0f, dt, (int)r, l->A, (int)in,
	            0.0f, xd, (int)in);
	float inv = 1.0f / (1.0f - dropout);
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < in; j++)
			if (sk_dropout_keep(seed, i, j, dropout))
				dx[i * in + j] += xd[i * in + j] * inv;
	return 0;
}

typedef struct {
	sk_cpu *cpu;
	const sk_tensor *w;
	const float *dy;
	int64_t in, out;
	float *dx;
	int accumulate;
	atomic_int failed;
} lbwd_job;

/* token rows [i0, i1): every weight tile dequantized once per part */
static void lbwd_part(void *ctx, int64_t i0, int64_t i1, int tid)
{
	lbwd_job *j = ctx;
	if (i0 >= i1)
		return;
	sk_cpu_scratch *s = &j->cpu->scratch[tid];
	for (int64_t b = 0; b < j->out; b += SK_CPU_TILE) {
		int64_t nb = j->out - b < SK_CPU_TILE ? j->out - b : SK_CPU_TILE;
		const float *wr = sk_cpu_weight_rows(j->w, b, nb, s);
		if (!wr) {
			atomic_store(&j->failed, 1);
			return;
		}
		float beta = (b == 0 && !j->accumulate) ? 0.0f : 1.0f;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(i1 - i0), (int)j->in, (int)nb, 1.0f,
		            j->dy + i0 * j->out + b, (int)j->out, wr, (int)j->in, beta, j->dx + i0 * j->in, (int)j->in);
	}
}

int sk_cpu_linear_bwd(sk_backend *be, const sk_tensor *w, const float *dy, int64_t n, float *dx, int accumulate)
{
	sk_cpu *c = sk_cpu_of(be);
	if (n <= 0)
		return 0;
	lbwd_job j = { .cpu = c, .w = w, .dy = dy, .in = sk_tensor_cols(w), .out = sk_tensor_rows(w), .dx = dx,
	               .accumulate = accumulate };
	atomic_init(&j.failed, 0);
	if (w->ndim != 2 || j.in <= 0 || j.out <= 0)
		return sk_fail("%s", _("linear: the weight is not a matrix"));
	if (!w->nf4 && (!sk_dequantize_supported(w->dtype) || sk_tensor_row_bytes(w) < 0))
		return sk_fail(_("linear: weights of type %s are not supported"), sk_dtype_name(w->dtype));
	/* parts of at least 64 rows: below that, duplicated dequantization costs more than it saves */
	sk_threadpool_for(c->pool, n, 64, lbwd_part, &j);
	if (atomic_load(&j.failed))
		return sk_fail("%s", _("linear: out of memory"));
	return 0;
}

