/* The SIMD integer dot kernels, written once and compiled per instruction
 * set by the files that include this (not a header of its own):
 *   SK_Q8_DP   0: u8 × s8 products by maddubs + madd (AVX2);
 *              1: vpdpbusd of AVX-512 VNNI (256-bit, with AVX-512VL);
 *              2: vpdpbusd of AVX-VNNI.
 *   SK_Q8_BW   1 when AVX-512BW mask registers are there (bit expansion).
 *   SK_Q8_FN   the name of the kernel lookup this file defines.
 * The one-row kernels take one weight row at a time, decode each of its
 * blocks into registers once and multiply it into up to SK_Q8_MAX_NX
 * activation rows (each output by the same sequence of operations whatever
 * nx is, so a row's result does not depend on the rows computed with it);
 * a decode step reads each weight once. The grouped kernels multiply each
 * decoded block into a group of 8 or 4 interleaved activation rows
 * (sk_q8_group), one row per lane, so a block's per-row sums need no
 * horizontal reductions and the float work is shared by the group. */
#include <immintrin.h>
#include <string.h>

#include "engine/backend/backend_cpu_q8.h"
#include "engine/format/nf4.h"

#define NXM SK_Q8_MAX_NX
/* Weight bytes the grouped kernels read ahead of the block being
 * multiplied: the rows stream from memory once per step, and at a group's
 * compute per cache line the hardware prefetcher alone falls behind (the
 * LM head at 4 rows: 6.7 ms instead of 7.5; the one-row kernel is faster
 * without). */
#define SK_Q8_PREFETCH 1024
#define AI static inline __attribute__((always_inline))

AI float k_hsum(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
	return _mm_cvtss_f32(lo);
}

AI float k_f16(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, 2);
	return _cvtsh_ss(h);
}

AI __m256i k_load(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* acc + the sums of each 4 products u[k]·s[k] (u unsigned, s signed) */
AI __m256i k_dp(__m256i acc, __m256i u, __m256i s)
{
#if SK_Q8_DP == 1
	return _mm256_dpbusd_epi32(acc, u, s);
#elif SK_Q8_DP == 2
	return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
	return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

AI __m256i k_dp0(__m256i u, __m256i s)
{
#if SK_Q8_DP
	return k_dp(_mm256_setzero_si256(), u, s);
#else
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* 16 bytes of nibbles: value j = low nibble of byte j, value j + 16 = its
 * high nibble (the layout of Q4_0/Q4_1/Q5_0/Q5_1) */
AI __m256i k_nib16(const uint8_t *p)
{
	__m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
	/* a dword shift by 4 brings each byte's high nibble down; the mask drops the neighbour's bits */
	b = _mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
	return _mm256_and_si256(b, _mm256_set1_epi8(15));
}

/* v + 16 in the bytes whose bit in qh (32 bits, bit j for byte j) is set */
AI __m256i k_bit5(__m256i v, uint32_t qh)
{
#if SK_Q8_BW
	return _mm256_mask_add_epi8(v, _cvtu32_mask32(qh), v, _mm256_set1_epi8(16));
#else
	__m256i t = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
	                                _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
	                                                 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	t = _mm256_cmpeq_epi8(_mm256_and_si256(t, bit), bit);
	return _mm256_or_si256(v, _mm256_and_si256(t, _mm256_set1_epi8(16)));
#endif
}

/* v + 16 in the bytes of qh whose bit j is set (Q5_K) */
AI __m256i k_bitj(__m256i v, __m256i qh, const int j)
{
#if SK_Q8_BW
	return _mm256_mask_add_epi8(v, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << j))), v,
	                            _mm256_set1_epi8(16));
#else
	__m256i t = _mm256_and_si256(qh, _mm256_set1_epi8((char)(1 << j)));
	/* bit j to bit 4 of its byte; 16-bit shifts keep each byte's bit inside it */
	t = j < 4 ? _mm256_slli_epi16(t, 4 - j) : j > 4 ? _mm256_srli_epi16(t, j - 4) : t;
	return _mm256_or_si256(v, t);
#endif
}

/* The activation rows i0.. of a call: base pointers at block 0 of row i0;
 * rows are adjacent within a block (32 bytes, one float, 8 int32 apart)
 * and blocks rows apart, so every row's address is a constant offset. */
typedef struct {
	const int8_t *q;
	const float *d, *s;
	const int32_t *c;
	int64_t rows; /* the block stride, in rows */
} k_xrows;

AI void k_xrows_set(k_xrows *p, const sk_q8_rows *x, int64_t i0)
{
	p->q = x->q + i0 * 32;
	p->d = x->d + i0;
	p->s = x->s + i0;
	p->c = x->c ? x->c + i0 * 8 : NULL;
	p->rows = x->rows;
}

/* the 8 lanes of a per-row vector, as floats */
AI void k_lanes(__m256 v, float *t)
{
	_mm256_storeu_ps(t, v);
}

/* ---- 32-value blocks: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 ---- */

/* One 32-value block (weight bytes b, block k) into every pair's
 * accumulator; the mins of Q4_1/Q5_1 into the per-row vector mac. */
