/* bitsandbytes AdamW8bit on the CPU (formats.md §2.3, §2.5): the 8-bit
 * blockwise kernel and the fp32 fallback for small tensors, written in the
 * reference CUDA kernels' order of operations.
 *
 * bitsandbytes builds its kernels with --use_fast_math, so on the GPU:
 *   - products feeding a sum are contracted to FMA; which product is fused
 *     was found by comparing with tests/fixtures/bnb (the state bytes and
 *     block maxima match exactly with the pattern used below, and with no
 *     other); every fused operation is an explicit fmaf here and
 *     contraction is off for everything else;
 *   - powf is MUFU.EX2(t * MUFU.LG2(beta)); see bnb_powf;
 *   - divisions are MUFU.RCP then a multiply, and sqrtf is MUFU.SQRT: both
 *     approximate (wrong in the last bit for ~15% of inputs), so they can't
 *     be reproduced exactly; parameters may differ by an ulp of the
 *     update. The per-element division is a * (1/b), the step size a true
 *     division: each is the form that matched the fixture more often. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "engine/train/optim.h"

#include <float.h>
#include <math.h>

#include "engine/format/nf4.h"

/* __powf(beta, t) as the GPU returns it for bitsandbytes' default betas,
 * t = 1..32 (read on an H200 with nvcc 13.0 --use_fast_math; the fixture's
 * GPU agrees): MUFU.EX2 is not correctly rounded, and at small t one ulp of
 * beta2^t is a relative 3e-5 of sqrt(1 - beta2^t). */
#define POW_TABLE 32
static const float pow_b09[POW_TABLE] = {
	0x1.ccccccp-1f, 0x1.9eb852p-1f, 0x1.753f7cp-1f, 0x1.4fec56p-1f, 0x1.2e54b4p-1f, 0x1.10190ap-1f,
	0x1.e9c6a6p-2f, 0x1.b8cc64p-2f, 0x1.8cb7f4p-2f, 0x1.650bf4p-2f, 0x1.415790p-2f, 0x1.213534p-2f,
	0x1.04497cp-2f, 0x1.d48444p-3f, 0x1.a5aa3ep-3f, 0x1.7b7f9ep-3f, 0x1.558c76p-3f, 0x1.3364d0p-3f,
	0x1.14a786p-3f, 0x1.f1fa58p-4f, 0x1.c02e1ep-4f, 0x1.935cb6p-4f, 0x1.6b06a4p-4f, 0x1.46b92ep-4f,
	0x1.260d0ep-4f, 0x1.08a558p-4f, 0x1.dc5cd4p-5f, 0x1.acb9eep-5f, 0x1.81da8ep-5f, 0x1.5b44b0p-5f,
	0x1.388aa4p-5f, 0x1.194990p-5f,
};
static const float pow_b0999[POW_TABLE] = {
	0x1.ff7cf0p-1f, 0x1.fefa02p-1f, 0x1.fe7734p-1f, 0x1.fdf488p-1f, 0x1.fd71fcp-1f, 0x1.fcef96p-1f,
	0x1.fc6d4cp-1f, 0x1.fbeb28p-1f, 0x1.fb6922p-1f, 0x1.fae740p-1f, 0x1.fa657cp-1f, 0x1.f9e3dcp-1f,
	0x1.f9625ap-1f, 0x1.f8e0fcp-1f, 0x1.f85fbep-1f, 0x1.f7dea2p-1f, 0x1.f75da6p-1f, 0x1.f6dcccp-1f,
	0x1.f65c12p-1f, 0x1.f5db7ap-1f, 0x1.f55b02p-1f, 0x1.f4daacp-1f, 0x1.f45a74p-1f, 0x1.f3da62p-1f,
	0x1.f35a6cp-1f, 0x1.f2da98p-1f, 0x1.f25ae4p-1f, 0x1.f1db54p-1f, 0x1.f15be0p-1f, 0x1.f0dc92p-1f,
	0x1.f05d60p-1f, 0x1.efde52p-1f,
};

/* Beyond the table: exp2f(t * L) with L the GPU's MUFU.LG2(beta), which
 * for 0.999 is 1.5e-5 (relative) away from log2(0.999) and so shifts the
 * bias correction by up to 1e-4 over a run; exp2f itself is within an ulp
 * or two of MUFU.EX2. Other betas use log2f. */
static float bnb_powf(float beta, int64_t t)
{
	if (beta == 0.9f && t >= 1 && t <= POW_TABLE)
		return pow_b09[t - 1];
	if (beta == 0.999f && t >= 1 && t <= POW_TABLE)
		return pow_b0999[t - 1];
	float l = beta == 0.9f ? -0x1.374d66p-3f : beta == 0.999f ? -0x1.7a5bf8p-10f : log2f(beta);
	return exp2f((float)t * l);
}

/* The kernel's arguments: float32 (ctypes c_float) and the per-step
 * terms it computes from them. */
typedef struct {
	float lr, beta1, beta2, eps, weight_decay, gnorm_scale;
	float c2, step_size, decay;
} kernel_args;

