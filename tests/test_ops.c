/* Every CPU backend op against a naive double-precision reference on
 * random data, in the inference table and the exact (training) one where
 * they differ: the linear op over each stored type (decode, few-row and
 * sgemm paths; odd sizes; NF4; LoRA on some rows; the integer kernels
 * within their quantization bound), embedding rows, RMSNorm, RoPE,
 * attention over a ring cache with a window and GQA, the elementwise ops,
 * AltUp; and the thread pool. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend.h"
#include "engine/backend/backend_cpu_exact.h"
#include "engine/backend/backend_cpu_q8.h"
#include "engine/format/dtype.h"
#include "engine/format/nf4.h"
#include "engine/format/quants.h"
#include "engine/threadpool.h"
#include "tests/test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* uniform in [-1, 1), never exactly zero */
static float frand(void)
{
	float v = (float)((double)(rnd32() % 2000001u) / 1000000.0 - 1.0);
	return v == 0.0f ? 0.5f : v;
}

static void fill(float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = frand() * scale;
}

static sk_backend *be;

/* Random stored bytes of a type with sane block scales. */
static void *random_weight(sk_dtype t, int64_t rows, int64_t cols)
{
	int64_t rb = sk_dtype_nbytes(t, cols);
	uint8_t *b = malloc((size_t)(rb * rows));
	for (int64_t i = 0; i < rb * rows; i++)
		b[i] = (uint8_t)rnd32();
	int64_t bb = sk_dtype_block_bytes(t), nblk = rb * rows / bb;
	for (int64_t k = 0; k < nblk; k++) {
		uint8_t *blk = b + k * bb;
		uint16_t h1 = sk_f32_to_f16(0.001f + 0.02f * fabsf(frand())), h2 = sk_f32_to_f16(0.01f * fabsf(frand()));
		switch (t) {
		case SK_DT_F32: {
			float f = frand();
			memcpy(blk, &f, 4);
			break;
		}
		case SK_DT_F16: {
			uint16_t h = sk_f32_to_f16(frand());
			memcpy(blk, &h, 2);
			break;
		}
		case SK_DT_BF16: {
			uint16_t h = sk_f32_to_bf16(frand());
			memcpy(blk, &h, 2);
			break;
		}
		case SK_DT_Q4_0: case SK_DT_Q5_0: case SK_DT_Q8_0:
			memcpy(blk, &h1, 2);
			break;
		case SK_DT_Q4_1: case SK_DT_Q5_1:
		case SK_DT_Q4_K: case SK_DT_Q5_K:
			memcpy(blk, &h1, 2);
			memcpy(blk + 2, &h2, 2);
			break;
		case SK_DT_Q6_K:
			memcpy(blk + 208, &h1, 2);
			break;
		default:
			break;
		}
	}
	return b;
}

/* y[i][o] reference in double from the dequantized weight w [out][in] */
static void ref_linear(const float *w, const float *x, int64_t n, int64_t in, int64_t out, double *y, double *mag)
{
	for (int64_t i = 0; i < n; i++)
		for (int64_t o = 0; o < out; o++) {
			double s = 0, a = 0;
			for (int64_t k = 0; k < in; k++) {
				s += (double)w[o * in + k] * x[i * in + k];
				a += fabs((double)w[o * in + k] * x[i * in + k]);
			}
			y[i * out + o] = s;
			mag[i * out + o] = a;
		}
}

static int close_all(const float *y, const double *ref, const double *mag, size_t n, double rtol, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (!(fabs(y[i] - ref[i]) <= rtol * mag[i] + 1e-6)) {
			fprintf(stderr, "  %s: element %zu: %.9g, expected %.9g\n", what, i, y[i], ref[i]);
			return 0;
		}
	return 1;
}

/* The error the inference linear may add on block-quantized weights: its
 * activations are rounded to steps of max|x| / 127 per 32 values, so an
 * output may move by half a step times Σ|w| over each block. */
static void q8_bound(const float *w, const float *x, int64_t n, int64_t in, int64_t out, double *bound)
{
	for (int64_t i = 0; i < n; i++)
		for (int64_t o = 0; o < out; o++) {
			double b = 0;
			for (int64_t k0 = 0; k0 < in; k0 += 32) {
				double amax = 0, sw = 0;
				for (int64_t k = k0; k < k0 + 32; k++) {
					amax = fmax(amax, fabs((double)x[i * in + k]));
					sw += fabs((double)w[o * in + k]);
				}
				b += 0.5 * (amax / 127) * sw;
			}
			bound[i * out + o] = b;
		}
}

