/* Vectorized exp for the softmax of attention and the tanh-approximated
 * GELU (AVX2 + FMA, chosen at run time; the C library elsewhere). The exp
 * is accurate to about 2 ulp: exp(x) = 2^n · e^r with n = round(x / ln 2),
 * r = x - n ln 2 in two parts (|r| <= ln 2 / 2) and e^r by its Taylor
 * series to r^7 (truncation < 1e-8 relative). GELU uses
 * 0.5 x (1 + tanh u) = x / (1 + e^(-2u)), which keeps its relative
 * accuracy for large negative x, where 1 + tanh u cancels. */
#include "engine/backend/backend_cpu.h"

#include <math.h>

static inline float gelu1(float x)
{
	const float k = 0.7978845608028654f; /* sqrt(2/pi) */
	float u = k * (x + 0.044715f * x * x * x);
	return x / (1.0f + expf(-2.0f * u));
}

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2,fma")
#include <immintrin.h>

static inline __m256 exp8(__m256 x)
{
	/* below -87.3 the result is under FLT_MIN: flush to 0; above 88.7 it overflows */
	const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.7f);
	__m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
	x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
	                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x); /* ln 2, high part: exact product */
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);    /* and the rest */
	__m256 p = _mm256_set1_ps(1.0f / 5040);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	/* 2^n in two factors so that n = 128 (x near 88.7) stays finite */
	__m256i ni = _mm256_cvtps_epi32(n);
	__m256i h = _mm256_srai_epi32(ni, 1);
	__m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
	__m256i e2 = _mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127));
	__m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(e2, 23));
	return _mm256_andnot_ps(under, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}

/* the sum in double, as the scalar softmax summed */
static double exp_sub_avx2(float *x, int64_t n, float sub)
{
	__m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
	const __m256 sv = _mm256_set1_ps(sub);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sv));
		_mm256_storeu_ps(x + i, e);
		a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	}
	double t[4];
	_mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
	double s = (t[0] + t[1]) + (t[2] + t[3]);
	for (; i < n; i++) {
		x[i] = expf(x[i] - sub);
		s += x[i];
	}
	return s;
}

static void gelu_avx2(float *g, const float *u, int64_t n)
{
	const __m256 k = _mm256_set1_ps(0.7978845608028654f), c = _mm256_set1_ps(0.044715f);
	const __m256 m2 = _mm256_set1_ps(-2.0f), one = _mm256_set1_ps(1.0f);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 x = _mm256_loadu_ps(g + i);
		__m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
		__m256 v = _mm256_mul_ps(k, _mm256_fmadd_ps(c, x3, x));
		__m256 y = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_mul_ps(m2, v))));
		if (u)
			y = _mm256_mul_ps(y, _mm256_loadu_ps(u + i));
		_mm256_storeu_ps(g + i, y);
	}
	for (; i < n; i++)
		g[i] = u ? gelu1(g[i]) * u[i] : gelu1(g[i]);
}

#endif

double sk_cpu_exp_sub(float *x, int64_t n, float sub)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (sk_cpu_have_avx2())
		return exp_sub_avx2(x, n, sub);
#endif
	double s = 0;
	for (int64_t i = 0; i < n; i++) {
		x[i] = expf(x[i] - sub);
		s += x[i];
	}
	return s;
}

void sk_cpu_gelu(float *g, const float *u, int64_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (sk_cpu_have_avx2()) {
		gelu_avx2(g, u, n);
		return;
	}
#endif
	for (int64_t i = 0; i < n; i++)
		g[i] = u ? gelu1(g[i]) * u[i] : gelu1(g[i]);
}
