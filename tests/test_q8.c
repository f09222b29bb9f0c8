/* The integer dot kernels (engine/backend/backend_cpu_q8.h) of every block
 * type on every instruction set this CPU has (portable C, AVX2, AVX-VNNI,
 * AVX-512 VNNI), on random weights and activations (never zero):
 *  - against the product of the dequantized weights with the dequantized
 *    activations in double: equal up to fp32 rounding (|e| <= 1e-5 · Σ|w x̂|),
 *    i.e. the integer part is exact;
 *  - against the fp32 reference Σ w x: within the bound the activation
 *    quantization allows, Σ_blocks (d_b / 2) · Σ_block |w| (plus rounding);
 *  - bit-identical results whatever number of activation rows a call takes;
 *  - the grouped kernels (rows interleaved in groups of 8 and 4, one per
 *    lane; the last group partial) likewise exact;
 *  - the portable and SIMD quantizers write identical bytes.
 * NF4 likewise, its codes read as the integer levels round(127 · value):
 * exact against those levels, and within the activations' bound plus
 * SK_Q8_NF4_STEP · absmax · Σ|x̂| of the fp32 product. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend_cpu_q8.h"
#include "engine/format/dtype.h"
#include "engine/format/nf4.h"
#include "engine/format/quants.h"
#include "tests/test.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

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
	return v == 0.0f ? 0.25f : v;
}

/* Random stored blocks with sane scales (and mins where the type has them). */
static uint8_t *random_weight(sk_dtype t, int64_t rows, int64_t cols)
{
	int64_t rb = sk_dtype_nbytes(t, cols);
	uint8_t *b = malloc((size_t)(rb * rows));
	for (int64_t i = 0; i < rb * rows; i++)
		b[i] = (uint8_t)rnd32();
	int64_t bb = sk_dtype_block_bytes(t), nblk = rb * rows / bb;
	for (int64_t k = 0; k < nblk; k++) {
		uint8_t *blk = b + k * bb;
		uint16_t d = sk_f32_to_f16(0.001f + 0.02f * fabsf(frand())), m = sk_f32_to_f16(0.01f * frand());
		uint16_t dm = sk_f32_to_f16(0.01f * fabsf(frand()));
		switch (t) {
		case SK_DT_Q4_0: case SK_DT_Q5_0: case SK_DT_Q8_0:
			memcpy(blk, &d, 2);
			break;
		case SK_DT_Q4_1: case SK_DT_Q5_1:
			memcpy(blk, &d, 2);
			memcpy(blk + 2, &m, 2);
			break;
		case SK_DT_Q4_K: case SK_DT_Q5_K:
			memcpy(blk, &d, 2);
			memcpy(blk + 2, &dm, 2);
			break;
		case SK_DT_Q6_K:
			memcpy(blk + 208, &d, 2);
			break;
		default:
			break;
		}
	}
	return b;
}

/* Activations in [-1, 1) with an outlier in some blocks (as real hidden
 * states have): the outlier sets the block's step, the rest lose bits. */
static void random_x(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = frand();
	for (int64_t b = 0; b < n / 32; b++)
		if (rnd32() % 4 == 0)
			x[b * 32 + rnd32() % 32] = 20.0f * frand();
}

static const sk_dtype types[] = { SK_DT_Q4_0, SK_DT_Q4_1, SK_DT_Q5_0, SK_DT_Q5_1,
                                  SK_DT_Q8_0, SK_DT_Q4_K, SK_DT_Q5_K, SK_DT_Q6_K };

/* The instruction sets of this CPU: portable, then each SIMD set up to the best. */
static int isas(sk_q8_isa *out)
{
	int n = 0;
	sk_q8_isa best = sk_q8_isa_best();
	out[n++] = SK_Q8_ISA_PORTABLE;
	if (best >= SK_Q8_ISA_AVX2)
		out[n++] = SK_Q8_ISA_AVX2;
	if (best == SK_Q8_ISA_AVXVNNI)
		out[n++] = SK_Q8_ISA_AVXVNNI;
	if (best == SK_Q8_ISA_AVX512VNNI)
		out[n++] = SK_Q8_ISA_AVX512VNNI;
	return n;
}