static int is_block_quantized(sk_dtype t)
{
	return t != SK_DT_F32 && t != SK_DT_F16 && t != SK_DT_BF16;
}

/* The exact table (training's) against the reference at fp32 rounding; the
 * inference table within the activation quantization's bound. */
static void check_linear_type(sk_dtype t, int64_t out, int64_t in)
{
	void *wb = random_weight(t, out, in);
	float *wf = malloc(sizeof(float) * (size_t)(out * in));
	CHECK(sk_dequantize(t, wb, wf, out * in) == 0);
	sk_tensor w = { .dtype = t, .ndim = 2, .shape = { out, in }, .data = wb, .device = SK_DEVICE_CPU };
	const sk_backend_ops *exact = sk_backend_cpu_exact_ops();
	int64_t ns[] = { 1, 3, 9, 70 }; /* fused dot, few rows, sgemm tiles; integer kernel groups and remainders */
	for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
		int64_t n = ns[k];
		float *x = malloc(sizeof(float) * (size_t)(n * in)), *y = malloc(sizeof(float) * (size_t)(n * out));
		double *r = malloc(sizeof(double) * (size_t)(n * out)), *mag = malloc(sizeof(double) * (size_t)(n * out));
		double *bound = malloc(sizeof(double) * (size_t)(n * out));
		fill(x, (size_t)(n * in), 1.0f);
		ref_linear(wf, x, n, in, out, r, mag);
		char what[64];
		snprintf(what, sizeof what, "%s [%lld x %lld] n=%lld", sk_dtype_name(t), (long long)out, (long long)in,
		         (long long)n);
		CHECK(exact->linear(be, &w, x, n, y, NULL, NULL) == 0);
		CHECK_MSG(close_all(y, r, mag, (size_t)(n * out), 2e-6, what), "exact %s", what);
		CHECK(be->ops->linear(be, &w, x, n, y, NULL, NULL) == 0);
		if (is_block_quantized(t)) {
			q8_bound(wf, x, n, in, out, bound);
			int ok = 1;
			for (int64_t e = 0; e < n * out && ok; e++)
				if (!(fabs(y[e] - r[e]) <= bound[e] + 2e-6 * mag[e])) {
					fprintf(stderr, "  %s: element %lld: %.9g, expected %.9g within %.3g\n", what, (long long)e,
					        y[e], r[e], bound[e]);
					ok = 0;
				}
			CHECK_MSG(ok, "inference %s", what);
		} else {
			CHECK_MSG(close_all(y, r, mag, (size_t)(n * out), 2e-6, what), "inference %s", what);
		}
		free(x);
		free(y);
		free(r);
		free(mag);
		free(bound);
	}
	free(wb);
	free(wf);
}

TEST(linear_every_stored_type)
{
	check_linear_type(SK_DT_F32, 37, 67);
	check_linear_type(SK_DT_F16, 70, 45);
	check_linear_type(SK_DT_BF16, 129, 83);
	check_linear_type(SK_DT_Q8_0, 131, 96);
	check_linear_type(SK_DT_Q4_0, 67, 160);
	check_linear_type(SK_DT_Q4_1, 33, 96);
	check_linear_type(SK_DT_Q5_0, 45, 64);
	check_linear_type(SK_DT_Q5_1, 40, 128);
	check_linear_type(SK_DT_Q4_K, 73, 512);
	check_linear_type(SK_DT_Q5_K, 19, 256);
	check_linear_type(SK_DT_Q6_K, 150, 512);
}

/* NF4 in both tables: exact at fp32 rounding; inference (integer levels
 * round(127 · value)) within the activations' bound plus the levels'
 * rounding, SK_Q8_NF4_STEP · absmax · Σ|x| per block. Rows of 96 values,
 * and 72 (not whole blocks of 32: the fp32 path in both tables). */
