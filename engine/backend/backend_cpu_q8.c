/* Activation quantization and the portable integer kernels (the meaning
 * every SIMD kernel reproduces), and the choice of kernels by CPU. Each
 * weight block decodes to integer levels L (the offset removed, Q6_K's
 * 16-value sub-scales folded in), a block scale D and a block min M, so
 * that w = D · L + M; one block then adds (D · d) · Σ L·q + M · s. */
#include "engine/backend/backend_cpu_q8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/format/nf4.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SK_Q8_X86 1
#endif

/* ---- activations ---- */

static size_t up64(size_t b)
{
	return (b + 63) & ~(size_t)63;
}

/* each array rounded up to 64 bytes, plus 64 of slack */
size_t sk_q8_bytes(int64_t rows, int64_t n)
{
	size_t nb = (size_t)(rows * (n / SK_Q8_BLOCK));
	return up64((size_t)(rows * n)) + 2 * up64(nb * sizeof(float) + 64) + up64(nb * 8 * sizeof(int32_t) + 64);
}

void sk_q8_layout(sk_q8_rows *out, void *mem, int64_t rows, int64_t n, sk_q8_corr corr, int off)
{
	size_t nb = (size_t)(rows * (n / SK_Q8_BLOCK));
	char *p = mem;
	out->n = n;
	out->rows = rows;
	out->q = (int8_t *)p;
	p += up64((size_t)(rows * n));
	out->d = (float *)p;
	p += up64(nb * sizeof(float) + 64);
	out->s = (float *)p;
	p += up64(nb * sizeof(float) + 64);
	out->c = corr == SK_Q8_CORR_NONE ? NULL : (int32_t *)p;
	out->corr = corr;
	out->off = off;
}

/* The correction of one block (see sk_q8_corr). */
static void q8_corr(const int8_t *q, int32_t *c, sk_q8_corr corr, int off)
{
	if (corr == SK_Q8_CORR_LANES) {
		for (int l = 0; l < 8; l++)
			c[l] = -off * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
	} else if (corr == SK_Q8_CORR_PAIRS) {
		int16_t *c16 = (int16_t *)c;
		for (int t = 0; t < 16; t++)
			c16[t] = (int16_t)(off * (q[2 * t] + q[2 * t + 1]));
	}
}

static void q8_quantize_c(const float *x, int64_t r0, int64_t r1, sk_q8_rows *o)
{
	int64_t n = o->n, nb = n / SK_Q8_BLOCK;
	for (int64_t r = r0; r < r1; r++) {
		for (int64_t b = 0; b < nb; b++) {
			const float *v = x + r * n + b * SK_Q8_BLOCK;
			const int64_t at = sk_q8_at(o, r, b);
			int8_t *q = o->q + at * SK_Q8_BLOCK;
			float amax = 0;
			for (int k = 0; k < SK_Q8_BLOCK; k++)
				amax = fmaxf(amax, fabsf(v[k]));
			/* the same float operations as the SIMD quantizer: identical bytes */
			float id = amax > 0 ? 127.0f / amax : 0.0f;
			int sum = 0;
			for (int k = 0; k < SK_Q8_BLOCK; k++) {
				float t = v[k] * id;
				long l = lrintf(t);
				l = l > 127 ? 127 : l < -127 ? -127 : l;
				q[k] = (int8_t)l;
				sum += (int)l;
			}
			float d = amax / 127.0f;
			o->d[at] = d;
			o->s[at] = d * (float)sum;
			if (o->c)
				q8_corr(q, o->c + at * 8, o->corr, o->off);
		}
	}
}

void sk_q8_fill_corr(sk_q8_rows *out, int64_t r0, int64_t r1)
{
	int64_t nb = out->n / SK_Q8_BLOCK;
	if (!out->c)
		return;
	for (int64_t r = r0; r < r1; r++)
		for (int64_t b = 0; b < nb; b++)
			q8_corr(out->q + sk_q8_at(out, r, b) * SK_Q8_BLOCK, out->c + sk_q8_at(out, r, b) * 8, out->corr,
			        out->off);
}

void sk_q8_quantize(const float *x, int64_t r0, int64_t r1, sk_q8_rows *out, sk_q8_isa isa)
{
	if (isa != SK_Q8_ISA_PORTABLE)
		sk_q8_quantize_avx2(x, r0, r1, out);
	else
		q8_quantize_c(x, r0, r1, out);
}