/* t: a block type, or SK_DT_COUNT for NF4 (dq: with double quantization) */
static void check_type_dq(sk_dtype t, sk_q8_isa isa, int64_t out, int64_t in, int64_t n, int dq)
{
	const int nf4 = t == SK_DT_COUNT;
	sk_q8_kernel k;
	CHECK(nf4 ? sk_q8_kernel_nf4(isa, &k) : sk_q8_kernel_for(t, isa, &k));
	float *wf = malloc(sizeof(float) * (size_t)(out * in)), *x = malloc(sizeof(float) * (size_t)(n * in));
	float *wi = malloc(sizeof(float) * (size_t)(out * in)); /* the weights the kernels multiply by */
	float *xh = malloc(sizeof(float) * (size_t)(n * in));
	float *y = malloc(sizeof(float) * (size_t)(n * out)), *y1 = malloc(sizeof(float) * (size_t)(n * out));
	void *mem = aligned_alloc(64, (sk_q8_bytes(n, in) + 63) & ~(size_t)63);
	uint8_t *wb = NULL;
	sk_nf4_tensor t4 = { 0 };
	const void *w;
	int64_t rb;
	if (nf4) {
		for (int64_t i = 0; i < out * in; i++)
			wf[i] = 0.05f * frand();
		CHECK(sk_nf4_quantize(wf, out * in, dq, &t4) == 0);
		sk_nf4_dequantize(&t4, 0, out * in, wf);
		for (int64_t i = 0; i < out * in; i++) {
			int code = i % 2 ? t4.packed[i / 2] & 15 : t4.packed[i / 2] >> 4;
			wi[i] = sk_nf4_block_absmax(&t4, i / SK_NF4_BLOCK) * (1.0f / 127) * sk_q8_nf4_levels[code];
		}
		w = &t4;
		rb = in;
	} else {
		wb = random_weight(t, out, in);
		CHECK(sk_dequantize(t, wb, wf, out * in) == 0);
		memcpy(wi, wf, sizeof(float) * (size_t)(out * in));
		w = wb;
		rb = sk_dtype_nbytes(t, in);
	}
	random_x(x, n * in);
	sk_q8_rows q;
	sk_q8_layout(&q, mem, n, in, k.corr, k.off);
	sk_q8_quantize(x, 0, n, &q, isa);
	for (int64_t i = 0; i < n; i++)
		for (int64_t c = 0; c < in; c++) {
			int64_t at = sk_q8_at(&q, i, c / 32);
			xh[i * in + c] = (float)q.q[at * 32 + c % 32] * q.d[at];
		}
	/* all rows at once in groups of SK_Q8_MAX_NX, and one row at a time;
	 * the weight rows in two calls (a call's first row need not be row 0) */
	int64_t half = out / 2;
	for (int64_t i0 = 0; i0 < n; i0 += SK_Q8_MAX_NX) {
		int nx = (int)(n - i0 < SK_Q8_MAX_NX ? n - i0 : SK_Q8_MAX_NX);
		k.dot(w, rb, 0, half, &q, i0, nx, y + i0 * out, out);
		k.dot(w, rb, half, out - half, &q, i0, nx, y + i0 * out + half, out);
	}
	for (int64_t i = 0; i < n; i++)
		k.dot(w, rb, 0, out, &q, i, 1, y1 + i * out, out);
	/* the grouped kernels: groups of 8 rows, then the rest in groups of 4 (the
	 * last one partial); their rows replace y's */
	float *yt = malloc(sizeof(float) * (size_t)(n * out));
	int grouped = k.tile != NULL;
	if (grouped) {
		int64_t n8 = n / 8 * 8, n4 = n - n8;
		void *m8 = aligned_alloc(64, (sk_q8_group_bytes(n, in, 8) + 63) & ~(size_t)63);
		void *m4 = aligned_alloc(64, (sk_q8_group_bytes(n, in, 4) + 63) & ~(size_t)63);
		sk_q8_group g8, g4;
		if (n8) {
			sk_q8_group_layout(&g8, m8, n8, in, 8, k.tile_corr, k.tile_off);
			sk_q8_group_fill(&q, 0, 0, g8.groups, &g8);
			for (int64_t g = 0; g < g8.groups; g++) {
				k.tile(w, rb, 0, half, &g8, g, yt + 8 * g * out, out, 8);
				k.tile(w, rb, half, out - half, &g8, g, yt + 8 * g * out + half, out, 8);
			}
		}
		if (n4) {
			sk_q8_group_layout(&g4, m4, n4, in, 4, k.tile_corr, k.tile_off);
			sk_q8_group_fill(&q, n8, 0, g4.groups, &g4);
			for (int64_t g = 0; g < g4.groups; g++) {
				int rows = (int)(n4 - 4 * g < 4 ? n4 - 4 * g : 4);
				k.tile4(w, rb, 0, half, &g4, g, yt + (n8 + 4 * g) * out, out, rows);
				k.tile4(w, rb, half, out - half, &g4, g, yt + (n8 + 4 * g) * out + half, out, rows);
			}
		}
		free(m8);
		free(m4);
	}
	double worst_exact = 0, worst_bound = 0, max_err = 0, max_rel = 0;
	int same = memcmp(y, y1, sizeof(float) * (size_t)(n * out)) == 0;
	if (grouped)
		memcpy(y, yt, sizeof(float) * (size_t)(n * out));
	for (int64_t i = 0; i < n; i++)
		for (int64_t r = 0; r < out; r++) {
			const float *wr = wf + r * in, *wq = wi + r * in;
			double ref = 0, refq = 0, magq = 0, mag = 0, bound = 0;
			for (int64_t c = 0; c < in; c++) {
				ref += (double)wr[c] * x[i * in + c];
				refq += (double)wq[c] * xh[i * in + c];
				magq += fabs((double)wq[c] * xh[i * in + c]);
				mag += fabs((double)wr[c] * x[i * in + c]);
				bound += 0.5 * q.d[sk_q8_at(&q, i, c / 32)] * fabs((double)wr[c]);
				if (nf4) /* the levels' rounding */
					bound += SK_Q8_NF4_STEP * sk_nf4_block_absmax(&t4, (r * in + c) / SK_NF4_BLOCK) *
					         fabs((double)xh[i * in + c]);
			}
			double got = y[i * out + r];
			double e1 = fabs(got - refq) / (1e-5 * magq + 1e-30);
			double e0 = fabs(y1[i * out + r] - refq) / (1e-5 * magq + 1e-30); /* the one-row kernel too */
			e1 = e0 > e1 ? e0 : e1;
			double e2 = fabs(got - ref) / (bound + 1e-5 * mag + 1e-30);
			worst_exact = e1 > worst_exact ? e1 : worst_exact;
			worst_bound = e2 > worst_bound ? e2 : worst_bound;
			max_err = fabs(got - ref) > max_err ? fabs(got - ref) : max_err;
			max_rel = fabs(got - ref) / mag > max_rel ? fabs(got - ref) / mag : max_rel;
		}
	printf("# %-4s %-11s [%lld x %lld] x %lld rows: |y - fp32| max %.3g (%.2g of Σ|wx|), %.2f of the bound; "
	       "vs dequantized activations %.2f of 1e-5%s\n",
	       nf4 ? (dq ? "NF4+" : "NF4") : sk_dtype_name(t), sk_q8_isa_name(isa), (long long)out, (long long)in,
	       (long long)n, max_err, max_rel,
	       worst_bound, worst_exact, grouped ? " (and the grouped kernels)" : "");
	CHECK_MSG(worst_exact <= 1.0, "%s %s: not the exact integer product", sk_dtype_name(t), sk_q8_isa_name(isa));
	CHECK_MSG(worst_bound <= 1.0, "%s %s: outside the quantization bound", sk_dtype_name(t), sk_q8_isa_name(isa));
	CHECK_MSG(same, "%s %s: a row's result depends on the rows computed with it", sk_dtype_name(t),
	          sk_q8_isa_name(isa));
	free(wb);
	if (nf4)
		sk_nf4_free(&t4);
	free(wf);
	free(wi);
	free(x);
	free(xh);
	free(y);
	free(y1);
	free(yt);
	free(mem);
}