AI void block32(const uint8_t *b, int64_t k, const k_xrows *X, const int nx, __m256 *acc, __m256 *mac,
                const sk_dtype t)
{
	const int has_min = t == SK_DT_Q4_1 || t == SK_DT_Q5_1;
	const int corr = t == SK_DT_Q4_0 || t == SK_DT_Q5_0 || (t == SK_DT_Q8_0 && SK_Q8_DP);
	__m256i wv, aw = _mm256_setzero_si256();
	uint32_t qh;
	switch (t) {
	case SK_DT_Q4_0: wv = k_nib16(b + 2); break;
	case SK_DT_Q4_1: wv = k_nib16(b + 4); break;
	case SK_DT_Q5_0:
		memcpy(&qh, b + 2, 4);
		wv = k_bit5(k_nib16(b + 6), qh);
		break;
	case SK_DT_Q5_1:
		memcpy(&qh, b + 4, 4);
		wv = k_bit5(k_nib16(b + 8), qh);
		break;
	default:
		wv = k_load(b + 2);
#if SK_Q8_DP
		wv = _mm256_xor_si256(wv, _mm256_set1_epi8((char)0x80)); /* unsigned, the 128 corrected */
#else
		aw = _mm256_abs_epi8(wv); /* |w| · sign-moved x: maddubs cannot overflow */
#endif
		break;
	}
	const int8_t *xq = X->q + k * X->rows * 32;
	const int32_t *xc = corr ? X->c + k * X->rows * 8 : NULL;
	const __m256 dw = _mm256_set1_ps(k_f16(b));
	const float *xd = X->d + k * X->rows;
	if (has_min)
		*mac = _mm256_fmadd_ps(_mm256_set1_ps(k_f16(b + 2)), _mm256_loadu_ps(X->s + k * X->rows), *mac);
#pragma GCC unroll 8
	for (int i = 0; i < nx; i++) {
		__m256i xv = k_load(xq + 32 * i), s;
		if (t == SK_DT_Q8_0 && !SK_Q8_DP)
			s = k_dp0(aw, _mm256_sign_epi8(xv, wv));
		else if (corr)
			s = k_dp(k_load(xc + 8 * i), wv, xv);
		else
			s = k_dp0(wv, xv);
		acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_broadcast_ss(xd + i)), acc[i]);
	}
}

/* Even and odd blocks go to two accumulators per pair: two dependency
 * chains, so one row alone is not bound by the FMA latency. */
AI void rows32(const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_rows *x, int64_t i0, const int nx, float *y,
               int64_t ldy, const sk_dtype t)
{
	k_xrows X;
	k_xrows_set(&X, x, i0);
	const int64_t nb = x->n / 32;
	const int bsz = t == SK_DT_Q4_0 ? 18 : t == SK_DT_Q4_1 ? 20 : t == SK_DT_Q5_0 ? 22 : t == SK_DT_Q5_1 ? 24 : 34;
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		__m256 a0[NXM], a1[NXM], m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			a0[i] = a1[i] = _mm256_setzero_ps();
		const uint8_t *b = w;
		int64_t k = 0;
		for (; k + 2 <= nb; k += 2, b += 2 * bsz) {
			block32(b, k, &X, nx, a0, &m0, t);
			block32(b + bsz, k + 1, &X, nx, a1, &m1, t);
		}
		if (k < nb)
			block32(b, k, &X, nx, a0, &m0, t);
		float mn[8];
		k_lanes(_mm256_add_ps(m0, m1), mn);
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			y[i * ldy + r] = k_hsum(_mm256_add_ps(a0[i], a1[i])) + mn[i];
	}
}

/* ---- Q4_K / Q5_K: 256-value super-blocks of eight 32-value groups ---- */

/* The eight 6-bit scales and mins of a Q4_K/Q5_K super-block (12 bytes:
 * scales 0-3 and mins 0-3 in the low 6 bits of bytes 0-3 and 4-7; groups
 * 4-7 have their low 4 bits in the nibbles of bytes 8-11 and their top 2
 * bits in the top bits of bytes 0-7) as 8 floats each, unpacked with
 * 32-bit word operations: no byte stores for a vector load to wait on. */
AI void k_scale_min8(const uint8_t *s, __m256 *sc, __m256 *mn)
{
	uint32_t u0, u1, u2;
	memcpy(&u0, s, 4);
	memcpy(&u1, s + 4, 4);
	memcpy(&u2, s + 8, 4);
	const uint32_t six = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, top2 = 0x30303030u;
	uint64_t scv = (u0 & six) | (uint64_t)((u2 & lo4) | ((u0 >> 2) & top2)) << 32;
	uint64_t mnv = (u1 & six) | (uint64_t)(((u2 >> 4) & lo4) | ((u1 >> 2) & top2)) << 32;
	*sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)scv)));
	*mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mnv)));
}

/* A Q4_K/Q5_K superblock's 6-bit scales and mins times its fp16 d and dmin,
 * one each per group of 32. */
AI void k_q45k_scales(const uint8_t *b, float *dsc, float *dmn)
{
	__m256 sc, mn;
	k_scale_min8(b + 4, &sc, &mn);
	_mm256_store_ps(dsc, _mm256_mul_ps(sc, _mm256_set1_ps(k_f16(b))));
	_mm256_store_ps(dmn, _mm256_mul_ps(mn, _mm256_set1_ps(k_f16(b + 2))));
}

