/* AdamW with fp32 states, as torch.optim.AdamW computes it for one fp32
 * tensor (the single-tensor path): decay first, p *= 1 - lr*wd; then
 * m = lerp(m, g, 1 - beta1), v = beta2*v + (1 - beta2)*g*g and
 * p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
 * Scalars (bias corrections, step size, decay factor) are computed in
 * double and rounded to float where torch hands a Python float to an
 * fp32 tensor operation.
 *
 * bitsandbytes instead decays after the Adam step and adds eps to the
 * uncorrected sqrt(v) (scaled by sqrt(1 - beta2^t)); see
 * optim_adamw8bit.c. The two agree to first order in lr only. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "engine/train/optim.h"

#include <math.h>

void sk_adamw_update(float *p, const float *g, float *m, float *v, int64_t n, const sk_adam_args *a)
{
	const double lr = a->lr, t = (double)a->step;
	const double bc1 = 1.0 - pow(a->beta1, t);
	const double bc2 = 1.0 - pow(a->beta2, t);
	const float step_size = (float)(lr / bc1);
	const float bc2_sqrt = (float)sqrt(bc2);
	const float decay = (float)(1.0 - lr * a->weight_decay);
	const float w = (float)(1.0 - a->beta1);  /* lerp weight */
	const float b2 = (float)a->beta2, ob2 = (float)(1.0 - a->beta2);
	const float eps = (float)a->eps, gscale = (float)a->gnorm_scale;

	for (int64_t i = 0; i < n; i++) {
		float gv = g[i];
		if (!isfinite(gv)) {
			/* one bad element must not poison the tensor (torch would) */
			m[i] = 0.0f;
			v[i] = 0.0f;
			continue;
		}
		gv = gscale * gv;
		float x = p[i];
		if (a->weight_decay != 0.0)
			x = x * decay;
		/* torch's lerp: start + w*(end - start) for w < 0.5 */
		m[i] = w < 0.5f ? m[i] + w * (gv - m[i]) : gv - (gv - m[i]) * (1.0f - w);
		v[i] = v[i] * b2 + ob2 * gv * gv;
		float den = sqrtf(v[i]) / bc2_sqrt + eps;
		p[i] = x + -step_size * (m[i] / den);
	}
}
