/* NF4 quantization and dequantization, bit-exact with bitsandbytes'
 * quantize_4bit / dequantize_4bit (formats.md §1), and the generic 8-bit
 * blockwise quantizer that double quantization uses (§1.6).
 *
 * Exactness notes: every product and sum is a separate float32 operation
 * (the build uses -std=c11, so GCC does not contract them into FMAs); the
 * scale is the float32 reciprocal of absmax, as in the reference kernel. */
#include "engine/format/nf4.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/threadpool.h"

const float sk_nf4_table[16] = {
	-0x1p+0f,         -0x1.647362p-1f, -0x1.0cd66p-1f,  -0x1.94654p-2f,
	-0x1.23449ap-2f,  -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0.0f,
	0x1.45f5fep-4f,   0x1.4995c6p-3f,  0x1.f809bap-3f,  0x1.5a0674p-2f,
	0x1.c3497p-2f,    0x1.200f56p-1f,  0x1.722766p-1f,  0x1p+0f,
};

/* Decision thresholds between adjacent codes: float64 midpoints of the table
 * rounded to float32 (formats.md §1.2; the test recomputes them). */
static const float nf4_thresholds[15] = {
	-0x1.b239bp-1f,  -0x1.38a4ep-1f,  -0x1.d709p-2f,   -0x1.5bd4ecp-2f, -0x1.e079d8p-3f,
	-0x1.1a7178p-3f, -0x1.74f0e2p-5f, 0x1.45f5fep-5f,  0x1.ec90c4p-4f,  0x1.a0cfcp-3f,
	0x1.2b05a8p-2f,  0x1.8ea7f2p-2f,  0x1.00da08p-1f,  0x1.491b5ep-1f,  0x1.b913b4p-1f,
};

/* The code is the number of thresholds y is strictly above: a value on a
 * threshold takes the lower code, and NaN (0 * inf in an all-zero block)
 * is above none and gets code 0, exactly like the reference decision tree. */
static inline unsigned nf4_code(float y)
{
	unsigned c = 0;
	for (int k = 0; k < 15; k++)
		c += y > nf4_thresholds[k];
	return c;
}

/* max |x| of one block as the reference kernel forms it: it starts from
 * -FLT_MAX and ignores NaN (fmaxf); a partial block also sees the zero
 * padding of its missing elements. */
static float block_absmax(const float *x, int64_t len, int64_t blocksize)
{
	/* a > m ? a : m is fmaxf here (m is never NaN), and inlined: the
	 * library call took a tenth of a model's load */
	float m = -FLT_MAX;
	for (int64_t i = 0; i < len; i++) {
		float a = fabsf(x[i]);
		m = a > m ? a : m;
	}
	if (len < blocksize)
		m = 0.0f > m ? 0.0f : m;
	return m;
}

uint8_t sk_blockwise8_code(const float code[256], float y)
{
	/* Seven halving steps from the middle entry; lo/hi remember the last
	 * entries passed on each side (±1 until one is passed). */
	int p = 127, lo_i = 0, hi_i = 255;
	float lo = -1.0f, hi = 1.0f;
	for (int step = 64; step > 0; step /= 2) {
		if (y > code[p]) {
			lo_i = p;
			lo = code[p];
			p += step;
		} else {
			hi_i = p;
			hi = code[p];
			p -= step;
		}
	}
	float v = code[p];
	if (hi_i == 255)
		hi = code[255];
	if (lo_i == 0)
		lo = code[0];
	/* Only the neighbour on y's side is considered; a tie at the midpoint
	 * stays on the entry where the search ended. */
	if (y > v)
		return (uint8_t)(y > (hi + v) * 0.5f ? hi_i : p);
	return (uint8_t)(y < (lo + v) * 0.5f ? lo_i : p);
}

/* Blocks [b0, b1) of sk_blockwise8_quantize */
static void blockwise8_blocks(const float *x, int64_t n, int64_t blocksize, const float code[256], uint8_t *q,
			      float *absmax, int64_t b0, int64_t b1)
{
	for (int64_t b = b0, s = b0 * blocksize; b < b1 && s < n; s += blocksize, b++) {
		int64_t len = n - s < blocksize ? n - s : blocksize;
		float m = block_absmax(x + s, len, blocksize);
		float inv = 1.0f / m;
		absmax[b] = m;
		for (int64_t i = 0; i < len; i++)
			q[s + i] = sk_blockwise8_code(code, x[s + i] * inv);
	}
}