/* Groups 2g and 2g + 1 of a Q4_K/Q5_K superblock (quants qs, Q5_K's high
 * bits qh) as bytes 0..15, or 0..31 with the high bit. */
AI void k_q45k_pair(const uint8_t *qs, __m256i qh, const int five, const int g, __m256i m4, __m256i wv[2])
{
	__m256i v = k_load(qs + 32 * g);
	wv[0] = _mm256_and_si256(v, m4);
	wv[1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
	if (five) {
		wv[0] = k_bitj(wv[0], qh, 2 * g);
		wv[1] = k_bitj(wv[1], qh, 2 * g + 1);
	}
}

AI void rows_k45(const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_rows *x, int64_t i0, const int nx, float *y,
                 int64_t ldy, const int five)
{
	k_xrows X;
	k_xrows_set(&X, x, i0);
	const int64_t nsb = x->n / 256;
	const int bsz = five ? 176 : 144;
	const __m256i m4 = _mm256_set1_epi8(15);
	float dsc[8] __attribute__((aligned(32))), dmn[8] __attribute__((aligned(32)));
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		__m256 acc[2][NXM], mac = _mm256_setzero_ps(); /* even and odd groups: two dependency chains */
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			acc[0][i] = acc[1][i] = _mm256_setzero_ps();
		const uint8_t *b = w;
		for (int64_t sb = 0; sb < nsb; sb++, b += bsz) {
			k_q45k_scales(b, dsc, dmn);
			const uint8_t *qs = b + (five ? 48 : 16);
			const __m256i qh = five ? k_load(b + 16) : _mm256_setzero_si256();
#pragma GCC unroll 4
			for (int g = 0; g < 4; g++) {
				__m256i wv[2];
				k_q45k_pair(qs, qh, five, g, m4, wv);
#pragma GCC unroll 2
				for (int h = 0; h < 2; h++) {
					const int j = 2 * g + h;
					const int64_t k = 8 * sb + j;
					const int8_t *xq = X.q + k * X.rows * 32;
					const float *xd = X.d + k * X.rows;
					const __m256 dj = _mm256_broadcast_ss(&dsc[j]);
					/* the mins: dmin·m_j · (d·Σq)_j per row */
					mac = _mm256_fnmadd_ps(_mm256_broadcast_ss(&dmn[j]), _mm256_loadu_ps(X.s + k * X.rows), mac);
#pragma GCC unroll 8
					for (int i = 0; i < nx; i++)
						acc[h][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_dp0(wv[h], k_load(xq + 32 * i))),
						                            _mm256_mul_ps(dj, _mm256_broadcast_ss(xd + i)), acc[h][i]);
				}
			}
		}
		float mn[8];
		k_lanes(mac, mn);
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			y[i * ldy + r] = k_hsum(_mm256_add_ps(acc[0][i], acc[1][i])) + mn[i];
	}
}

/* ---- Q6_K: 256-value super-blocks, a signed 8-bit scale per 16 values ---- */

AI void rows_q6k(const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_rows *x, int64_t i0, const int nx, float *y,
                 int64_t ldy)
{
	k_xrows X;
	k_xrows_set(&X, x, i0);
	const int64_t nsb = x->n / 256;
	const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		__m256 acc[2][NXM]; /* even and odd groups: two dependency chains */
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			acc[0][i] = acc[1][i] = _mm256_setzero_ps();
		const uint8_t *b = w;
		for (int64_t sb = 0; sb < nsb; sb++, b += 210) {
			const __m256 dv = _mm256_set1_ps(k_f16(b + 208));
			const __m128i s16 = _mm_loadu_si128((const __m128i *)(b + 192));
#pragma GCC unroll 2
			for (int h = 0; h < 2; h++) {
				const __m256i ql0 = k_load(b + 64 * h), ql1 = k_load(b + 64 * h + 32);
				const __m256i qhv = k_load(b + 128 + 32 * h);
				__m256i q[4];
				q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qhv, 4), m30));
				q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qhv, 2), m30));
				q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qhv, m30));
				q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
				                       _mm256_and_si256(_mm256_srli_epi16(qhv, 2), m30));
#pragma GCC unroll 4
				for (int k = 0; k < 4; k++) {
					const int kk = 4 * h + k; /* group in the super-block: scales 2kk (first 16), 2kk+1 */
					const char a = (char)(2 * kk), c = (char)(2 * kk + 1);
#if SK_Q8_DP
					const __m256i sc = _mm256_cvtepi8_epi32(
						_mm_shuffle_epi8(s16, _mm_setr_epi8(a, a, a, a, c, c, c, c, a, a, a, a, c, c, c, c)));
#else
					const __m256i sc = _mm256_cvtepi8_epi16(
						_mm_shuffle_epi8(s16, _mm_setr_epi8(a, a, a, a, a, a, a, a, c, c, c, c, c, c, c, c)));
#endif
					const int64_t blk = 8 * sb + kk;
					const int8_t *xq = X.q + blk * X.rows * 32;
					const int32_t *xc = X.c + blk * X.rows * 8;
					const float *xd = X.d + blk * X.rows;
#pragma GCC unroll 8
					for (int i = 0; i < nx; i++) {
						__m256i xv = k_load(xq + 32 * i), s;
#if SK_Q8_DP
						s = _mm256_mullo_epi32(k_dp(k_load(xc + 8 * i), q[k], xv), sc);
#else
						s = _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(q[k], xv), k_load(xc + 8 * i)),
						                      sc);