static void check_nf4(int64_t out, int64_t in)
{
	float *wf = malloc(sizeof(float) * (size_t)(out * in)), *wd = malloc(sizeof(float) * (size_t)(out * in));
	fill(wf, (size_t)(out * in), 0.5f);
	for (int dq = 0; dq < 2; dq++) {
		sk_nf4_tensor q;
		CHECK(sk_nf4_quantize(wf, out * in, dq, &q) == 0);
		sk_nf4_dequantize(&q, 0, out * in, wd);
		sk_tensor w = { .nf4 = 1, .ndim = 2, .shape = { out, in }, .data = &q, .device = SK_DEVICE_CPU };
		for (int64_t n = 1; n <= 9; n += 4) {
			float *x = malloc(sizeof(float) * (size_t)(n * in)), *y = malloc(sizeof(float) * (size_t)(n * out));
			double *r = malloc(sizeof(double) * (size_t)(n * out)), *mag = malloc(sizeof(double) * (size_t)(n * out));
			double *bound = malloc(sizeof(double) * (size_t)(n * out));
			fill(x, (size_t)(n * in), 1.0f);
			ref_linear(wd, x, n, in, out, r, mag);
			CHECK(sk_backend_cpu_exact_ops()->linear(be, &w, x, n, y, NULL, NULL) == 0);
			CHECK(close_all(y, r, mag, (size_t)(n * out), 2e-6, "nf4 exact"));
			CHECK(be->ops->linear(be, &w, x, n, y, NULL, NULL) == 0);
			if (in % 32 == 0) {
				q8_bound(wd, x, n, in, out, bound);
				int ok = 1;
				for (int64_t i = 0; i < n; i++)
					for (int64_t o = 0; o < out; o++) {
						double b = bound[i * out + o] + 2e-6 * mag[i * out + o];
						for (int64_t c0 = 0; c0 < in; c0 += 32) {
							double amax = 0; /* |x̂| <= |x| + half a step, max|x| / 254 */
							for (int64_t c = c0; c < c0 + 32; c++)
								amax = fmax(amax, fabs((double)x[i * in + c]));
							for (int64_t c = c0; c < c0 + 32; c++)
								b += SK_Q8_NF4_STEP * sk_nf4_block_absmax(&q, (o * in + c) / SK_NF4_BLOCK) *
								     (fabs((double)x[i * in + c]) + amax / 254);
						}
						ok &= fabs(y[i * out + o] - r[i * out + o]) <= b;
					}
				CHECK_MSG(ok, "nf4 integer [%lld x %lld] n=%lld", (long long)out, (long long)in, (long long)n);
			} else {
				CHECK(close_all(y, r, mag, (size_t)(n * out), 2e-6, "nf4 fp32"));
			}
			free(x);
			free(y);
			free(r);
			free(mag);
			free(bound);
		}
		sk_nf4_free(&q);
	}
	free(wf);
	free(wd);
}

TEST(linear_nf4_odd_rows)
{
	check_nf4(41, 96); /* rows start at elements that are not multiples of 64 */
	check_nf4(23, 72);
}

TEST(linear_lora_on_masked_rows)
{
	int64_t out = 50, in = 64, n = 7;
	int32_t rk = 3;
	void *wb = random_weight(SK_DT_BF16, out, in);
	float *wf = malloc(sizeof(float) * (size_t)(out * in));
	sk_dequantize(SK_DT_BF16, wb, wf, out * in);
	sk_tensor w = { .dtype = SK_DT_BF16, .ndim = 2, .shape = { out, in }, .data = wb, .device = SK_DEVICE_CPU };
	float A[3 * 64], B[50 * 3];
	fill(A, sizeof A / sizeof *A, 0.3f);
	fill(B, sizeof B / sizeof *B, 0.3f);
	sk_lora_pair lp = { A, B, rk, (int32_t)in, (int32_t)out, 1.75f };
	uint8_t mask[7] = { 1, 0, 1, 1, 0, 0, 1 };
	for (int64_t nn = 1; nn <= n; nn += 6) { /* 1 row (decode) and 7 rows (sgemm) */
		float x[7 * 64], y[7 * 50];
		double r[7 * 50], mag[7 * 50];
		fill(x, (size_t)(nn * in), 1.0f);
		CHECK(be->ops->linear(be, &w, x, nn, y, &lp, mask) == 0);
		ref_linear(wf, x, nn, in, out, r, mag);
		for (int64_t i = 0; i < nn; i++) {
			if (!mask[i])
				continue;
			double t[3];
			for (int j = 0; j < rk; j++) {
				t[j] = 0;
				for (int64_t k = 0; k < in; k++)
					t[j] += (double)A[j * in + k] * x[i * in + k];
			}
			for (int64_t o = 0; o < out; o++)
				for (int j = 0; j < rk; j++) {
					r[i * out + o] += 1.75 * B[o * rk + j] * t[j];
					mag[i * out + o] += fabs(1.75 * B[o * rk + j] * t[j]);
				}
		}
		CHECK(close_all(y, r, mag, (size_t)(nn * out), 2e-6, "lora"));
	}
	sk_lora_pair bad = { A, B, rk, 32, (int32_t)out, 1.0f };
	float x1[64], y1[50];
	fill(x1, 64, 1.0f);
	CHECK(be->ops->linear(be, &w, x1, 1, y1, &bad, mask) == -1);
	free(wb);
	free(wf);
}