static void check_type(sk_dtype t, sk_q8_isa isa, int64_t out, int64_t in, int64_t n)
{
	check_type_dq(t, isa, out, in, n, 1);
}

TEST(kernels_match_reference)
{
	sk_q8_isa is[4];
	int ni = isas(is);
	for (int a = 0; a < ni; a++)
		for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
			int kq = sk_dtype_block_elems(types[k]) == 256;
			/* odd row counts, and enough activation rows for a full group and a remainder */
			check_type(types[k], is[a], kq ? 37 : 53, kq ? 512 : 640, 11);
			check_type(types[k], is[a], 19, kq ? 1024 : 320, 24);
			check_type(types[k], is[a], 7, kq ? 256 : 64, 2);
			check_type(types[k], is[a], 9, kq ? 256 : 96, 4);
			check_type(types[k], is[a], 5, kq ? 2048 : 96, 1);
		}
	/* NF4, with and without double quantization; rows of 96 values start
	 * inside 64-value blocks */
	for (int a = 0; a < ni; a++)
		for (int dq = 0; dq < 2; dq++) {
			check_type_dq(SK_DT_COUNT, is[a], 41, 96, 11, dq);
			check_type_dq(SK_DT_COUNT, is[a], 33, 640, 4, dq);
			check_type_dq(SK_DT_COUNT, is[a], 7, 2048, 1, dq);
		}
}