#endif
						acc[k & 1][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s),
						                                _mm256_mul_ps(dv, _mm256_broadcast_ss(xd + i)),
						                                acc[k & 1][i]);
					}
				}
			}
		}
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			y[i * ldy + r] = k_hsum(_mm256_add_ps(acc[0][i], acc[1][i]));
	}
}

/* ---- NF4: 64-value blocks of 4-bit codes into a 16-value table ---- */

/* The first-level absmax of block b, computed as sk_nf4_block_absmax does. */
AI float k_nf4_absmax(const sk_nf4_tensor *t, int64_t b)
{
	if (!t->double_quant)
		return t->absmax[b];
	float scaled = sk_dynamic_map_signed[t->absmax_q[b]] * t->nested_absmax[b / SK_NF4_NESTED_BLOCK];
	return scaled + t->nested_offset;
}

/* The 32 weights of the values [f, f + 32) (f a multiple of 32) as levels
 * (sk_q8_nf4_levels): signed, or + 128 (unsigned) for vpdpbusd. Byte k
 * holds value 2k in its high nibble and 2k + 1 in its low one. */
AI __m256i k_nf4_levels(const sk_nf4_tensor *t, int64_t f, const int as_unsigned)
{
	const __m128i v = _mm_loadu_si128((const __m128i *)(t->packed + f / 2)), m4 = _mm_set1_epi8(15);
	const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4), lo = _mm_and_si128(v, m4);
	const __m256i codes = _mm256_set_m128i(_mm_unpackhi_epi8(hi, lo), _mm_unpacklo_epi8(hi, lo));
	__m128i tab = _mm_loadu_si128((const __m128i *)sk_q8_nf4_levels);
	if (as_unsigned)
		tab = _mm_xor_si128(tab, _mm_set1_epi8((char)0x80));
	return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(tab), codes);
}

AI void rows_nf4(const void *w0, int64_t in, int64_t r0, int64_t nrows, const sk_q8_rows *x, int64_t i0, const int nx,
                 float *y, int64_t ldy)
{
	const sk_nf4_tensor *t = w0;
	k_xrows X;
	k_xrows_set(&X, x, i0);
	const int64_t nb = in / 32;
	for (int64_t r = 0; r < nrows; r++) {
		const int64_t f0 = (r0 + r) * in;
		__m256 acc[2][NXM];
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			acc[0][i] = acc[1][i] = _mm256_setzero_ps();
		for (int64_t k = 0; k < nb; k++) {
			const int64_t f = f0 + 32 * k;
			const __m256i wv = k_nf4_levels(t, f, SK_Q8_DP != 0);
			const __m256 dw = _mm256_set1_ps(k_nf4_absmax(t, f / SK_NF4_BLOCK) * (1.0f / 127));
			const int8_t *xq = X.q + k * X.rows * 32;
			const float *xd = X.d + k * X.rows;
#if !SK_Q8_DP
			const __m256i aw = _mm256_abs_epi8(wv);
#endif
#pragma GCC unroll 8
			for (int i = 0; i < nx; i++) {
				__m256i xv = k_load(xq + 32 * i);
#if SK_Q8_DP
				__m256i s = k_dp(k_load(X.c + (k * X.rows + i) * 8), wv, xv);
#else
				__m256i s = k_dp0(aw, _mm256_sign_epi8(xv, wv));
#endif
				acc[k & 1][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_broadcast_ss(xd + i)),
				                                acc[k & 1][i]);
			}
		}
#pragma GCC unroll 8
		for (int i = 0; i < nx; i++)
			y[i * ldy + r] = k_hsum(_mm256_add_ps(acc[0][i], acc[1][i]));
	}
}

/* ---- one function per type, specialized per nx ---- */

#define K_BODY(fn, ...)                                                                                           \
	static void fn(const void *w0, int64_t rb, int64_t r0, int64_t nrows, const sk_q8_rows *x, int64_t i0,  \
	               int nx, float *y, int64_t ldy)                                                             \
	{                                                                                                         \
		const uint8_t *w = (const uint8_t *)w0 + r0 * rb;                                                 \
		(void)w;                                                                                          \
		switch (nx) {                                                                                     \
		case 1: __VA_ARGS__(1); break;                                                                    \
		case 2: __VA_ARGS__(2); break;                                                                    \
		case 3: __VA_ARGS__(3); break;                                                                    \
		case 4: __VA_ARGS__(4); break;                                                                    \
		case 5: __VA_ARGS__(5); break;                                                                    \
		case 6: __VA_ARGS__(6); break;                                                                    \
		case 7: __VA_ARGS__(7); break;                                                                    \
		default: __VA_ARGS__(8); break;                                                                   \
		}                                                                                                 \
	}