/* linear2 (two matrices of one input: k and v, gate and up) gives exactly
 * what two linears give, LoRA pairs on masked rows included, with types
 * whose integer kernels want different activation corrections (Q5_0's
 * offset 16, Q8_0 read as unsigned), for a decode row, a batch of 4 and
 * groups of 8 plus a remainder. */
TEST(linear2_equals_two_linears)
{
	int64_t in = 96, o1 = 40, o2 = 24;
	void *w1b = random_weight(SK_DT_Q5_0, o1, in), *w2b = random_weight(SK_DT_Q8_0, o2, in);
	sk_tensor w1 = { .dtype = SK_DT_Q5_0, .ndim = 2, .shape = { o1, in }, .data = w1b, .device = SK_DEVICE_CPU };
	sk_tensor w2 = { .dtype = SK_DT_Q8_0, .ndim = 2, .shape = { o2, in }, .data = w2b, .device = SK_DEVICE_CPU };
	float A1[2 * 96], B1[40 * 2], A2[2 * 96], B2[24 * 2];
	fill(A1, sizeof A1 / sizeof *A1, 0.3f);
	fill(B1, sizeof B1 / sizeof *B1, 0.3f);
	fill(A2, sizeof A2 / sizeof *A2, 0.3f);
	fill(B2, sizeof B2 / sizeof *B2, 0.3f);
	sk_lora_pair l1 = { A1, B1, 2, (int32_t)in, (int32_t)o1, 1.5f }, l2 = { A2, B2, 2, (int32_t)in, (int32_t)o2, 0.5f };
	uint8_t mask[11] = { 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1 };
	CHECK(be->ops->linear2 != NULL);
	for (int64_t n = 1; n <= 11 && be->ops->linear2; n += n == 1 ? 3 : 7) {
		float *x = malloc(sizeof(float) * (size_t)(n * in));
		float *a1 = malloc(sizeof(float) * (size_t)(n * o1)), *a2 = malloc(sizeof(float) * (size_t)(n * o2));
		float *b1 = malloc(sizeof(float) * (size_t)(n * o1)), *b2 = malloc(sizeof(float) * (size_t)(n * o2));
		fill(x, (size_t)(n * in), 1.0f);
		CHECK(be->ops->linear2(be, &w1, &w2, x, n, a1, a2, &l1, &l2, mask) == 0);
		CHECK(be->ops->linear(be, &w1, x, n, b1, &l1, mask) == 0);
		CHECK(be->ops->linear(be, &w2, x, n, b2, &l2, mask) == 0);
		CHECK_MSG(memcmp(a1, b1, sizeof(float) * (size_t)(n * o1)) == 0, "first matrix, %lld rows", (long long)n);
		CHECK_MSG(memcmp(a2, b2, sizeof(float) * (size_t)(n * o2)) == 0, "second matrix, %lld rows", (long long)n);
		free(x), free(a1), free(a2), free(b1), free(b2);
	}
	free(w1b);
	free(w2b);
}

TEST(linear_rejects_unreadable_types)
{
	uint8_t buf[256] = { 1 };
	sk_tensor w = { .dtype = SK_DT_I32, .ndim = 2, .shape = { 2, 32 }, .data = buf };
	float x[32] = { 1 }, y[2];
	CHECK(be->ops->linear(be, &w, x, 1, y, NULL, NULL) == -1);
	sk_tensor q = { .dtype = SK_DT_Q4_K, .ndim = 2, .shape = { 1, 100 }, .data = buf };
	CHECK(be->ops->linear(be, &q, x, 1, y, NULL, NULL) == -1);
}

TEST(embed_rows)
{
	int64_t V = 40, H = 64;
	void *tb = random_weight(SK_DT_Q8_0, V, H);
	float *tf = malloc(sizeof(float) * (size_t)(V * H));
	sk_dequantize(SK_DT_Q8_0, tb, tf, V * H);
	sk_tensor t = { .dtype = SK_DT_Q8_0, .ndim = 2, .shape = { V, H }, .data = tb };
	int32_t ids[5] = { 3, 39, 0, 3, 17 };
	float out[5 * 64];
	CHECK(be->ops->embed(be, &t, ids, 5, 2.5f, out) == 0);
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < H; k++)
			CHECK_NEAR(out[i * H + k], tf[ids[i] * H + k] * 2.5, 1e-6);
	int32_t bad = 40;
	CHECK(be->ops->embed(be, &t, &bad, 1, 1.0f, out) == -1);
	free(tb);
	free(tf);
}