TEST(nf4_levels)
{
	for (int c = 0; c < 16; c++) {
		CHECK_EQ_INT(sk_q8_nf4_levels[c], (int)lrintf(127.0f * sk_nf4_table[c]));
		CHECK(fabsf(sk_q8_nf4_levels[c] / 127.0f - sk_nf4_table[c]) <= SK_Q8_NF4_STEP);
	}
}

TEST(quantizers_agree)
{
	/* the hardware, not sk_q8_isa_best(): SK_NO_AVX2 turns off the dispatch, and
	 * this case calls the AVX2 quantizer by name */
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
		SKIP("no AVX2 on this CPU");
		return;
	}
	int64_t n = 7, in = 640;
	float *x = malloc(sizeof(float) * (size_t)(n * in));
	random_x(x, n * in);
	x[5] = 0; /* a block with a zero, and one all zero */
	for (int c = 64; c < 96; c++)
		x[c] = 0;
	const sk_q8_corr corrs[] = { SK_Q8_CORR_NONE, SK_Q8_CORR_LANES, SK_Q8_CORR_PAIRS };
	for (int ci = 0; ci < 3; ci++) {
		size_t bytes = sk_q8_bytes(n, in);
		void *ma = aligned_alloc(64, bytes), *mb = aligned_alloc(64, bytes);
		memset(ma, 0, bytes);
		memset(mb, 0, bytes);
		sk_q8_rows a, b;
		sk_q8_layout(&a, ma, n, in, corrs[ci], 16);
		sk_q8_layout(&b, mb, n, in, corrs[ci], 16);
		sk_q8_quantize(x, 0, n, &a, SK_Q8_ISA_PORTABLE);
		sk_q8_quantize(x, 0, n, &b, SK_Q8_ISA_AVX2);
		CHECK(memcmp(ma, mb, bytes) == 0);
		/* the correction array matches a separate fill */
		if (a.c) {
			int32_t *c0 = malloc(sizeof(int32_t) * (size_t)(n * in / 4));
			memcpy(c0, a.c, sizeof(int32_t) * (size_t)(n * in / 4));
			sk_q8_fill_corr(&a, 0, n);
			CHECK(memcmp(c0, a.c, sizeof(int32_t) * (size_t)(n * in / 4)) == 0);
			free(c0);
		}
		for (int64_t i = 0; i < n * in; i++)
			CHECK(a.q[i] >= -127 && a.q[i] <= 127);
		free(ma);
		free(mb);
	}
	free(x);
}

int main(void)
{
	printf("# best instruction set here: %s\n", sk_q8_isa_name(sk_q8_isa_best()));
	RUN(kernels_match_reference);
	RUN(quantizers_agree);
	RUN(nf4_levels);
	TEST_EXIT();
}