#define C_Q4_0(N) rows32(w, rb, nrows, x, i0, N, y, ldy, SK_DT_Q4_0)
#define C_Q4_1(N) rows32(w, rb, nrows, x, i0, N, y, ldy, SK_DT_Q4_1)
#define C_Q5_0(N) rows32(w, rb, nrows, x, i0, N, y, ldy, SK_DT_Q5_0)
#define C_Q5_1(N) rows32(w, rb, nrows, x, i0, N, y, ldy, SK_DT_Q5_1)
#define C_Q8_0(N) rows32(w, rb, nrows, x, i0, N, y, ldy, SK_DT_Q8_0)
#define C_Q4_K(N) rows_k45(w, rb, nrows, x, i0, N, y, ldy, 0)
#define C_Q5_K(N) rows_k45(w, rb, nrows, x, i0, N, y, ldy, 1)
#define C_Q6_K(N) rows_q6k(w, rb, nrows, x, i0, N, y, ldy)
#define C_NF4(N) rows_nf4(w0, rb, r0, nrows, x, i0, N, y, ldy)

K_BODY(k_q4_0, C_Q4_0)
K_BODY(k_q4_1, C_Q4_1)
K_BODY(k_q5_0, C_Q5_0)
K_BODY(k_q5_1, C_Q5_1)
K_BODY(k_q8_0, C_Q8_0)
K_BODY(k_q4_k, C_Q4_K)
K_BODY(k_q5_k, C_Q5_K)
K_BODY(k_q6_k, C_Q6_K)
K_BODY(k_nf4, C_NF4)

/* ---- groups of G = 8 or 4 activation rows, one per lane ---- */

typedef struct {
	const int8_t *q;
	const float *d, *s;
	const int32_t *c;
	int64_t nb;
} k_group;

AI void k_group_set(k_group *P, const sk_q8_group *x, int64_t g, const int G)
{
	P->nb = x->n / 32;
	P->q = x->q + g * P->nb * G * 32;
	P->d = x->d + g * P->nb * G;
	P->s = x->s + g * P->nb * G;
	P->c = x->c ? x->c + g * P->nb * 2 * G : NULL;
}

/* The sums of a decoded weight block wv (32 bytes) with the block's G rows
 * (T: sk_q8_group's layout), from the correction c (NULL: 0): rows 0-3 in
 * *a, 4-7 in *b (G = 8), each as 4 lanes of the first half-block and 4 of
 * the second. vpshufd puts weight dword k in the low lanes and k + 4 in the
 * high ones; two sums per four rows keep the vpdpbusd chains short. */
AI void k_g_sums(__m256i wv, const int8_t *T, const int32_t *c, __m256i *a, __m256i *b, const int sign8, const int G)
{
	__m256i a0 = c ? k_load(c) : _mm256_setzero_si256(), b0 = G == 8 && c ? k_load(c + 8) : _mm256_setzero_si256();
	__m256i a1 = _mm256_setzero_si256(), b1 = _mm256_setzero_si256();
	const __m256i aw = sign8 ? _mm256_abs_epi8(wv) : wv;
#define K_SH(v, k) _mm256_shuffle_epi32(v, (k) * 0x55)
#define K_X(k, half) k_load(T + ((G / 4) * (k) + (half)) * 32)
#define K_STEP(acc_a, acc_b, k)                                                                                    \
	do {                                                                                                       \
		__m256i u = K_SH(aw, k);                                                                           \
		if (sign8) {                                                                                       \
			__m256i sg = K_SH(wv, k);                                                                  \
			acc_a = k_dp(acc_a, u, _mm256_sign_epi8(K_X(k, 0), sg));                                   \
			if (G == 8)                                                                                \
				acc_b = k_dp(acc_b, u, _mm256_sign_epi8(K_X(k, 1), sg));                           \
		} else {                                                                                           \
			acc_a = k_dp(acc_a, u, K_X(k, 0));                                                         \
			if (G == 8)                                                                                \
				acc_b = k_dp(acc_b, u, K_X(k, 1));                                                 \
		}                                                                                                  \
	} while (0)
	K_STEP(a0, b0, 0);
	K_STEP(a1, b1, 1);
	K_STEP(a0, b0, 2);
	K_STEP(a1, b1, 3);
#undef K_STEP
#undef K_X
#undef K_SH
	*a = _mm256_add_epi32(a0, a1);
	*b = _mm256_add_epi32(b0, b1);
}

/* the two half-blocks of each row added: one lane per row (G = 4: rows
 * 0-3 in lanes 0-3 and again in 4-7) */