/* ---- eight rows interleaved ---- */

size_t sk_q8_group_bytes(int64_t rows, int64_t n, int G)
{
	size_t nb = (size_t)(((rows + G - 1) / G) * G * (n / SK_Q8_BLOCK));
	return up64(nb * SK_Q8_BLOCK) + 2 * up64(nb * sizeof(float) + 64) + up64(nb * 2 * sizeof(int32_t) + 64);
}

void sk_q8_group_layout(sk_q8_group *out, void *mem, int64_t rows, int64_t n, int G, sk_q8_corr corr, int off)
{
	out->groups = (rows + G - 1) / G;
	size_t nb = (size_t)(out->groups * G * (n / SK_Q8_BLOCK));
	char *p = mem;
	out->n = n;
	out->G = G;
	out->q = (int8_t *)p;
	p += up64(nb * SK_Q8_BLOCK);
	out->d = (float *)p;
	p += up64(nb * sizeof(float) + 64);
	out->s = (float *)p;
	p += up64(nb * sizeof(float) + 64);
	out->c = corr == SK_Q8_CORR_NONE ? NULL : (int32_t *)p;
	out->corr = corr;
	out->off = off;
}

void sk_q8_group_fill(const sk_q8_rows *x, int64_t r0, int64_t g0, int64_t g1, sk_q8_group *o)
{
	const int64_t nb = x->n / SK_Q8_BLOCK;
	const int G = o->G;
	for (int64_t g = g0; g < g1; g++)
		for (int64_t b = 0; b < nb; b++) {
			int64_t gb = g * nb + b;
			int8_t *t = o->q + gb * G * SK_Q8_BLOCK;
			for (int r = 0; r < G; r++) {
				int64_t row = r0 + G * g + r;
				int live = row < x->rows;
				const int64_t at = live ? sk_q8_at(x, row, b) : 0;
				const int8_t *q = x->q + at * SK_Q8_BLOCK;
				for (int k = 0; k < 8; k++) {
					int8_t *dst = t + ((G / 4) * (k % 4) + r / 4) * 32 + 16 * (k / 4) + 4 * (r % 4);
					if (live)
						memcpy(dst, q + 4 * k, 4);
					else
						memset(dst, 0, 4);
				}
				o->d[gb * G + r] = live ? x->d[at] : 0.0f;
				o->s[gb * G + r] = live ? x->s[at] : 0.0f;
				if (!o->c)
					continue;
				int s0 = 0, s1 = 0;
				for (int k = 0; live && k < 16; k++) {
					s0 += q[k];
					s1 += q[k + 16];
				}
				int32_t *c = o->c + gb * 2 * G + (r / 4) * 8 + r % 4;
				if (o->corr == SK_Q8_CORR_HALVES) {
					c[0] = -o->off * s0;
					c[4] = -o->off * s1;
				} else {
					c[0] = -o->off * (s0 + s1);
					c[4] = 0;
				}
			}
		}
}

/* ---- portable kernels ---- */

static inline float f16(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, 2);
	return sk_f16_to_f32(h);
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
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

/* One stored block (32 values, or a 256-value super-block) as 8-at-most
 * groups of 32: L[], D[], M[]. Returns the groups. */
