/* The integer dot kernels for AVX2 (maddubs + madd), and the SIMD
 * activation quantizer every x86 kernel set uses. */
#include "engine/backend/backend_cpu_q8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c")
#define SK_Q8_DP 0
#define SK_Q8_BW 0
#define SK_Q8_FN sk_q8_kernel_avx2
#include "engine/backend/backend_cpu_q8_kernels.h"

static inline float hmax8(__m256 v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}

static inline int hsum8i(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

/* Same float operations as the portable quantizer (max, 127 / max, x · that
 * rounded to nearest even), so the bytes are identical. */
void sk_q8_quantize_avx2(const float *x, int64_t r0, int64_t r1, sk_q8_rows *o)
{
	const int64_t n = o->n, nb = n / 32;
	const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
	for (int64_t r = r0; r < r1; r++) {
		for (int64_t b = 0; b < nb; b++) {
			const float *v = x + r * n + b * 32;
			__m256 a0 = _mm256_loadu_ps(v), a1 = _mm256_loadu_ps(v + 8);
			__m256 a2 = _mm256_loadu_ps(v + 16), a3 = _mm256_loadu_ps(v + 24);
			__m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(a0, absm), _mm256_and_ps(a1, absm)),
			                         _mm256_max_ps(_mm256_and_ps(a2, absm), _mm256_and_ps(a3, absm)));
			float amax = hmax8(m);
			float id = amax > 0 ? 127.0f / amax : 0.0f;
			const __m256 iv = _mm256_set1_ps(id), lim = _mm256_set1_ps(127.0f);
			__m256i i0 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(a0, iv), lim));
			__m256i i1 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(a1, iv), lim));
			__m256i i2 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(a2, iv), lim));
			__m256i i3 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(a3, iv), lim));
			int sum = hsum8i(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
			/* packs saturate at ±127 anyway (|x · id| <= 127 up to rounding) */
			__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
			p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
			p = _mm256_max_epi8(p, _mm256_set1_epi8(-127));
			const int64_t at = sk_q8_at(o, r, b);
			_mm256_storeu_si256((__m256i *)(o->q + at * 32), p);
			float d = amax / 127.0f;
			o->d[at] = d;
			o->s[at] = d * (float)sum;
			if (o->corr == SK_Q8_CORR_LANES) {
				__m256i c = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, p), ones16);
				c = _mm256_mullo_epi32(c, _mm256_set1_epi32(-o->off));
				_mm256_storeu_si256((__m256i *)(o->c + at * 8), c);
			} else if (o->corr == SK_Q8_CORR_PAIRS) {
				__m256i c = _mm256_mullo_epi16(_mm256_maddubs_epi16(ones8, p), _mm256_set1_epi16((short)o->off));
				_mm256_storeu_si256((__m256i *)(o->c + at * 8), c);
			}
		}
	}
}

#else

int sk_q8_kernel_avx2(sk_dtype t, sk_q8_kernel *k)
{
	(void)t, (void)k;
	return 0;
}

void sk_q8_quantize_avx2(const float *x, int64_t r0, int64_t r1, sk_q8_rows *out)
{
	(void)x, (void)r0, (void)r1, (void)out;
}

#endif
