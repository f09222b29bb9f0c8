/* Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_). */
#include "engine/train/optim.h"

#include <math.h>

float sk_grad_clip_norm(const sk_optim_param *params, size_t n, float max_norm)
{
	/* torch takes the norm of each tensor, then the norm of those norms;
	 * sums run in double here (torch's fp32 reduction order is not
	 * reproducible anyway) and each norm is rounded to float like torch's */
	double total = 0.0;
	for (size_t i = 0; i < n; i++) {
		double sq = 0.0;
		for (int64_t k = 0; k < params[i].numel; k++)
			sq += (double)params[i].grad[k] * params[i].grad[k];
		float norm = (float)sqrt(sq);
		total += (double)norm * norm;
	}
	float norm = (float)sqrt(total);
	if (!(max_norm > 0.0f) || !isfinite(norm))
		return norm;
	float coef = max_norm / (norm + 1e-6f);
	if (coef < 1.0f)
		for (size_t i = 0; i < n; i++)
			for (int64_t k = 0; k < params[i].numel; k++)
				params[i].grad[k] *= coef;
	return norm;
}