TEST(rmsnorm_with_and_without_weight)
{
	int64_t rows = 3, dim = 77;
	float x[3 * 77], w[77], y[3 * 77];
	fill(x, 3 * 77, 3.0f);
	fill(w, 77, 1.0f);
	for (int withw = 0; withw < 2; withw++) {
		be->ops->rmsnorm(be, x, rows, dim, withw ? w : NULL, 1e-6f, y);
		for (int64_t r = 0; r < rows; r++) {
			double ss = 0;
			for (int64_t i = 0; i < dim; i++)
				ss += (double)x[r * dim + i] * x[r * dim + i];
			double inv = 1.0 / sqrt(ss / dim + 1e-6);
			for (int64_t i = 0; i < dim; i++)
				CHECK_NEAR(y[r * dim + i], x[r * dim + i] * inv * (withw ? w[i] : 1.0), 1e-5);
		}
	}
	memcpy(y, x, sizeof x); /* in place */
	be->ops->rmsnorm(be, y, rows, dim, w, 1e-6f, y);
	float y2[3 * 77];
	be->ops->rmsnorm(be, x, rows, dim, w, 1e-6f, y2);
	CHECK(memcmp(y, y2, sizeof y) == 0);
}

TEST(rope_half_split)
{
	int64_t n = 3;
	int heads = 2, hd = 12;
	float x[3 * 2 * 12], y[3 * 2 * 12];
	fill(x, sizeof x / sizeof *x, 1.0f);
	int32_t pos[3] = { 0, 5, 1000 };
	float factors[2] = { 1.0f, 8.0f };
	for (int f = 0; f < 2; f++) {
		memcpy(y, x, sizeof x);
		be->ops->rope(be, y, n, heads, hd, pos, 10000.0f, factors[f]);
		for (int64_t i = 0; i < n; i++)
			for (int h = 0; h < heads; h++)
				for (int m = 0; m < hd / 2; m++) {
					double ang = pos[i] * pow(10000.0, -2.0 * m / hd) / factors[f];
					const float *v = x + (i * heads + h) * hd;
					double a = v[m], b = v[m + hd / 2];
					CHECK_NEAR(y[(i * heads + h) * hd + m], a * cos(ang) - b * sin(ang), 2e-4);
					CHECK_NEAR(y[(i * heads + h) * hd + m + hd / 2], b * cos(ang) + a * sin(ang), 2e-4);
				}
	}
}

/* naive attention of query position p over keys [lo, p] with K(pos)/V(pos):
 * n new rows after a ring of cap slots that has wrapped (past_hi keys seen) */
