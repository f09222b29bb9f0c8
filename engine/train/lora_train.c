/* Trainable LoRA adapters: creation with PEFT's initialization, gradient
 * buffers beside the factors, and the pair enumeration the optimizer and
 * the writer walk. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/splitmix.h"
#include "engine/model/lora_internal.h"
#include "engine/train/train_grad.h"

int sk_lora_make_trainable(sk_lora *l)
{
	if (!l)
		return sk_fail("%s", _("no LoRA adapter given"));
	if (l->grad_a)
		return 0;
	size_t slots = (size_t)l->num_layers * SK_LORA_NMOD;
	l->grad_a = calloc(slots, sizeof *l->grad_a);
	l->grad_b = calloc(slots, sizeof *l->grad_b);
	if (!l->grad_a || !l->grad_b)
		goto oom;
	for (size_t i = 0; i < slots; i++) {
		const sk_lora_pair *p = &l->pairs[i];
		if (!p->A)
			continue;
		l->grad_a[i] = calloc((size_t)p->r * (size_t)p->in, sizeof(float));
		l->grad_b[i] = calloc((size_t)p->out * (size_t)p->r, sizeof(float));
		if (!l->grad_a[i] || !l->grad_b[i])
			goto oom;
	}
	return 0;
oom:
	for (size_t i = 0; i < slots; i++) {
		if (l->grad_a)
			free(l->grad_a[i]);
		if (l->grad_b)
			free(l->grad_b[i]);
	}
	free(l->grad_a);
	free(l->grad_b);
	l->grad_a = l->grad_b = NULL;
	return sk_fail("%s", _("out of memory for the LoRA gradients"));
}

sk_lora *sk_lora_new_trainable(const sk_config *cfg, unsigned module_mask, int r, float alpha, int use_rslora,
                               uint64_t seed)
{
	if (!cfg || cfg->num_layers < 1 || cfg->num_layers > SK_MAX_LAYERS) {
		sk_fail("%s", _("LoRA: the model config has no decoder layers"));
		return NULL;
	}
	if (r < 1 || r > 4096 || !(alpha > 0) || !isfinite(alpha)) {
		sk_fail(_("LoRA: rank %d / alpha %g out of range"), r, (double)alpha);
		return NULL;
	}
	if ((module_mask & SK_LORA_MASK_ALL) == 0) {
		sk_fail("%s", _("LoRA: no target modules selected"));
		return NULL;
	}
	sk_lora *l = calloc(1, sizeof *l);
	if (!l || !(l->pairs = calloc((size_t)cfg->num_layers * SK_LORA_NMOD, sizeof *l->pairs))) {
		free(l);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	l->num_layers = cfg->num_layers;
	l->rank = r;
	float scale = use_rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
	int first_shared = sk_config_first_kv_shared(cfg);
	uint64_t s = seed;
	for (int layer = 0; layer < cfg->num_layers; layer++)
		for (int m = 0; m < SK_LORA_NMOD; m++) {
			if (!(module_mask & (1u << m)))
				continue;
			/* consumers read their producer's K/V: their k/v factors would never run */
			if ((m == SK_LORA_K || m == SK_LORA_V) && layer >= first_shared)
				continue;
			sk_lora_pair *p = &l->pairs[(size_t)layer * SK_LORA_NMOD + m];
			int64_t in, out;
			sk_lora_module_dims(cfg, layer, (sk_lora_module)m, &in, &out);
			p->in = (int32_t)in;
			p->out = (int32_t)out;
			p->r = r;
			p->scale = scale;
			p->A = malloc((size_t)r * (size_t)p->in * sizeof(float));
			p->B = calloc((size_t)p->out * (size_t)r, sizeof(float));
			if (!p->A || !p->B) {
				sk_lora_free(l);
				sk_fail("%s", _("out of memory"));
				return NULL;
			}
			/* PEFT: kaiming_uniform(a = sqrt(5)) on [r, in] = U(-1/sqrt(in), 1/sqrt(in)) */
			float bound = 1.0f / sqrtf((float)p->in);
			for (int64_t i = 0; i < (int64_t)r * p->in; i++) {
				double u = (double)(sk_splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
				p->A[i] = (float)((2.0 * u - 1.0) * bound);
			}
			l->npairs++;
		}
	if (sk_lora_make_trainable(l) != 0) {
		sk_lora_free(l);
		return NULL;
	}
	return l;
}

/* slot index of the i-th pair in use, or -1 */
static int64_t slot_of(const sk_lora *l, int i)
{
	if (!l || i < 0 || i >= l->npairs)
		return -1;
	int k = 0;
	for (int64_t s = 0; s < (int64_t)l->num_layers * SK_LORA_NMOD; s++)
		if (l->pairs[s].A && k++ == i)
			return s;
	return -1;
}

sk_lora_pair *sk_lora_pair_at(sk_lora *l, int i, int *layer, sk_lora_module *module)
{
	int64_t s = slot_of(l, i);
	if (s < 0)
		return NULL;
	if (layer)
		*layer = (int)(s / SK_LORA_NMOD);
	if (module)
		*module = (sk_lora_module)(s % SK_LORA_NMOD);
	return &l->pairs[s];
}

float *sk_lora_grad_A(sk_lora *l, int i)
{
	int64_t s = slot_of(l, i);
	return s >= 0 && l->grad_a ? l->grad_a[s] : NULL;
}

float *sk_lora_grad_B(sk_lora *l, int i)
{
	int64_t s = slot_of(l, i);
	return s >= 0 && l->grad_b ? l->grad_b[s] : NULL;
}

float *sk_lora_grad_of(sk_lora *l, int layer, sk_lora_module module, int is_b)
{
	if (!l || !l->grad_a || layer < 0 || layer >= l->num_layers || (unsigned)module >= SK_LORA_NMOD)
		return NULL;
	size_t s = (size_t)layer * SK_LORA_NMOD + module;
	if (!l->pairs[s].A)
		return NULL;
	return is_b ? l->grad_b[s] : l->grad_a[s];
}

const char *sk_lora_key_name(const sk_lora *l, int layer, sk_lora_module module, int is_b)
{
	if (!l || !l->names || layer < 0 || layer >= l->num_layers || (unsigned)module >= SK_LORA_NMOD)
		return NULL;
	return l->names[((size_t)layer * SK_LORA_NMOD + module) * 2 + (is_b ? 1 : 0)];
}

void sk_lora_zero_grad(sk_lora *l)
{
	if (!l || !l->grad_a)
		return;
	for (size_t s = 0; s < (size_t)l->num_layers * SK_LORA_NMOD; s++) {
		const sk_lora_pair *p = &l->pairs[s];
		if (!p->A)
			continue;
		memset(l->grad_a[s], 0, (size_t)p->r * (size_t)p->in * sizeof(float));
		memset(l->grad_b[s], 0, (size_t)p->out * (size_t)p->r * sizeof(float));
	}
}