AI __m256i k_g_rows(__m256i a, __m256i b, const int G)
{
	if (G == 4)
		return _mm256_add_epi32(a, _mm256_permute2x128_si256(a, a, 0x01));
	return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* G floats per row (G = 4: repeated in both halves) */
AI __m256 k_g_load(const float *p, const int G)
{
	return G == 8 ? _mm256_loadu_ps(p) : _mm256_broadcast_ps((const __m128 *)p);
}

/* the lanes to rows 0..rows-1 of column r */
AI void k_g_store(__m256 acc, float *y, int64_t ldy, int64_t r, int rows, const int G)
{
	float t[8] __attribute__((aligned(32)));
	_mm256_store_ps(t, acc);
	if (rows == G) {
#pragma GCC unroll 8
		for (int i = 0; i < G; i++)
			y[i * ldy + r] = t[i];
	} else {
		for (int i = 0; i < rows; i++)
			y[i * ldy + r] = t[i];
	}
}

/* One 32-value block of a weight row into the G rows' accumulator. */
AI __m256 tile_block32(const uint8_t *b, int64_t k, const k_group *P, __m256 acc, const sk_dtype t, const int G)
{
	const int has_min = t == SK_DT_Q4_1 || t == SK_DT_Q5_1;
	__m256i wv;
	uint32_t qh;
	switch (t) {
	case SK_DT_Q4_0: wv = k_nib16(b + 2); break;
	case SK_DT_Q4_1: wv = k_nib16(b + 4); break;
	case SK_DT_Q5_0:
		memcpy(&qh, b + 2, 4);
		wv = k_bit5(k_nib16(b + 6), qh);
		break;
	case SK_DT_Q5_1:
		memcpy(&qh, b + 4, 4);
		wv = k_bit5(k_nib16(b + 8), qh);
		break;
	default:
		wv = k_load(b + 2);
#if SK_Q8_DP
		wv = _mm256_xor_si256(wv, _mm256_set1_epi8((char)0x80));
#endif
		break;
	}
	__m256i sa, sb;
	k_g_sums(wv, P->q + k * G * 32, P->c ? P->c + 2 * G * k : NULL, &sa, &sb, t == SK_DT_Q8_0 && !SK_Q8_DP, G);
	const __m256 sc = _mm256_mul_ps(_mm256_set1_ps(k_f16(b)), k_g_load(P->d + G * k, G));
	acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_g_rows(sa, sb, G)), sc, acc);
	if (has_min)
		acc = _mm256_fmadd_ps(_mm256_set1_ps(k_f16(b + 2)), k_g_load(P->s + G * k, G), acc);
	return acc;
}

AI void tile32(const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_group *x, int64_t g, float *y, int64_t ldy,
               int rows, const sk_dtype t, const int G)
{
	k_group P;
	k_group_set(&P, x, g, G);
	const int bsz = t == SK_DT_Q4_0 ? 18 : t == SK_DT_Q4_1 ? 20 : t == SK_DT_Q5_0 ? 22 : t == SK_DT_Q5_1 ? 24 : 34;
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(); /* even, odd blocks */
		const uint8_t *b = w;
		int64_t k = 0;
		for (; k + 2 <= P.nb; k += 2, b += 2 * bsz) {
			_mm_prefetch((const char *)b + SK_Q8_PREFETCH, _MM_HINT_T0);
			a0 = tile_block32(b, k, &P, a0, t, G);
			a1 = tile_block32(b + bsz, k + 1, &P, a1, t, G);
		}
		if (k < P.nb)
			a0 = tile_block32(b, k, &P, a0, t, G);
		k_g_store(_mm256_add_ps(a0, a1), y, ldy, r, rows, G);
	}
}

/* The decoded weights of one 32-value block. */
AI __m256i k_block_weights(const uint8_t *b, const sk_dtype t)
{
	uint32_t qh;
	switch (t) {
	case SK_DT_Q4_0: return k_nib16(b + 2);
	case SK_DT_Q4_1: return k_nib16(b + 4);
	case SK_DT_Q5_0:
		memcpy(&qh, b + 2, 4);
		return k_bit5(k_nib16(b + 6), qh);
	case SK_DT_Q5_1:
		memcpy(&qh, b + 4, 4);
		return k_bit5(k_nib16(b + 8), qh);
	default:
#if SK_Q8_DP
		return _mm256_xor_si256(k_load(b + 2), _mm256_set1_epi8((char)0x80));
#else
		return k_load(b + 2);
#endif
	}
}

/* Groups of 4 rows, two blocks at a time: block k's four row sums in the
 * low lanes and block k + 1's in the high ones, so the float work (scales,
 * conversion, accumulation) is shared by the two blocks (a batch of a few
 * sequences: the LM head is compute-bound there). */
AI void tile32_g4(const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_group *x, int64_t g, float *y, int64_t ldy,
                  int rows, const sk_dtype t)
{
	k_group P;
	k_group_set(&P, x, g, 4);
	const int bsz = t == SK_DT_Q4_0 ? 18 : t == SK_DT_Q4_1 ? 20 : t == SK_DT_Q5_0 ? 22 : t == SK_DT_Q5_1 ? 24 : 34;
	const int has_min = t == SK_DT_Q4_1 || t == SK_DT_Q5_1, sign8 = t == SK_DT_Q8_0 && !SK_Q8_DP;
	const __m256i lanes = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		__m256 acc = _mm256_setzero_ps(), tail = _mm256_setzero_ps();
		const uint8_t *b = w;
		int64_t k = 0;
		for (; k + 2 <= P.nb; k += 2, b += 2 * bsz) {
			_mm_prefetch((const char *)b + SK_Q8_PREFETCH, _MM_HINT_T0);
			__m256i s0, s1, unused;
			k_g_sums(k_block_weights(b, t), P.q + k * 128, P.c ? P.c + 8 * k : NULL, &s0, &unused, sign8, 4);
			k_g_sums(k_block_weights(b + bsz, t), P.q + (k + 1) * 128, P.c ? P.c + 8 * (k + 1) : NULL, &s1, &unused,
			         sign8, 4);
			__m256i is = _mm256_add_epi32(_mm256_permute2x128_si256(s0, s1, 0x20),
			                              _mm256_permute2x128_si256(s0, s1, 0x31));
			/* the two blocks' f16 scales (and mins) converted together */
			uint16_t h0, h1;
			memcpy(&h0, b, 2);
			memcpy(&h1, b + bsz, 2);
			__m128i hv = _mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1);
			__m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(hv)), lanes);
			acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dw, _mm256_loadu_ps(P.d + 4 * k)), acc);
			if (has_min) {
				memcpy(&h0, b + 2, 2);
				memcpy(&h1, b + bsz + 2, 2);
				hv = _mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1);
				__m256 m = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(hv)), lanes);
				acc = _mm256_fmadd_ps(m, _mm256_loadu_ps(P.s + 4 * k), acc);
			}
		}
		if (k < P.nb)
			tail = tile_block32(b, k, &P, tail, t, 4);
		/* the two blocks' halves added, and the last odd block's low half */
		__m128 sum = _mm_add_ps(_mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)),
		                        _mm256_castps256_ps128(tail));
		k_g_store(_mm256_castps128_ps256(sum), y, ldy, r, rows, 4);
	}
}

