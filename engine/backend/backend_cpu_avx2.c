/* Row dot kernels for x86-64 CPUs with AVX2 + FMA + F16C, chosen at run time
 * (the rest of the build targets baseline x86-64). Each decodes a stored
 * row block by block in registers and multiplies it into x: no fp32 copy
 * of the weight is ever written. K-quant rows use Σ(d·sc·q - dmin·m)·x =
 * d·sc·Σq·x - dmin·m·Σx so the per-element work is one convert and one FMA. */
#include "engine/backend/backend_cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

static inline float hsum8(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
	return _mm_cvtss_f32(lo);
}

static inline float h2f(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, 2);
	return _cvtsh_ss(h);
}

static inline __m128i load8(const void *p)
{
	return _mm_loadl_epi64((const __m128i *)p);
}

/* 8 unsigned bytes -> 8 int32 lanes */
static inline __m256i u8x8(const uint8_t *p)
{
	return _mm256_cvtepu8_epi32(load8(p));
}

float sk_cpu_sdot_avx2(const float *a, const float *b, int64_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static float dot_f32(const void *row, const float *x, int64_t n)
{
	return sk_cpu_sdot_avx2((const float *)row, x, n); /* loadu: alignment does not matter */
}

static float dot_bf16(const void *row, const float *x, int64_t n)
{
	const uint16_t *w = row;
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i)));
		__m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i + 8)));
		s0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), _mm256_loadu_ps(x + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(b, 16)), _mm256_loadu_ps(x + i + 8), s1);
	}
	float s = hsum8(_mm256_add_ps(s0, s1));
	for (; i < n; i++) {
		uint16_t h;
		memcpy(&h, w + i, 2);
		s += sk_bf16_to_f32(h) * x[i];
	}
	return s;
}

static float dot_f16(const void *row, const float *x, int64_t n)
{
	const uint16_t *w = row;
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))),
		                     _mm256_loadu_ps(x + i + 8), s1);
	}
	float s = hsum8(_mm256_add_ps(s0, s1));
	for (; i < n; i++) {
		uint16_t h;
		memcpy(&h, w + i, 2);
		s += _cvtsh_ss(h) * x[i];
	}
	return s;
}

/* Q8_0: 34-byte blocks of 32: f16 d, int8 q[32]. */
static float dot_q8_0(const void *row, const float *x, int64_t n)
{
	const uint8_t *b = row;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 32, b += 34, x += 32) {
		const int8_t *q = (const int8_t *)(b + 2);
		__m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(q))), _mm256_loadu_ps(x));
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(q + 8))), _mm256_loadu_ps(x + 8), s);
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(q + 16))), _mm256_loadu_ps(x + 16), s);
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(q + 24))), _mm256_loadu_ps(x + 24), s);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b)), s, acc);
	}
	return hsum8(acc);
}

/* Q4_0: 18-byte blocks: f16 d, 16 bytes; element j = low nibble of byte j,
 * element j+16 = high nibble; value (q - 8)·d. */
static float dot_q4_0(const void *row, const float *x, int64_t n)
{
	const uint8_t *b = row;
	const __m256i eight = _mm256_set1_epi32(8), m4 = _mm256_set1_epi32(15);
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 32, b += 18, x += 32) {
		const uint8_t *q = b + 2;
		__m256i v0 = u8x8(q), v1 = u8x8(q + 8);
		__m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v0, m4), eight)),
		                         _mm256_loadu_ps(x));
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v1, m4), eight)),
		                    _mm256_loadu_ps(x + 8), s);
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v0, 4), eight)),
		                    _mm256_loadu_ps(x + 16), s);
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v1, 4), eight)),
		                    _mm256_loadu_ps(x + 24), s);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b)), s, acc);
	}
	return hsum8(acc);
}

/* Q5_0's fifth bits, one table row per byte of qh: lane k holds
 * 16·bit k - 16, so element = nibble + row (the -16 offset folded in).
 * 8 KiB, built once; one load replaces a shift/mask sequence per 8 lanes. */
static int32_t q5_rows[256][8] __attribute__((aligned(32)));
static pthread_once_t q5_once = PTHREAD_ONCE_INIT;

static void q5_build(void)
{
	for (int b = 0; b < 256; b++)
		for (int k = 0; k < 8; k++)
			q5_rows[b][k] = ((b >> k) & 1) * 16 - 16;
}

static inline __m256i q5_row(uint32_t qh, int shift)
{
	return _mm256_load_si256((const __m256i *)q5_rows[(qh >> shift) & 0xff]);
}

/* Q5_0: 22-byte blocks: f16 d, u32 qh, 16 bytes; value (q - 16)·d. */
static float dot_q5_0(const void *row, const float *x, int64_t n)
{
	const uint8_t *b = row;
	const __m256i m4 = _mm256_set1_epi32(15);
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 32, b += 22, x += 32) {
		uint32_t qh;
		memcpy(&qh, b + 2, 4);
		const uint8_t *q = b + 6;
		__m256i v0 = u8x8(q), v1 = u8x8(q + 8);
		__m256i e0 = _mm256_add_epi32(_mm256_and_si256(v0, m4), q5_row(qh, 0));
		__m256i e1 = _mm256_add_epi32(_mm256_and_si256(v1, m4), q5_row(qh, 8));
		__m256i e2 = _mm256_add_epi32(_mm256_srli_epi32(v0, 4), q5_row(qh, 16));
		__m256i e3 = _mm256_add_epi32(_mm256_srli_epi32(v1, 4), q5_row(qh, 24));
		__m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(e0), _mm256_loadu_ps(x));
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(e1), _mm256_loadu_ps(x + 8), s);
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(e2), _mm256_loadu_ps(x + 16), s);
		s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(e3), _mm256_loadu_ps(x + 24), s);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(b)), s, acc);
	}
	return hsum8(acc);
}

