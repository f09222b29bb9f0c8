/* Learning-rate multipliers, following transformers/optimization.py (the
 * lambdas given to torch's LambdaLR): same branches, same double
 * arithmetic in the same order, so the values are identical. */
#include "engine/train/lr_schedule.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

static double warmup_fraction(int64_t step, int64_t warmup)
{
	return (double)step / (double)(warmup > 1 ? warmup : 1);
}

double sk_lr_multiplier(const sk_lr_schedule *s, int64_t step)
{
	if (step < s->warmup_steps)
		return warmup_fraction(step, s->warmup_steps);
	int64_t decay = s->total_steps - s->warmup_steps;
	double span = (double)(decay > 1 ? decay : 1);
	switch (s->kind) {
	case SK_LR_LINEAR: {
		double f = (double)(s->total_steps - step) / span;
		return f > 0.0 ? f : 0.0;
	}
	case SK_LR_COSINE: {
		/* half a cosine period over the decay span (num_cycles = 0.5) */
		double progress = (double)(step - s->warmup_steps) / span;
		double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
		return f > 0.0 ? f : 0.0;
	}
	case SK_LR_CONSTANT:
	default:
		return 1.0;
	}
}

double sk_lr_at(const sk_lr_schedule *s, double base_lr, int64_t step)
{
	return base_lr * sk_lr_multiplier(s, step);
}

static const char *const names[] = { "linear", "cosine", "constant" };

const char *sk_lr_kind_name(sk_lr_kind k)
{
	return (unsigned)k < 3 ? names[k] : "?";
}

int sk_lr_kind_parse(const char *name, sk_lr_kind *out)
{
	for (int i = 0; i < 3; i++)
		if (name && strcmp(name, names[i]) == 0) {
			*out = (sk_lr_kind)i;
			return 0;
		}
	return sk_fail(_("unknown learning-rate schedule '%s' (expected linear, cosine or constant)"),
		       name ? name : "");
}
