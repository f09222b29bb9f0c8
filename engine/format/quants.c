/* Dequantization of stored element types to f32 (formats.md §5.5).
 *
 * Each block type has its own straight-line loop so the compiler can keep
 * everything in registers and vectorize; there are no per-element calls.
 * The arithmetic follows the reference (gguf-py's numpy code) operation by
 * operation in f32 — e.g. Q4_K computes (d*sc)*q - dmin*m — so results are
 * bit-identical to it. Products are kept in separate statements so that a
 * compiler allowed to contract a*b+c into an FMA cannot change rounding. */
#include "engine/format/quants.h"

#include <string.h>

/* Exact IEEE binary16 -> binary32. Local and inline because it sits inside
 * the per-block loops (once per block for scales, per element for F16). */
static inline float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t em = h & 0x7fffu;
	union { uint32_t u; float f; } v;
	if (em >= 0x7c00u) {            /* inf / NaN: keep the payload */
		v.u = sign | 0x7f800000u | ((em & 0x3ffu) << 13);
	} else if (em >= 0x0400u) {     /* normal: rebias the exponent */
		v.u = sign | ((em << 13) + (112u << 23));
	} else {                        /* zero / subnormal: em * 2^-24 is exact */
		v.f = (float)em * 0x1p-24f;
		v.u |= sign;
	}
	return v.f;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void dq_f32(const uint8_t *s, float *y, int64_t n)
{
	memcpy(y, s, (size_t)n * sizeof(float)); /* little-endian host assumed throughout */
}

static void dq_f16(const uint8_t *s, float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = f16_to_f32(rd16(s + 2 * i));
}

static void dq_bf16(const uint8_t *s, float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		union { uint32_t u; float f; } v = { .u = (uint32_t)rd16(s + 2 * i) << 16 };
		y[i] = v.f;
	}
}

/* Q4_0: f16 d, qs[16]; element j low nibble of qs[j], j+16 high nibble. */
static void dq_q4_0(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 18, y += 32) {
		const float d = f16_to_f32(rd16(s));
		const uint8_t *qs = s + 2;
		for (int j = 0; j < 16; j++) {
			y[j] = d * (float)((qs[j] & 0x0f) - 8);
			y[j + 16] = d * (float)((qs[j] >> 4) - 8);
		}
	}
}

/* Q4_1: f16 d, f16 m, qs[16]; x = d*q + m. */
static void dq_q4_1(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 20, y += 32) {
		const float d = f16_to_f32(rd16(s));
		const float m = f16_to_f32(rd16(s + 2));
		const uint8_t *qs = s + 4;
		for (int j = 0; j < 16; j++) {
			float lo = d * (float)(qs[j] & 0x0f);
			float hi = d * (float)(qs[j] >> 4);
			y[j] = lo + m;
			y[j + 16] = hi + m;
		}
	}
}

/* Q5_0: f16 d, u32 qh (bit j = fifth bit of element j), qs[16]; x = (q-16)*d. */
static void dq_q5_0(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 22, y += 32) {
		const float d = f16_to_f32(rd16(s));
		const uint32_t qh = rd32(s + 2);
		const uint8_t *qs = s + 6;
		for (int j = 0; j < 16; j++) {
			int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
			int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
			y[j] = d * (float)(lo - 16);
			y[j + 16] = d * (float)(hi - 16);
		}
	}
}

/* Q5_1: f16 d, f16 m, u32 qh, qs[16]; x = d*q + m. */
static void dq_q5_1(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 24, y += 32) {
		const float d = f16_to_f32(rd16(s));
		const float m = f16_to_f32(rd16(s + 2));
		const uint32_t qh = rd32(s + 4);
		const uint8_t *qs = s + 8;
		for (int j = 0; j < 16; j++) {
			int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
			int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
			float a = d * (float)lo;
			float c = d * (float)hi;
			y[j] = a + m;
			y[j + 16] = c + m;
		}
	}
}

/* Q8_0: f16 d, int8 qs[32]; x = q*d. */
static void dq_q8_0(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 34, y += 32) {
		const float d = f16_to_f32(rd16(s));
		const int8_t *qs = (const int8_t *)(s + 2);
		for (int j = 0; j < 32; j++)
			y[j] = (float)qs[j] * d;
	}
}

/* The 6-bit scale/min pair of sub-block j of a Q4_K/Q5_K block. */
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

/* Q4_K: f16 d, f16 dmin, scales[12], qs[128]; x = (d*sc)*q - dmin*m. */
static void dq_q4_k(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 144, y += 256) {
		const float d = f16_to_f32(rd16(s));
		const float dmin = f16_to_f32(rd16(s + 2));
		const uint8_t *scales = s + 4, *qs = s + 16;
		for (int g = 0; g < 4; g++) {
			int sc0, m0, sc1, m1;
			k_scale_min(scales, 2 * g, &sc0, &m0);
			k_scale_min(scales, 2 * g + 1, &sc1, &m1);
			const float d0 = d * (float)sc0, dm0 = dmin * (float)m0;
			const float d1 = d * (float)sc1, dm1 = dmin * (float)m1;
			const uint8_t *q = qs + 32 * g;
			float *o = y + 64 * g;
			for (int l = 0; l < 32; l++) {
				float a = d0 * (float)(q[l] & 0x0f);
				float c = d1 * (float)(q[l] >> 4);
				o[l] = a - dm0;
				o[l + 32] = c - dm1;
			}
		}
	}
}