static kernel_args kernel_setup(const sk_adam_args *a)
{
	kernel_args k = {
		.lr = (float)a->lr, .beta1 = (float)a->beta1, .beta2 = (float)a->beta2,
		.eps = (float)a->eps, .weight_decay = (float)a->weight_decay,
		.gnorm_scale = (float)a->gnorm_scale,
	};
	float c1 = 1.0f - bnb_powf(k.beta1, a->step);
	k.c2 = sqrtf(1.0f - bnb_powf(k.beta2, a->step));
	k.step_size = -k.lr * k.c2 / c1;
	k.decay = fmaf(-k.lr, k.weight_decay, 1.0f);
	return k;
}

void sk_adamw8bit_scalars_of(const sk_adam_args *a, sk_adamw8bit_scalars *out)
{
	const kernel_args k = kernel_setup(a);
	*out = (sk_adamw8bit_scalars){
		.beta1 = k.beta1, .beta2 = k.beta2, .ob1 = 1.0f - k.beta1, .ob2 = 1.0f - k.beta2, .eps = k.eps,
		.weight_decay = k.weight_decay, .gnorm_scale = k.gnorm_scale, .c2 = k.c2, .step_size = k.step_size,
		.decay = k.decay,
	};
}

void sk_adamw8bit_update(float *p, const float *g, uint8_t *state1, uint8_t *state2,
			 float *absmax1, float *absmax2, int64_t n, const sk_adam_args *a)
{
	const float *q1 = sk_dynamic_map_signed, *q2 = sk_dynamic_map_unsigned;
	const kernel_args k = kernel_setup(a);
	const float b1 = k.beta1, b2 = k.beta2, ob1 = 1.0f - k.beta1, ob2 = 1.0f - k.beta2;
	float m[SK_OPTIM_BLOCK], v[SK_OPTIM_BLOCK];

	for (int64_t s = 0, b = 0; s < n; s += SK_OPTIM_BLOCK, b++) {
		int64_t len = n - s < SK_OPTIM_BLOCK ? n - s : SK_OPTIM_BLOCK;
		const float am1 = absmax1[b], am2 = absmax2[b];
		float mx1 = -FLT_MAX, mx2 = -FLT_MAX;
		for (int64_t i = 0; i < len; i++) {
			float gv = g[s + i];
			if (isfinite(gv)) {
				gv *= k.gnorm_scale;
				v[i] = fmaf(ob2 * gv, gv, (q2[state2[s + i]] * am2) * b2);
				m[i] = fmaf(ob1, gv, (q1[state1[s + i]] * am1) * b1);
			} else {
				m[i] = 0.0f;
				v[i] = 0.0f;
			}
			mx1 = fmaxf(mx1, fabsf(m[i]));
			mx2 = fmaxf(mx2, fabsf(v[i]));
		}
		/* The GPU pads a partial block with gradient 0 and codes 128 / 0,
		 * and the padding takes part in the block maximum. */
		if (len < SK_OPTIM_BLOCK)
			mx1 = fmaxf(mx1, fabsf((q1[128] * am1) * b1));
		absmax1[b] = mx1;
		absmax2[b] = mx2;

		const float inv1 = 1.0f / mx1, inv2 = 1.0f / mx2;
		for (int64_t i = 0; i < len; i++) {
			if (isfinite(g[s + i])) {
				float den = fmaf(k.c2, k.eps, sqrtf(v[i]));
				float x = fmaf(k.step_size, m[i] * (1.0f / den), p[s + i]);
				if (k.weight_decay > 0.0f)
					x = x * k.decay;
				p[s + i] = x;
			}
			/* An all-zero block gives 0 * inf = NaN here, which codes to 0;
			 * the sign fix then moves the first moment's code to 255.
			 * Both decode to 0 through the block's zero maximum. */
			uint8_t c1 = sk_blockwise8_code(q1, m[i] * inv1);
			uint8_t c2 = sk_blockwise8_code(q2, v[i] * inv2);
			/* keep the sign of m: a small moment must not flip direction */
			if (!signbit(q1[c1]) != !signbit(m[i]))
				c1 = (uint8_t)(m[i] > 0.0f ? c1 + 1 : c1 - 1);
			state1[s + i] = c1;
			state2[s + i] = c2;
		}
	}
}

void sk_adamw8bit_update_fp32(float *p, const float *g, float *m, float *v, int64_t n,
			      const sk_adam_args *a)
{
	const kernel_args k = kernel_setup(a);
	const float b1 = k.beta1, b2 = k.beta2, ob1 = 1.0f - k.beta1, ob2 = 1.0f - k.beta2;
	for (int64_t i = 0; i < n; i++) {
		float gv = g[i];
		if (!isfinite(gv)) {
			m[i] = 0.0f;
			v[i] = 0.0f;
			continue;
		}
		gv = k.gnorm_scale * gv;
		/* unlike the 8-bit kernel: the old moment is the fused factor,
		 * and g is squared before scaling, (1-beta2) * (g*g) */
		m[i] = fmaf(m[i], b1, ob1 * gv);
		v[i] = fmaf(v[i], b2, ob2 * (gv * gv));
		float den = fmaf(k.eps, k.c2, sqrtf(v[i]));
		float x = fmaf(k.step_size, m[i] * (1.0f / den), p[i]);
		if (k.weight_decay > 0.0f)
			x = x * k.decay;
		p[i] = x;
	}
}
