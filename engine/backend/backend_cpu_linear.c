/* The CPU linear op (y = x Wᵀ, weights in their stored type) and the
 * embedding lookup. Block-quantized and NF4 weights go to the integer
 * kernels (backend_cpu_linear_q8.c) unless the op is the exact table's;
 * the rest, and every weight in the exact table, take the fp32 path here. One input row
 * (decode): fused dequant+dot per weight row. A few rows: each weight row
 * dequantized once, then dotted with every input. Many rows (prefill):
 * tiles of SK_CPU_TILE weight rows dequantized into per-thread scratch and
 * multiplied with cblas_sgemm. Threads split the output rows; nothing the
 * size of a whole matrix is ever expanded. */
#include "engine/backend/backend_cpu.h"

#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/format/quants.h"

typedef struct {
	sk_cpu *cpu;
	const sk_tensor *w;
	const float *x;
	int64_t n, in, out, row_bytes;
	float *y;
	sk_cpu_dot_fn dot;
	atomic_int failed;
} lin_job;

/* n == 1 with a fused kernel: no scratch at all */
static void lin_fused(void *ctx, int64_t r0, int64_t r1, int tid)
{
	(void)tid;
	lin_job *j = ctx;
	const char *base = (const char *)j->w->data;
	for (int64_t r = r0; r < r1; r++)
		j->y[r] = j->dot(base + j->row_bytes * r, j->x, j->in);
}

/* a few input rows, or a type without a fused kernel: a block of weight rows
 * at a time into scratch, then plain dot products */
static void lin_rows(void *ctx, int64_t r0, int64_t r1, int tid)
{
	lin_job *j = ctx;
	sk_cpu_scratch *s = &j->cpu->scratch[tid];
	for (int64_t b = r0; b < r1; b += 16) {
		int64_t nb = r1 - b < 16 ? r1 - b : 16;
		const float *wr = sk_cpu_weight_rows(j->w, b, nb, s);
		if (!wr) {
			atomic_store(&j->failed, 1);
			return;
		}
		for (int64_t r = 0; r < nb; r++)
			for (int64_t i = 0; i < j->n; i++)
				j->y[i * j->out + b + r] = sk_cpu_sdot(wr + r * j->in, j->x + i * j->in, j->in);
	}
}

static void lin_tiles(void *ctx, int64_t r0, int64_t r1, int tid)
{
	lin_job *j = ctx;
	sk_cpu_scratch *s = &j->cpu->scratch[tid];
	for (int64_t b = r0; b < r1; b += SK_CPU_TILE) {
		int64_t nb = r1 - b < SK_CPU_TILE ? r1 - b : SK_CPU_TILE;
		const float *wr = sk_cpu_weight_rows(j->w, b, nb, s);
		if (!wr) {
			atomic_store(&j->failed, 1);
			return;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->n, (int)nb, (int)j->in, 1.0f, j->x,
		            (int)j->in, wr, (int)j->in, 0.0f, j->y + b, (int)j->out);
	}
}

/* y[rows] += scale · (x A^T) B^T over runs of consecutive flagged rows */
static int lin_lora(sk_cpu *c, const sk_lora_pair *l, const float *x, int64_t n, int64_t in, int64_t out, float *y,
                    const uint8_t *mask)
{
	if (l->in != in || l->out != out || l->r <= 0)
		return sk_fail(_("LoRA pair of shape [%d, %d] x [%d, %d] does not fit a [%lld, %lld] weight"), (int)l->out,
		               (int)l->r, (int)l->r, (int)l->in, (long long)out, (long long)in);
	for (int64_t i = 0; i < n;) {
		if (!mask[i]) {
			i++;
			continue;
		}
		int64_t k = i;
		while (k < n && mask[k])
			k++;
		int64_t rows = k - i;
		float *t = sk_cpu_scratch_get(&c->lora, (size_t)(rows * l->r));
		if (!t)
			return sk_fail("%s", _("out of memory"));
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, l->r, (int)in, 1.0f, x + i * in, (int)in,
		            l->A, (int)in, 0.0f, t, l->r);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, l->r, l->scale, t, l->r, l->B,
		            l->r, 1.0f, y + i * out, (int)out);
		i = k;
	}
	return 0;
}