/* Q5_K: f16 d, f16 dmin, scales[12], qh[32], qs[128]. */
static void dq_q5_k(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 176, y += 256) {
		const float d = f16_to_f32(rd16(s));
		const float dmin = f16_to_f32(rd16(s + 2));
		const uint8_t *scales = s + 4, *qh = s + 16, *qs = s + 48;
		for (int g = 0; g < 4; g++) {
			int sc0, m0, sc1, m1;
			k_scale_min(scales, 2 * g, &sc0, &m0);
			k_scale_min(scales, 2 * g + 1, &sc1, &m1);
			const float d0 = d * (float)sc0, dm0 = dmin * (float)m0;
			const float d1 = d * (float)sc1, dm1 = dmin * (float)m1;
			const uint8_t *q = qs + 32 * g;
			float *o = y + 64 * g;
			for (int l = 0; l < 32; l++) {
				int lo = (q[l] & 0x0f) | (((qh[l] >> (2 * g)) & 1) << 4);
				int hi = (q[l] >> 4) | (((qh[l] >> (2 * g + 1)) & 1) << 4);
				float a = d0 * (float)lo;
				float c = d1 * (float)hi;
				o[l] = a - dm0;
				o[l + 32] = c - dm1;
			}
		}
	}
}

/* Q6_K: ql[128], qh[64], int8 scales[16], f16 d; x = (d*scale)*(q-32). */
static void dq_q6_k(const uint8_t *s, float *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, s += 210, y += 256) {
		const float d = f16_to_f32(rd16(s + 208));
		const int8_t *sc = (const int8_t *)(s + 192);
		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = s + 64 * h, *qh = s + 128 + 32 * h;
			float *o = y + 128 * h;
			const int8_t *sh = sc + 8 * h;
			/* each 16-element run has its own scale: l < 16 and l >= 16 differ */
			for (int half = 0; half < 2; half++) {
				const float s0 = d * (float)sh[half + 0];
				const float s1 = d * (float)sh[half + 2];
				const float s2 = d * (float)sh[half + 4];
				const float s3 = d * (float)sh[half + 6];
				for (int l = 16 * half; l < 16 * half + 16; l++) {
					int q0 = (ql[l] & 0x0f) | ((qh[l] & 3) << 4);
					int q1 = (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4);
					int q2 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
					int q3 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
					o[l] = s0 * (float)(q0 - 32);
					o[l + 32] = s1 * (float)(q1 - 32);
					o[l + 64] = s2 * (float)(q2 - 32);
					o[l + 96] = s3 * (float)(q3 - 32);
				}
			}
		}
	}
}

int sk_dequantize(sk_dtype t, const void *src, float *dst, int64_t n)
{
	const uint8_t *s = src;
	if (n < 0)
		return -1;
	switch (t) {
	case SK_DT_F32: dq_f32(s, dst, n); return 0;
	case SK_DT_F16: dq_f16(s, dst, n); return 0;
	case SK_DT_BF16: dq_bf16(s, dst, n); return 0;
	default: break;
	}
	int64_t qk = (t == SK_DT_Q4_K || t == SK_DT_Q5_K || t == SK_DT_Q6_K) ? 256 : 32;
	if (n % qk)
		return -1;
	int64_t nb = n / qk;
	switch (t) {
	case SK_DT_Q4_0: dq_q4_0(s, dst, nb); return 0;
	case SK_DT_Q4_1: dq_q4_1(s, dst, nb); return 0;
	case SK_DT_Q5_0: dq_q5_0(s, dst, nb); return 0;
	case SK_DT_Q5_1: dq_q5_1(s, dst, nb); return 0;
	case SK_DT_Q8_0: dq_q8_0(s, dst, nb); return 0;
	case SK_DT_Q4_K: dq_q4_k(s, dst, nb); return 0;
	case SK_DT_Q5_K: dq_q5_k(s, dst, nb); return 0;
	case SK_DT_Q6_K: dq_q6_k(s, dst, nb); return 0;
	default: return -1;
	}
}

int sk_dequantize_supported(sk_dtype t)
{
	switch (t) {
	case SK_DT_F32: case SK_DT_F16: case SK_DT_BF16:
	case SK_DT_Q4_0: case SK_DT_Q4_1: case SK_DT_Q5_0: case SK_DT_Q5_1: case SK_DT_Q8_0:
	case SK_DT_Q4_K: case SK_DT_Q5_K: case SK_DT_Q6_K:
		return 1;
	default:
		return 0;
	}
}