static int unpack(sk_dtype t, const uint8_t *b, int16_t *L, float *D, float *M)
{
	switch (t) {
	case SK_DT_Q4_0:
	case SK_DT_Q4_1: {
		const uint8_t *q = b + (t == SK_DT_Q4_0 ? 2 : 4);
		int off = t == SK_DT_Q4_0 ? 8 : 0;
		for (int j = 0; j < 16; j++) {
			L[j] = (int16_t)((q[j] & 15) - off);
			L[j + 16] = (int16_t)((q[j] >> 4) - off);
		}
		D[0] = f16(b);
		M[0] = t == SK_DT_Q4_1 ? f16(b + 2) : 0.0f;
		return 1;
	}
	case SK_DT_Q5_0:
	case SK_DT_Q5_1: {
		int one = t == SK_DT_Q5_1;
		uint32_t qh = rd32(b + (one ? 4 : 2));
		const uint8_t *q = b + (one ? 8 : 6);
		int off = one ? 0 : 16;
		for (int j = 0; j < 16; j++) {
			L[j] = (int16_t)(((q[j] & 15) | (((qh >> j) & 1) << 4)) - off);
			L[j + 16] = (int16_t)(((q[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - off);
		}
		D[0] = f16(b);
		M[0] = one ? f16(b + 2) : 0.0f;
		return 1;
	}
	case SK_DT_Q8_0:
		for (int j = 0; j < 32; j++)
			L[j] = (int8_t)b[2 + j];
		D[0] = f16(b);
		M[0] = 0;
		return 1;
	case SK_DT_Q4_K:
	case SK_DT_Q5_K: {
		int five = t == SK_DT_Q5_K;
		const float d = f16(b), dmin = f16(b + 2);
		const uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
		for (int j = 0; j < 8; j++) {
			int sc, m;
			k_scale_min(b + 4, j, &sc, &m);
			D[j] = d * (float)sc;
			M[j] = -(dmin * (float)m);
			const uint8_t *q = qs + 32 * (j / 2);
			for (int l = 0; l < 32; l++) {
				int v = j & 1 ? q[l] >> 4 : q[l] & 15;
				if (five)
					v |= ((qh[l] >> j) & 1) << 4;
				L[32 * j + l] = (int16_t)v;
			}
		}
		return 8;
	}
	case SK_DT_Q6_K: {
		const float d = f16(b + 208);
		const int8_t *sc = (const int8_t *)(b + 192);
		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
			for (int l = 0; l < 32; l++) {
				int q0 = (ql[l] & 15) | ((qh[l] & 3) << 4);
				int q1 = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
				int q2 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
				int q3 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
				const int8_t *s = sc + 8 * h + l / 16;
				int16_t *o = L + 128 * h + l;
				o[0] = (int16_t)((q0 - 32) * s[0]);
				o[32] = (int16_t)((q1 - 32) * s[2]);
				o[64] = (int16_t)((q2 - 32) * s[4]);
				o[96] = (int16_t)((q3 - 32) * s[6]);
			}
		}
		for (int j = 0; j < 8; j++) {
			D[j] = d;
			M[j] = 0;
		}
		return 8;
	}
	default:
		return 0;
	}
}

static void dot_portable(sk_dtype t, const uint8_t *w, int64_t rb, int64_t nrows, const sk_q8_rows *x, int64_t i0,
                         int nx, float *y, int64_t ldy)
{
	const int64_t n = x->n;
	const int64_t qk = sk_dtype_block_elems(t), bb = sk_dtype_block_bytes(t);
	int16_t L[256];
	float D[8], M[8];
	for (int64_t r = 0; r < nrows; r++, w += rb) {
		float acc[SK_Q8_MAX_NX] = { 0 };
		const uint8_t *b = w;
		for (int64_t e = 0; e < n; e += qk, b += bb) {
			int groups = unpack(t, b, L, D, M);
			for (int g = 0; g < groups; g++) {
				int64_t blk = e / SK_Q8_BLOCK + g;
				for (int i = 0; i < nx; i++) {
					const int64_t at = sk_q8_at(x, i0 + i, blk);
					const int8_t *q = x->q + at * SK_Q8_BLOCK;
					int32_t s = 0;
					for (int k = 0; k < SK_Q8_BLOCK; k++)
						s += L[32 * g + k] * q[k];
					acc[i] += (D[g] * x->d[at]) * (float)s + M[g] * x->s[at];
				}
			}
		}
		for (int i = 0; i < nx; i++)
			y[i * ldy + r] = acc[i];
	}
}

#define PORTABLE(name, type)                                                                                     \
	static void name(const void *w, int64_t rb, int64_t r0, int64_t nrows, const sk_q8_rows *x, int64_t i0, \
	                 int nx, float *y, int64_t ldy)                                                          \
	{                                                                                                        \
		dot_portable(type, (const uint8_t *)w + r0 * rb, rb, nrows, x, i0, nx, y, ldy);                   \
	}
PORTABLE(p_q4_0, SK_DT_Q4_0)
PORTABLE(p_q4_1, SK_DT_Q4_1)
PORTABLE(p_q5_0, SK_DT_Q5_0)
PORTABLE(p_q5_1, SK_DT_Q5_1)
PORTABLE(p_q8_0, SK_DT_Q8_0)
PORTABLE(p_q4_k, SK_DT_Q4_K)
PORTABLE(p_q5_k, SK_DT_Q5_K)
PORTABLE(p_q6_k, SK_DT_Q6_K)

/* round(127 · sk_nf4_table[c]) (tests/test_q8.c checks it) */
const int8_t sk_q8_nf4_levels[16] = { -127, -88, -67, -50, -36, -23, -12, 0, 10, 20, 31, 43, 56, 71, 92, 127 };

static void p_nf4(const void *w, int64_t in, int64_t r0, int64_t nrows, const sk_q8_rows *x, int64_t i0, int nx,
                  float *y, int64_t ldy)
{
	const sk_nf4_tensor *t = w;
	for (int64_t r = 0; r < nrows; r++) {
		float acc[SK_Q8_MAX_NX] = { 0 };
		for (int64_t k = 0; k < in / SK_Q8_BLOCK; k++) {
			int64_t f = (r0 + r) * in + SK_Q8_BLOCK * k;
			const uint8_t *p = t->packed + f / 2;
			float dw = sk_nf4_block_absmax(t, f / SK_NF4_BLOCK) * (1.0f / 127);
			for (int i = 0; i < nx; i++) {
				const int64_t at = sk_q8_at(x, i0 + i, k);
				const int8_t *q = x->q + at * SK_Q8_BLOCK;
				int32_t s = 0;
				for (int j = 0; j < 16; j++)
					s += sk_q8_nf4_levels[p[j] >> 4] * q[2 * j] + sk_q8_nf4_levels[p[j] & 15] * q[2 * j + 1];
				acc[i] += (dw * x->d[at]) * (float)s;
			}
		}
		for (int i = 0; i < nx; i++)
			y[i * ldy + r] = acc[i];
	}
}

static int kernel_portable(sk_dtype t, sk_q8_kernel *k)
{
	sk_q8_dot_fn f;
	switch (t) {
	case SK_DT_Q4_0: f = p_q4_0; break;
	case SK_DT_Q4_1: f = p_q4_1; break;
	case SK_DT_Q5_0: f = p_q5_0; break;
	case SK_DT_Q5_1: f = p_q5_1; break;
	case SK_DT_Q8_0: f = p_q8_0; break;
	case SK_DT_Q4_K: f = p_q4_k; break;
	case SK_DT_Q5_K: f = p_q5_k; break;
	case SK_DT_Q6_K: f = p_q6_k; break;
	case SK_DT_COUNT: f = p_nf4; break; /* NF4 */
	default: return 0;
	}
	k->dot = f;
	k->corr = SK_Q8_CORR_NONE;
	k->off = 0;
	k->tile = k->tile4 = NULL;
	k->tile_corr = SK_Q8_CORR_NONE;
	k->tile_off = 0;
	return 1;
}

/* ---- choice by CPU ---- */

sk_q8_isa sk_q8_isa_best(void)
{
#ifdef SK_Q8_X86
	static int best = -1;
	if (best < 0) {
		__builtin_cpu_init();
		int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !getenv("SK_NO_AVX2");
		int avx512 = avx2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
		             __builtin_cpu_supports("avx512bw") && !getenv("SK_NO_AVX512");
		int avxvnni = avx2 && __builtin_cpu_supports("avxvnni") && !getenv("SK_NO_AVX512");
		best = avx512 ? SK_Q8_ISA_AVX512VNNI : avxvnni ? SK_Q8_ISA_AVXVNNI : avx2 ? SK_Q8_ISA_AVX2
		                                                                              : SK_Q8_ISA_PORTABLE;
	}
	return (sk_q8_isa)best;
#else
	return SK_Q8_ISA_PORTABLE;
#endif
}

const char *sk_q8_isa_name(sk_q8_isa isa)
{
	switch (isa) {
	case SK_Q8_ISA_AVX2: return "avx2";
	case SK_Q8_ISA_AVXVNNI: return "avx-vnni";
	case SK_Q8_ISA_AVX512VNNI: return "avx512-vnni";
	default: return "portable";
	}
}

int sk_q8_kernel_nf4(sk_q8_isa isa, sk_q8_kernel *k)
{
	return sk_q8_kernel_for(SK_DT_COUNT, isa, k);
}

int sk_q8_kernel_for(sk_dtype t, sk_q8_isa isa, sk_q8_kernel *k)
{
	switch (isa) {
	case SK_Q8_ISA_AVX512VNNI: return sk_q8_kernel_avx512vnni(t, k);
	case SK_Q8_ISA_AVXVNNI: return sk_q8_kernel_avxvnni(t, k);
	case SK_Q8_ISA_AVX2: return sk_q8_kernel_avx2(t, k);
	default: return kernel_portable(t, k);
	}
}