static int linear_f32(sk_cpu *c, const sk_tensor *w, const float *x, int64_t n, float *y)
{
	lin_job j = { .cpu = c, .w = w, .x = x, .n = n, .in = sk_tensor_cols(w), .out = sk_tensor_rows(w), .y = y };
	atomic_init(&j.failed, 0);
	if (!w->nf4) {
		if (!sk_dequantize_supported(w->dtype))
			return sk_fail(_("linear: weights of type %s are not supported"), sk_dtype_name(w->dtype));
		j.row_bytes = sk_dtype_nbytes(w->dtype, j.in);
		if (j.row_bytes < 0)
			return sk_fail(_("linear: a row of %lld %s values is not whole blocks"), (long long)j.in,
			               sk_dtype_name(w->dtype));
		j.dot = sk_cpu_dot_kernel(w->dtype);
	}
	if (n == 1 && j.dot)
		sk_threadpool_for(c->pool, j.out, 16, lin_fused, &j);
	else if (n <= SK_CPU_SMALL)
		sk_threadpool_for(c->pool, j.out, 16, lin_rows, &j);
	else
		sk_threadpool_for(c->pool, j.out, SK_CPU_TILE, lin_tiles, &j);
	if (atomic_load(&j.failed))
		return sk_fail("%s", _("linear: out of memory"));
	return 0;
}

static int check_matrix(const sk_tensor *w)
{
	if (w->ndim != 2 || sk_tensor_cols(w) <= 0 || sk_tensor_rows(w) <= 0)
		return sk_fail("%s", _("linear: the weight is not a matrix"));
	return 0;
}

static int linear(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y, const sk_lora_pair *lora,
                  const uint8_t *lora_rows, int exact)
{
	sk_cpu *c = sk_cpu_of(be);
	if (n <= 0)
		return 0;
	if (check_matrix(w) != 0)
		return -1;
	int rc = exact ? 0 : sk_cpu_linear_q8(c, w, x, n, y);
	if (rc < 0)
		return sk_fail("%s", _("linear: out of memory"));
	if (rc == 0 && linear_f32(c, w, x, n, y) != 0)
		return -1;
	if (lora && lora_rows)
		return lin_lora(c, lora, x, n, sk_tensor_cols(w), sk_tensor_rows(w), y, lora_rows);
	return 0;
}

int sk_cpu_linear(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
                  const sk_lora_pair *lora, const uint8_t *lora_rows)
{
	return linear(be, w, x, n, y, lora, lora_rows, sk_cpu_of(be)->exact);
}

int sk_cpu_linear_exact(sk_backend *be, const sk_tensor *w, const float *x, int64_t n, float *y,
                        const sk_lora_pair *lora, const uint8_t *lora_rows)
{
	return linear(be, w, x, n, y, lora, lora_rows, 1);
}

/* Two matrices of one input in one dispatch when both have integer kernels
 * (the input quantized once); otherwise two linears. */
int sk_cpu_linear2(sk_backend *be, const sk_tensor *w1, const sk_tensor *w2, const float *x, int64_t n, float *y1,
                   float *y2, const sk_lora_pair *l1, const sk_lora_pair *l2, const uint8_t *lora_rows)
{
	sk_cpu *c = sk_cpu_of(be);
	if (n <= 0)
		return 0;
	if (check_matrix(w1) != 0 || check_matrix(w2) != 0)
		return -1;
	int rc = c->exact ? 0 : sk_cpu_linear2_q8(c, w1, w2, x, n, y1, y2);
	if (rc < 0)
		return sk_fail("%s", _("linear: out of memory"));
	if (rc == 0)
		return sk_cpu_linear(be, w1, x, n, y1, l1, lora_rows) != 0 ? -1
		                                                            : sk_cpu_linear(be, w2, x, n, y2, l2, lora_rows);
	if (l1 && lora_rows && lin_lora(c, l1, x, n, sk_tensor_cols(w1), sk_tensor_rows(w1), y1, lora_rows) != 0)
		return -1;
	if (l2 && lora_rows && lin_lora(c, l2, x, n, sk_tensor_cols(w2), sk_tensor_rows(w2), y2, lora_rows) != 0)
		return -1;
	return 0;
}

int sk_cpu_embed(sk_backend *be, const sk_tensor *table, const int32_t *ids, int64_t n, float scale, float *out)
{
	(void)be;
	int64_t cols = sk_tensor_cols(table), rows = sk_tensor_rows(table);
	int64_t rb = sk_tensor_row_bytes(table);
	if (table->nf4 || rb < 0)
		return sk_fail("%s", _("embedding: unsupported table type"));
	for (int64_t i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= rows)
			return sk_fail(_("token id %d is out of range (vocabulary of %lld)"), (int)ids[i], (long long)rows);
		float *o = out + i * cols;
		if (sk_dequantize(table->dtype, (const char *)table->data + rb * ids[i], o, cols) != 0)
			return sk_fail(_("embedding: weights of type %s are not supported"), sk_dtype_name(table->dtype));
		if (scale != 1.0f)
			for (int64_t k = 0; k < cols; k++)
				o[k] *= scale;
	}
	return 0;
}