AI void tile_k45(const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_group *x, int64_t g, float *y, int64_t ldy,
                 int rows, const int five, const int G)
{
	k_group P;
	k_group_set(&P, x, g, G);
	const int64_t nsb = P.nb / 8;
	const int bsz = five ? 176 : 144;
	const __m256i m4 = _mm256_set1_epi8(15);
	float dsc[8] __attribute__((aligned(32))), dmn[8] __attribute__((aligned(32)));
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		__m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };
		const uint8_t *b = w;
		for (int64_t sb = 0; sb < nsb; sb++, b += bsz) {
			k_q45k_scales(b, dsc, dmn);
			const uint8_t *qs = b + (five ? 48 : 16);
			const __m256i qh = five ? k_load(b + 16) : _mm256_setzero_si256();
#pragma GCC unroll 4
			for (int g4 = 0; g4 < 4; g4++) {
				__m256i wv[2];
				k_q45k_pair(qs, qh, five, g4, m4, wv);
#pragma GCC unroll 2
				for (int h = 0; h < 2; h++) {
					const int j = 2 * g4 + h;
					const int64_t blk = 8 * sb + j;
					__m256i sa, sbb;
					k_g_sums(wv[h], P.q + blk * G * 32, NULL, &sa, &sbb, 0, G);
					acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_g_rows(sa, sbb, G)),
					                         _mm256_mul_ps(_mm256_broadcast_ss(&dsc[j]), k_g_load(P.d + G * blk, G)),
					                         acc[h]);
					acc[h] = _mm256_fnmadd_ps(_mm256_broadcast_ss(&dmn[j]), k_g_load(P.s + G * blk, G), acc[h]);
				}
			}
		}
		k_g_store(_mm256_add_ps(acc[0], acc[1]), y, ldy, r, rows, G);
	}
}

AI void tile_q6k(const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_group *x, int64_t g, float *y, int64_t ldy,
                 int rows, const int G)
{
	k_group P;
	k_group_set(&P, x, g, G);
	const int64_t nsb = P.nb / 8;
	const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		__m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };
		const uint8_t *b = w;
		for (int64_t sb = 0; sb < nsb; sb++, b += 210) {
			const __m256 dv = _mm256_set1_ps(k_f16(b + 208));
			const __m128i s16 = _mm_loadu_si128((const __m128i *)(b + 192));
#pragma GCC unroll 2
			for (int h = 0; h < 2; h++) {
				const __m256i ql0 = k_load(b + 64 * h), ql1 = k_load(b + 64 * h + 32);
				const __m256i qhv = k_load(b + 128 + 32 * h);
				__m256i q[4];
				q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qhv, 4), m30));
				q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qhv, 2), m30));
				q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qhv, m30));
				q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
				                       _mm256_and_si256(_mm256_srli_epi16(qhv, 2), m30));
#pragma GCC unroll 4
				for (int k = 0; k < 4; k++) {
					const int kk = 4 * h + k; /* scales 2kk (first half-block), 2kk + 1 */
					const int64_t blk = 8 * sb + kk;
					const char a = (char)(2 * kk), c = (char)(2 * kk + 1);
					const __m256i sc = _mm256_cvtepi8_epi32(
						_mm_shuffle_epi8(s16, _mm_setr_epi8(a, a, a, a, c, c, c, c, a, a, a, a, c, c, c, c)));
					__m256i sa, sbb;
					k_g_sums(q[k], P.q + blk * G * 32, P.c + 2 * G * blk, &sa, &sbb, 0, G);
					__m256i is = k_g_rows(_mm256_mullo_epi32(sa, sc), _mm256_mullo_epi32(sbb, sc), G);
					acc[k & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dv, k_g_load(P.d + G * blk, G)),
					                             acc[k & 1]);
				}
			}
		}
		k_g_store(_mm256_add_ps(acc[0], acc[1]), y, ldy, r, rows, G);
	}
}

AI void tile_nf4(const void *w0, int64_t in, int64_t r0, int64_t nrows, const sk_q8_group *x, int64_t g, float *y,
                 int64_t ldy, int rows, const int G)
{
	const sk_nf4_tensor *t = w0;
	k_group P;
	k_group_set(&P, x, g, G);
	for (int64_t r = 0; r < nrows; r++) {
		const int64_t f0 = (r0 + r) * in;
		__m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };
		for (int64_t k = 0; k < P.nb; k++) {
			const int64_t f = f0 + 32 * k;
			__m256i sa, sb;
			k_g_sums(k_nf4_levels(t, f, SK_Q8_DP != 0), P.q + k * G * 32, P.c ? P.c + 2 * G * k : NULL, &sa, &sb,
			         !SK_Q8_DP, G);
			const __m256 sc =
				_mm256_mul_ps(_mm256_set1_ps(k_nf4_absmax(t, f / SK_NF4_BLOCK) * (1.0f / 127)), k_g_load(P.d + G * k, G));
			acc[k & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(k_g_rows(sa, sb, G)), sc, acc[k & 1]);
		}
		k_g_store(_mm256_add_ps(acc[0], acc[1]), y, ldy, r, rows, G);
	}
}