void sk_blockwise8_quantize(const float *x, int64_t n, int64_t blocksize, const float code[256],
			    uint8_t *q, float *absmax)
{
	blockwise8_blocks(x, n, blocksize, code, q, absmax, 0, (n + blocksize - 1) / blocksize);
}

typedef struct {
	const float *x;
	int64_t n, blocksize;
	const float *code;
	uint8_t *q;
	float *absmax;
} blockwise8_job;

static void blockwise8_part(void *ctx, int64_t begin, int64_t end, int tid)
{
	(void)tid;
	const blockwise8_job *j = ctx;
	blockwise8_blocks(j->x, j->n, j->blocksize, j->code, j->q, j->absmax, begin, end);
}

void sk_blockwise8_dequantize(const uint8_t *q, const float *absmax, int64_t n, int64_t blocksize,
			      const float code[256], float *out)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = code[q[i]] * absmax[i / blocksize];
}

float sk_nf4_absmax_mean(const float *absmax, int64_t n)
{
	if (n <= 0)
		return 0.0f;
	/* 32 threads x 4 vector lanes, each lane summing a strided slice in
	 * order, lanes combined per thread, then a halving tree over threads:
	 * the order of PyTorch's CUDA reduction for short vectors. */
	float acc[32][4] = { { 0 } };
	for (int64_t e = 0; e < n; e++) {
		float *a = &acc[(e / 4) % 32][e % 4];
		*a = *a + absmax[e];
	}
	float t[32];
	for (int i = 0; i < 32; i++)
		t[i] = ((acc[i][0] + acc[i][1]) + acc[i][2]) + acc[i][3];
	for (int off = 16; off > 0; off /= 2)
		for (int i = 0; i < off; i++)
			t[i] = t[i] + t[i + off];
	float factor = 1.0f / (float)n;
	return t[0] * factor;
}

void sk_nf4_free(sk_nf4_tensor *t)
{
	if (!t)
		return;
	free(t->packed);
	free(t->absmax);
	free(t->absmax_q);
	free(t->nested_absmax);
	memset(t, 0, sizeof *t);
}

/* First level, blocks [b0, b1): packed codes and float32 absmax. A whole
 * block counts its thresholds a threshold at a time over all 64 values,
 * which the compiler vectorizes; the codes are nf4_code's. */
static void quantize_blocks(const float *x, int64_t n, int64_t b0, int64_t b1, uint8_t *packed, float *absmax)
{
	for (int64_t b = b0; b < b1; b++) {
		int64_t s = b * SK_NF4_BLOCK;
		int64_t len = n - s < SK_NF4_BLOCK ? n - s : SK_NF4_BLOCK;
		float m = block_absmax(x + s, len, SK_NF4_BLOCK);
		float inv = 1.0f / m;
		absmax[b] = m;
		if (len == SK_NF4_BLOCK) {
			float y[SK_NF4_BLOCK];
			uint8_t c[SK_NF4_BLOCK];
			for (int i = 0; i < SK_NF4_BLOCK; i++) {
				y[i] = x[s + i] * inv;
				c[i] = 0;
			}
			for (int k = 0; k < 15; k++)
				for (int i = 0; i < SK_NF4_BLOCK; i++)
					c[i] = (uint8_t)(c[i] + (y[i] > nf4_thresholds[k]));
			for (int i = 0; i < SK_NF4_BLOCK / 2; i++)
				packed[s / 2 + i] = (uint8_t)(c[2 * i] << 4 | c[2 * i + 1]);
			continue;
		}
		for (int64_t i = 0; i < len; i += 2) {
			/* a missing odd element is the zero padding, quantized like any value */
			float y1 = i + 1 < len ? x[s + i + 1] : 0.0f;
			unsigned hi = nf4_code(x[s + i] * inv), lo = nf4_code(y1 * inv);
			packed[(s + i) / 2] = (uint8_t)(hi << 4 | lo);
		}
	}
}

typedef struct {
	const float *x;
	int64_t n;
	uint8_t *packed;
	float *absmax;
} codes_job;

static void codes_part(void *ctx, int64_t begin, int64_t end, int tid)
{
	(void)tid;
	const codes_job *j = ctx;
	quantize_blocks(j->x, j->n, begin, end, j->packed, j->absmax);
}