static inline void k_scale_min(const uint8_t *sc, int j, int *scale, int *min)
{
	if (j < 4) {
		*scale = sc[j] & 63;
		*min = sc[j + 4] & 63;
	} else {
		*scale = (sc[j + 4] & 0x0f) | ((sc[j - 4] >> 6) << 4);
		*min = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
	}
}

/* Q4_K / Q5_K super-blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit
 * scales/mins, (Q5_K: 32 bytes of fifth bits,) 128 bytes of nibbles. */
static inline float dot_qk_45(const uint8_t *b, const float *x, int64_t n, int five)
{
	const __m256i m4 = _mm256_set1_epi32(15), one = _mm256_set1_epi32(1);
	const int64_t bsz = five ? 176 : 144;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 256, b += bsz, x += 256) {
		const float d = h2f(b), dmin = h2f(b + 2);
		const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
		for (int g = 0; g < 4; g++) {
			int sc0, m0, sc1, m1;
			k_scale_min(scales, 2 * g, &sc0, &m0);
			k_scale_min(scales, 2 * g + 1, &sc1, &m1);
			const uint8_t *q = qs + 32 * g;
			const float *x0 = x + 64 * g, *x1 = x0 + 32;
			__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
			__m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
			for (int l = 0; l < 32; l += 8) {
				__m256i v = u8x8(q + l);
				__m256i lo = _mm256_and_si256(v, m4), hi = _mm256_srli_epi32(v, 4);
				if (five) {
					__m256i h = u8x8(qh + l);
					lo = _mm256_or_si256(lo, _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * g), one), 4));
					hi = _mm256_or_si256(hi, _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * g + 1), one), 4));
				}
				__m256 xa = _mm256_loadu_ps(x0 + l), xb = _mm256_loadu_ps(x1 + l);
				s0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), xa, s0);
				s1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), xb, s1);
				t0 = _mm256_add_ps(t0, xa);
				t1 = _mm256_add_ps(t1, xb);
			}
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc0), s0, acc);
			acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * (float)m0), t0, acc);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc1), s1, acc);
			acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * (float)m1), t1, acc);
		}
	}
	return hsum8(acc);
}

static float dot_q4_k(const void *row, const float *x, int64_t n)
{
	return dot_qk_45(row, x, n, 0);
}

static float dot_q5_k(const void *row, const float *x, int64_t n)
{
	return dot_qk_45(row, x, n, 1);
}

/* Q6_K super-blocks of 256 (210 bytes): ql[128], qh[64], int8 scales[16], f16 d. */
static float dot_q6_k(const void *row, const float *x, int64_t n)
{
	const uint8_t *b = row;
	const __m256i m4 = _mm256_set1_epi32(15), m2 = _mm256_set1_epi32(3), off = _mm256_set1_epi32(32);
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n; i += 256, b += 210, x += 256) {
		const float d = h2f(b + 208);
		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
			const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
			const float *xh = x + 128 * h;
			for (int l = 0; l < 32; l += 8) {
				int is = l / 16;
				__m256i a = u8x8(ql + l), c = u8x8(ql + l + 32), hb = u8x8(qh + l);
				__m256i q1 = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_slli_epi32(_mm256_and_si256(hb, m2), 4));
				__m256i q2 = _mm256_or_si256(_mm256_and_si256(c, m4),
				                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hb, 2), m2), 4));
				__m256i q3 = _mm256_or_si256(_mm256_srli_epi32(a, 4),
				                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hb, 4), m2), 4));
				__m256i q4 = _mm256_or_si256(_mm256_srli_epi32(c, 4),
				                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hb, 6), m2), 4));
				__m256 p1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q1, off)), _mm256_loadu_ps(xh + l));
				__m256 p2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q2, off)), _mm256_loadu_ps(xh + l + 32));
				__m256 p3 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q3, off)), _mm256_loadu_ps(xh + l + 64));
				__m256 p4 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q4, off)), _mm256_loadu_ps(xh + l + 96));
				acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[is]), p1, acc);
				acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[is + 2]), p2, acc);
				acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[is + 4]), p3, acc);
				acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[is + 6]), p4, acc);
			}
		}
	}
	return hsum8(acc);
}

sk_cpu_dot_fn sk_cpu_dot_kernel_avx2(sk_dtype t)
{
	pthread_once(&q5_once, q5_build);
	switch (t) {
	case SK_DT_F32: return dot_f32;
	case SK_DT_BF16: return dot_bf16;
	case SK_DT_F16: return dot_f16;
	case SK_DT_Q8_0: return dot_q8_0;
	case SK_DT_Q4_0: return dot_q4_0;
	case SK_DT_Q5_0: return dot_q5_0;
	case SK_DT_Q4_K: return dot_q4_k;
	case SK_DT_Q5_K: return dot_q5_k;
	case SK_DT_Q6_K: return dot_q6_k;
	default: return NULL;
	}
}

#else

sk_cpu_dot_fn sk_cpu_dot_kernel_avx2(sk_dtype t)
{
	(void)t;
	return NULL;
}

float sk_cpu_sdot_avx2(const float *a, const float *b, int64_t n)
{
	float s = 0;
	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

#endif