#define T_BODY(fn, call)                                                                                          \
	static void fn(const void *w0, int64_t rb, int64_t r0, int64_t nrows, const sk_q8_group *x, int64_t g,   \
	               float *y, int64_t ldy, int rows)                                                           \
	{                                                                                                         \
		const uint8_t *w = (const uint8_t *)w0 + r0 * rb;                                                 \
		(void)w;                                                                                          \
		call;                                                                                             \
	}

T_BODY(t_q4_0, tile32(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q4_0, 8))
T_BODY(t_q4_1, tile32(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q4_1, 8))
T_BODY(t_q5_0, tile32(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q5_0, 8))
T_BODY(t_q5_1, tile32(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q5_1, 8))
T_BODY(t_q8_0, tile32(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q8_0, 8))
T_BODY(t_q4_k, tile_k45(w, rb, nrows, x, g, y, ldy, rows, 0, 8))
T_BODY(t_q5_k, tile_k45(w, rb, nrows, x, g, y, ldy, rows, 1, 8))
T_BODY(t_q6_k, tile_q6k(w, rb, nrows, x, g, y, ldy, rows, 8))
T_BODY(u_q4_0, tile32_g4(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q4_0))
T_BODY(u_q4_1, tile32_g4(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q4_1))
T_BODY(u_q5_0, tile32_g4(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q5_0))
T_BODY(u_q5_1, tile32_g4(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q5_1))
T_BODY(u_q8_0, tile32_g4(w, rb, nrows, x, g, y, ldy, rows, SK_DT_Q8_0))
T_BODY(u_q4_k, tile_k45(w, rb, nrows, x, g, y, ldy, rows, 0, 4))
T_BODY(u_q5_k, tile_k45(w, rb, nrows, x, g, y, ldy, rows, 1, 4))
T_BODY(u_q6_k, tile_q6k(w, rb, nrows, x, g, y, ldy, rows, 4))
T_BODY(t_nf4, tile_nf4(w0, rb, r0, nrows, x, g, y, ldy, rows, 8))
T_BODY(u_nf4, tile_nf4(w0, rb, r0, nrows, x, g, y, ldy, rows, 4))

int SK_Q8_FN(sk_dtype t, sk_q8_kernel *k)
{
	k->corr = k->tile_corr = SK_Q8_CORR_NONE;
	k->off = k->tile_off = 0;
	switch (t) {
	case SK_DT_Q4_0:
		k->dot = k_q4_0, k->tile = t_q4_0, k->tile4 = u_q4_0;
		k->corr = SK_Q8_CORR_LANES, k->tile_corr = SK_Q8_CORR_BLOCK, k->off = k->tile_off = 8;
		return 1;
	case SK_DT_Q4_1: k->dot = k_q4_1, k->tile = t_q4_1, k->tile4 = u_q4_1; return 1;
	case SK_DT_Q5_0:
		k->dot = k_q5_0, k->tile = t_q5_0, k->tile4 = u_q5_0;
		k->corr = SK_Q8_CORR_LANES, k->tile_corr = SK_Q8_CORR_BLOCK, k->off = k->tile_off = 16;
		return 1;
	case SK_DT_Q5_1: k->dot = k_q5_1, k->tile = t_q5_1, k->tile4 = u_q5_1; return 1;
	case SK_DT_Q8_0:
		k->dot = k_q8_0, k->tile = t_q8_0, k->tile4 = u_q8_0;
		if (SK_Q8_DP) /* read as unsigned: w + 128 */
			k->corr = SK_Q8_CORR_LANES, k->tile_corr = SK_Q8_CORR_BLOCK, k->off = k->tile_off = 128;
		return 1;
	case SK_DT_Q4_K: k->dot = k_q4_k, k->tile = t_q4_k, k->tile4 = u_q4_k; return 1;
	case SK_DT_Q5_K: k->dot = k_q5_k, k->tile = t_q5_k, k->tile4 = u_q5_k; return 1;
	case SK_DT_Q6_K:
		k->dot = k_q6_k, k->tile = t_q6_k, k->tile4 = u_q6_k;
		k->corr = SK_Q8_DP ? SK_Q8_CORR_LANES : SK_Q8_CORR_PAIRS, k->off = 32;
		k->tile_corr = SK_Q8_CORR_HALVES, k->tile_off = 32;
		return 1;
	case SK_DT_COUNT: /* NF4 */
		k->dot = k_nf4, k->tile = t_nf4, k->tile4 = u_nf4;
		if (SK_Q8_DP) /* levels read as unsigned: + 128 */
			k->corr = SK_Q8_CORR_LANES, k->tile_corr = SK_Q8_CORR_BLOCK, k->off = k->tile_off = 128;
		return 1;
	default: return 0;
	}
}