static int quantize(const float *x, int64_t n, int double_quant, int have_offset, float offset,
		    sk_nf4_tensor *out, sk_threadpool *pool)
{
	memset(out, 0, sizeof *out);
	if (n < 0 || n > INT64_MAX - SK_NF4_BLOCK)
		return sk_fail(_("nf4: invalid element count %lld"), (long long)n);
	int64_t nb = (n + SK_NF4_BLOCK - 1) / SK_NF4_BLOCK;
	int64_t nn = (nb + SK_NF4_NESTED_BLOCK - 1) / SK_NF4_NESTED_BLOCK;
	if ((uint64_t)nb > SIZE_MAX / sizeof(float) - 1)
		return sk_fail(_("nf4: tensor of %lld elements is too large"), (long long)n);
	out->n = n;
	out->double_quant = double_quant;
	/* +1 so that an empty tensor still gets valid (non-NULL) arrays */
	out->packed = malloc((size_t)(n / 2 + n % 2) + 1);
	float *absmax = malloc((size_t)nb * sizeof(float) + sizeof(float));
	if (!out->packed || !absmax)
		goto oom;
	codes_job job = { x, n, out->packed, absmax };
	sk_threadpool_for(pool, nb, 1024, codes_part, &job);
	if (!double_quant) {
		out->absmax = absmax;
		return 0;
	}
	out->absmax_q = malloc((size_t)nb + 1);
	out->nested_absmax = malloc((size_t)nn * sizeof(float) + sizeof(float));
	float *r = malloc((size_t)nb * sizeof(float) + sizeof(float));
	if (!out->absmax_q || !out->nested_absmax || !r) {
		free(r);
		goto oom;
	}
	out->nested_offset = have_offset ? offset : sk_nf4_absmax_mean(absmax, nb);
	for (int64_t b = 0; b < nb; b++)
		r[b] = absmax[b] - out->nested_offset;
	blockwise8_job bj = { r, nb, SK_NF4_NESTED_BLOCK, sk_dynamic_map_signed, out->absmax_q, out->nested_absmax };
	sk_threadpool_for(pool, nn, 16, blockwise8_part, &bj);
	free(r);
	free(absmax);
	return 0;
oom:
	free(absmax);
	sk_nf4_free(out);
	return sk_fail(_("nf4: out of memory quantizing %lld elements"), (long long)n);
}

int sk_nf4_quantize(const float *x, int64_t n, int double_quant, sk_nf4_tensor *out)
{
	return quantize(x, n, double_quant, 0, 0.0f, out, NULL);
}

int sk_nf4_quantize_pool(const float *x, int64_t n, int double_quant, sk_nf4_tensor *out, sk_threadpool *pool)
{
	return quantize(x, n, double_quant, 0, 0.0f, out, pool);
}

int sk_nf4_quantize_offset(const float *x, int64_t n, float offset, sk_nf4_tensor *out)
{
	return quantize(x, n, 1, 1, offset, out, NULL);
}

float sk_nf4_block_absmax(const sk_nf4_tensor *t, int64_t b)
{
	if (!t->double_quant)
		return t->absmax[b];
	/* two float32 operations, as bitsandbytes dequantizes the statistics
	 * (kernel product) and then adds the offset (a separate tensor op) */
	float scaled = sk_dynamic_map_signed[t->absmax_q[b]] * t->nested_absmax[b / SK_NF4_NESTED_BLOCK];
	return scaled + t->nested_offset;
}

void sk_nf4_dequantize(const sk_nf4_tensor *t, int64_t start, int64_t count, float *out)
{
	if (start < 0 || count <= 0 || start % SK_NF4_BLOCK != 0 || start >= t->n)
		return;
	if (count > t->n - start)
		count = t->n - start;
	const uint8_t *p = t->packed + start / 2;
	for (int64_t b = start / SK_NF4_BLOCK; count > 0; b++) {
		/* one float32 product per code and block, precomputed: the same
		 * value the reference computes per element, without branches */
		float a = sk_nf4_block_absmax(t, b), lut[16];
		for (int i = 0; i < 16; i++)
			lut[i] = sk_nf4_table[i] * a;
		if (count >= SK_NF4_BLOCK) {
			for (int k = 0; k < SK_NF4_BLOCK / 2; k++) {
				out[2 * k] = lut[p[k] >> 4];
				out[2 * k + 1] = lut[p[k] & 15];
			}
			p += SK_NF4_BLOCK / 2;
			out += SK_NF4_BLOCK;
			count -= SK_NF4_BLOCK;
		} else {
			for (int64_t i = 0; i < count; i++)
				out[i] = lut[i % 2 ? p[i / 2] & 15 : p[i / 2] >> 4];
			count = 0;
		}
	}
}