static void check_attention_on(const sk_backend_ops *ops, int n, int cap, int past_hi, int window, float softcap,
                               int NKV)
{
	enum { NH = 4, HD = 8 };
	int64_t kvd = NKV * HD, past_lo = past_hi > cap ? past_hi - cap : 0;
	float *kp = malloc(sizeof(float) * (size_t)(cap * kvd)), *vp = malloc(sizeof(float) * (size_t)(cap * kvd));
	float *kn = malloc(sizeof(float) * (size_t)(n * kvd)), *vn = malloc(sizeof(float) * (size_t)(n * kvd));
	float *q = malloc(sizeof(float) * (size_t)(n * NH * HD)), *out = malloc(sizeof(float) * (size_t)(n * NH * HD));
	double *s = malloc(sizeof(double) * (size_t)(cap + n));
	fill(kp, (size_t)(cap * kvd), 1.0f);
	fill(vp, (size_t)(cap * kvd), 1.0f);
	fill(kn, (size_t)(n * kvd), 1.0f);
	fill(vn, (size_t)(n * kvd), 1.0f);
	fill(q, (size_t)(n * NH * HD), 2.0f);
	sk_attn_kv kv = { kp, vp, cap, past_lo, past_hi, kn, vn, NULL };
	CHECK(ops->attention(be, q, n, &kv, NH, NKV, HD, window, 0.7f, softcap, out) == 0);
	double worst = 0;
	for (int i = 0; i < n; i++)
		for (int h = 0; h < NH; h++) {
			int64_t p = past_hi + i, lo = past_lo;
			if (window > 0 && p - window + 1 > lo)
				lo = p - window + 1;
			double mx = -1e300, sum = 0;
			int g = h / (NH / NKV);
			for (int64_t k = lo; k <= p; k++) {
				const float *kk = k >= past_hi ? kn + (k - past_hi) * kvd : kp + (k % cap) * kvd;
				double d = 0;
				for (int e = 0; e < HD; e++)
					d += (double)q[(i * NH + h) * HD + e] * kk[g * HD + e];
				d *= 0.7;
				if (softcap > 0)
					d = tanh(d / softcap) * softcap;
				s[k - lo] = d;
				if (d > mx)
					mx = d;
			}
			for (int64_t k = lo; k <= p; k++)
				sum += (s[k - lo] = exp(s[k - lo] - mx));
			for (int e = 0; e < HD; e++) {
				double o = 0;
				for (int64_t k = lo; k <= p; k++) {
					const float *vv = k >= past_hi ? vn + (k - past_hi) * kvd : vp + (k % cap) * kvd;
					o += s[k - lo] / sum * vv[g * HD + e];
				}
				double d = fabs(out[(i * NH + h) * HD + e] - o);
				worst = d > worst ? d : worst;
			}
		}
	CHECK_MSG(worst <= 1e-5, "%s attention, %d rows after %d keys, window %d: off by %g", ops->name, n, past_hi,
	          window, worst);
	free(kp), free(vp), free(kn), free(vn), free(q), free(out), free(s);
}

/* both tables: the inference one (blocks of rows by sgemm; a decode step
 * by parts of the keys) and the exact one; 2 KV heads, and 1 */
static void check_attention(int n, int cap, int past_hi, int window, float softcap)
{
	for (int nkv = 2; nkv >= 1; nkv--) {
		check_attention_on(be->ops, n, cap, past_hi, window, softcap, nkv);
		check_attention_on(sk_backend_cpu_exact_ops(), n, cap, past_hi, window, softcap, nkv);
	}
}

TEST(attention_ring_window_gqa)
{
	check_attention(5, 6, 9, 0, 0);
	check_attention(5, 6, 9, 4, 0);
	check_attention(5, 6, 9, 7, 5.0f);
	/* prefill-sized: blocks of up to 64 rows, a window inside the block, the ring wrapped mid-range */
	check_attention(150, 40, 57, 0, 0);
	check_attention(150, 40, 57, 37, 0);
	check_attention(1, 40, 57, 37, 0); /* a decode step */
	check_attention(1, 300, 420, 0, 0); /* ... whose keys the threads split (the ring wrapped) */
	check_attention(1, 300, 420, 0, 3.0f);
	check_attention(130, 1, 0, 0, 0);  /* no cache */
}

static double gelu_ref(double x)
{
	return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

TEST(elementwise_ops)
{
	enum { R = 3, D = 301 };
	float a[R * D], b[R * D], y[R * D], w[D];
	fill(a, R * D, 2.0f);
	fill(b, R * D, 2.0f);
	fill(w, D, 1.0f);
	be->ops->add(be, a, b, R * D, 0.7f, y);
	for (int i = 0; i < R * D; i++)
		CHECK_NEAR(y[i], ((double)a[i] + b[i]) * 0.7, 1e-6);
	be->ops->mul_rows(be, a, w, 0, R, D, y);
	for (int i = 0; i < R * D; i++)
		CHECK_NEAR(y[i], (double)a[i] * w[i % D], 1e-6);
	be->ops->mul_rows(be, a, b + 5, 7, R, 11, y); /* row r takes b[5 + 7r ...] */
	for (int r = 0; r < R; r++)
		for (int i = 0; i < 11; i++)
			CHECK_NEAR(y[r * 11 + i], (double)a[r * 11 + i] * b[5 + 7 * r + i], 1e-6);
	memcpy(y, a, sizeof a);
	be->ops->softcap(be, y, R * D, 1.5f);
	for (int i = 0; i < R * D; i++)
		CHECK_NEAR(y[i], 1.5 * tanh(a[i] / 1.5), 1e-6);
	/* gelu with product, plain, and with the gaussian top-k cutoff, in both tables */
	float zs[2] = { 0.0f, 1.6448536f };
	for (int k = 0; k < 4; k++)
		for (int with_u = 0; with_u < 2; with_u++) {
			const sk_backend_ops *ops = k < 2 ? be->ops : sk_backend_cpu_exact_ops();
			memcpy(y, a, sizeof a);
			ops->gelu_mul(be, y, with_u ? b : NULL, D, R, D, zs[k % 2]);
			int survivors = 0;
			for (int r = 0; r < R; r++) {
				double mean = 0, var = 0;
				for (int i = 0; i < D; i++)
					mean += a[r * D + i];
				mean /= D;
				for (int i = 0; i < D; i++)
					var += (a[r * D + i] - mean) * (a[r * D + i] - mean);
				double cut = mean + sqrt(var / D) * zs[k % 2]; /* population std */
				for (int i = 0; i < D; i++) {
					double g = a[r * D + i];
					if (zs[k % 2] != 0) {
						g = g - cut > 0 ? g - cut : 0;
						survivors += g > 0;
					}
					double e = gelu_ref(g) * (with_u ? b[r * D + i] : 1.0);
					CHECK_NEAR(y[r * D + i], e, 2e-6);
				}
			}
			if (zs[k % 2] != 0)
				CHECK(survivors > 0 && survivors < R * D / 5);
		}
	/* magnitude matching */
	memcpy(y, a, sizeof a);
	for (int i = 0; i < D; i++) /* a row with a tiny mean square hits the clamp */
		y[i] = 1e-4f * frand();
	float before[R * D];
	memcpy(before, y, sizeof y);
	be->ops->rescale_rms(be, y, b, R, D);
	for (int r = 0; r < R; r++) {
		double t = 0, c = 0;
		for (int i = 0; i < D; i++) {
			t += (double)b[r * D + i] * b[r * D + i];
			c += (double)before[r * D + i] * before[r * D + i];
		}
		double ms = c / D < 1e-5 ? 1e-5 : c / D;
		double f = sqrt(t / D) / sqrt(ms);
		for (int i = 0; i < D; i++)
			CHECK_NEAR(y[r * D + i], before[r * D + i] * f, 1e-5 * (1 + fabs(before[r * D + i] * f)));
	}
}

/* Scaling, zeroing, row gathers and scatters and ring writes, each with
 * its output poisoned first so an element it fails to write shows. */
TEST(data_movement_ops)
{
	enum { R = 6, D = 37 };
	float x[R * D], y[R * D], ring[4 * D];
	fill(x, R * D, 3.0f);
	for (int i = 0; i < R * D; i++)
		y[i] = NAN;
	be->ops->scale(be, x, R * D, -0.25f, y);
	for (int i = 0; i < R * D; i++)
		CHECK_NEAR(y[i], x[i] * -0.25, 1e-7);
	be->ops->scale(be, x, R * D, 1.0f, y);
	CHECK(memcmp(x, y, sizeof x) == 0);
	be->ops->zero(be, y, R * D);
	for (int i = 0; i < R * D; i++)
		CHECK(y[i] == 0.0f);
	int64_t idx[3] = { 4, 0, 4 }, sidx[3] = { 5, 1, 2 };
	for (int i = 0; i < R * D; i++)
		y[i] = NAN;
	be->ops->gather_rows(be, x, D, idx, 3, y);
	for (int i = 0; i < 3; i++)
		CHECK(memcmp(y + i * D, x + idx[i] * D, D * sizeof(float)) == 0);
	be->ops->scatter_rows(be, x, D, sidx, 3, y);
	for (int i = 0; i < 3; i++)
		CHECK(memcmp(y + sidx[i] * D, x + i * D, D * sizeof(float)) == 0);
	/* six rows from position 7 into a ring of 4: the last four land in slots 1, 2, 3, 0 */
	for (int i = 0; i < 4 * D; i++)
		ring[i] = NAN;
	int32_t pos[R] = { 7, 8, 9, 10, 11, 12 };
	be->ops->ring_write(be, x, R, D, ring, 4, pos);
	for (int i = 2; i < R; i++)
		CHECK(memcmp(ring + ((7 + i) % 4) * D, x + i * D, D * sizeof(float)) == 0);
	/* backend memory round trip */
	float *d = be->ops->alloc(be, sizeof x, "test");
	CHECK(d != NULL && d[0] == 0.0f && d[R * D - 1] == 0.0f);
	CHECK(be->ops->upload(be, d, x, sizeof x) == 0);
	for (int i = 0; i < R * D; i++)
		y[i] = NAN;
	CHECK(be->ops->download(be, y, d, sizeof x) == 0);
	CHECK(memcmp(x, y, sizeof x) == 0);
	be->ops->free(be, d);
}

TEST(altup_router_predict_correct)
{
	enum { A = 4, R = 2, D = 40 };
	float x[A * R * D], p[A * R * D], c[A * R * D], yv[R * D], nw[D], W[A * D], wp[A * A * A], wc[A * A], modal[R * A];
	fill(x, sizeof x / 4, 1.0f);
	fill(yv, sizeof yv / 4, 1.0f);
	fill(nw, D, 1.0f);
	fill(W, sizeof W / 4, 3.0f);
	fill(wp, sizeof wp / 4, 0.5f);
	fill(wc, sizeof wc / 4, 0.5f);
	be->ops->altup_router(be, x, R, D, nw, 1e-6f, W, A, modal);
	for (int r = 0; r < R; r++) {
		double ss = 0;
		for (int i = 0; i < D; i++)
			ss += (double)x[r * D + i] * x[r * D + i];
		double inv = 1 / sqrt(ss / D + 1e-6);
		for (int k = 0; k < A; k++) {
			double s = 0;
			for (int i = 0; i < D; i++)
				s += W[k * D + i] * x[r * D + i] * inv * nw[i] / D;
			CHECK_NEAR(modal[r * A + k], tanh(s), 1e-6);
		}
	}
	be->ops->altup_predict(be, x, R, D, A, wp, modal, p);
	for (int r = 0; r < R; r++)
		for (int k = 0; k < A; k++)
			for (int d = 0; d < D; d++) {
				double s = x[(k * R + r) * D + d];
				for (int i = 0; i < A; i++) {
					double C = 0;
					for (int m = 0; m < A; m++)
						C += wp[(k * A + i) * A + m] * modal[r * A + m];
					s += C * x[(i * R + r) * D + d];
				}
				CHECK_NEAR(p[(k * R + r) * D + d], s, 1e-5);
			}
	be->ops->altup_correct(be, p, yv, R, D, A, 1, wc, modal, c);
	for (int r = 0; r < R; r++)
		for (int k = 0; k < A; k++) {
			double beta = 1;
			for (int m = 0; m < A; m++)
				beta += wc[k * A + m] * modal[r * A + m];
			for (int d = 0; d < D; d++) {
				double e = p[(k * R + r) * D + d] + beta * (yv[r * D + d] - p[(1 * R + r) * D + d]);
				CHECK_NEAR(c[(k * R + r) * D + d], e, 1e-5);
			}
		}
}

typedef struct {
	int *hits;
	int64_t grain;
	int bad;
} pool_ctx;

static void mark(void *ctx, int64_t b, int64_t e, int tid)
{
	pool_ctx *c = ctx;
	(void)tid;
	if (b % c->grain != 0 && b != e)
		c->bad = 1;
	for (int64_t i = b; i < e; i++)
		__atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
}

TEST(threadpool_covers_range_once)
{
	for (int th = 1; th <= 4; th++) {
		sk_threadpool *p = sk_threadpool_new(th);
		CHECK(p != NULL && sk_threadpool_size(p) == th);
		int64_t sizes[] = { 0, 1, 7, 64, 1000, 4097 };
		for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
			for (int64_t grain = 1; grain <= 64; grain *= 8) {
				int *hits = calloc((size_t)sizes[s] + 1, sizeof *hits);
				pool_ctx c = { hits, grain, 0 };
				for (int rep = 0; rep < 50; rep++)
					sk_threadpool_for(p, sizes[s], grain, mark, &c);
				for (int64_t i = 0; i < sizes[s]; i++)
					CHECK(hits[i] == 50);
				CHECK(!c.bad);
				free(hits);
			}
		sk_threadpool_free(p);
	}
}

int main(void)
{
	be = sk_backend_cpu_new(2);
	if (!be)
		return 1;
	RUN(linear_every_stored_type);
	RUN(linear_nf4_odd_rows);
	RUN(linear_lora_on_masked_rows);
	RUN(linear2_equals_two_linears);
	RUN(linear_rejects_unreadable_types);
	RUN(embed_rows);
	RUN(rmsnorm_with_and_without_weight);
	RUN(rope_half_split);
	RUN(attention_ring_window_gqa);
	RUN(elementwise_ops);
	RUN(data_movement_ops);
	RUN(altup_router_predict_correct);
	RUN(threadpool_covers_range_once);
	sk_backend_free(be);
	TEST_EXIT();
}
