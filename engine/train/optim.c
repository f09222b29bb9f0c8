/* The optimizer object: one state slot per parameter tensor, the step
 * counter, and the dispatch to the update kernels. */
#include "engine/train/optim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

void sk_optim_config_default(sk_optim_config *c)
{
	c->kind = SK_OPTIM_ADAMW8BIT;
	c->beta1 = 0.9;
	c->beta2 = 0.999;
	c->eps = 1e-8;
	c->weight_decay = 0.01;
	c->min_8bit_size = SK_OPTIM_MIN_8BIT_SIZE;
}

const char *sk_optim_kind_name(sk_optim_kind k)
{
	return k == SK_OPTIM_ADAMW ? "adamw" : "adamw8bit";
}

int sk_optim_kind_parse(const char *name, sk_optim_kind *out)
{
	if (name && strcmp(name, "adamw8bit") == 0)
		*out = SK_OPTIM_ADAMW8BIT;
	else if (name && strcmp(name, "adamw") == 0)
		*out = SK_OPTIM_ADAMW;
	else
		return sk_fail(_("unknown optimizer '%s' (expected adamw8bit or adamw)"), name ? name : "");
	return 0;
}

static int check_config(const sk_optim_config *c)
{
	if (c->kind != SK_OPTIM_ADAMW8BIT && c->kind != SK_OPTIM_ADAMW)
		return sk_fail(_("optimizer: unknown kind %d"), (int)c->kind);
	if (!(c->beta1 >= 0.0 && c->beta1 < 1.0) || !(c->beta2 >= 0.0 && c->beta2 < 1.0))
		return sk_fail(_("optimizer: betas must lie in [0, 1), got %g and %g"), c->beta1, c->beta2);
	/* bitsandbytes rounds to float32: beta2 = 0.99999999 would become 1 */
	if (!((float)c->beta1 < 1.0f) || !((float)c->beta2 < 1.0f))
		return sk_fail(_("optimizer: betas round to 1 in float32"));
	if (!(c->eps >= 0.0) || !isfinite(c->eps) || !isfinite((float)c->eps))
		return sk_fail(_("optimizer: bad epsilon %g"), c->eps);
	if (!(c->weight_decay >= 0.0) || !isfinite((float)c->weight_decay))
		return sk_fail(_("optimizer: bad weight decay %g"), c->weight_decay);
	if (c->min_8bit_size < 0)
		return sk_fail(_("optimizer: negative min_8bit_size"));
	return 0;
}

static void free_slot(sk_optim_slot *s)
{
	free(s->name);
	free(s->state1);
	free(s->state2);
	free(s->absmax1);
	free(s->absmax2);
	free(s->m);
	free(s->v);
}

void sk_optim_free(sk_optim *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++)
		free_slot(&o->slots[i]);
	free(o->slots);
	free(o);
}

static int init_slot(const sk_optim_config *cfg, const sk_optim_param *p, sk_optim_slot *s)
{
	if (!p->name || !*p->name)
		return sk_fail(_("optimizer: a parameter has no name"));
	if (!p->param || !p->grad || p->numel <= 0)
		return sk_fail(_("optimizer: parameter '%s' has no data"), p->name);
	/* moments of an element take at most 8 bytes; refuse sizes whose
	 * allocation could overflow */
	if (p->numel > (int64_t)(SIZE_MAX / 8) || p->numel > INT64_MAX / 8)
		return sk_fail(_("optimizer: parameter '%s' is too large"), p->name);
	s->name = strdup(p->name);
	s->param = p->param;
	s->grad = p->grad;
	s->numel = p->numel;
	s->nblocks = (p->numel + SK_OPTIM_BLOCK - 1) / SK_OPTIM_BLOCK;
	s->eight_bit = cfg->kind == SK_OPTIM_ADAMW8BIT && p->numel >= cfg->min_8bit_size;
	size_t n = (size_t)p->numel;
	if (s->eight_bit) {
		s->state1 = calloc(n, 1);
		s->state2 = calloc(n, 1);
		s->absmax1 = calloc((size_t)s->nblocks, sizeof(float));
		s->absmax2 = calloc((size_t)s->nblocks, sizeof(float));
		if (!s->name || !s->state1 || !s->state2 || !s->absmax1 || !s->absmax2)
			return sk_fail(_("optimizer: out of memory"));
	} else {
		s->m = calloc(n, sizeof(float));
		s->v = calloc(n, sizeof(float));
		if (!s->name || !s->m || !s->v)
			return sk_fail(_("optimizer: out of memory"));
	}
	return 0;
}

sk_optim *sk_optim_new(const sk_optim_config *cfg, const sk_optim_param *params, size_t n)
{
	if (check_config(cfg))
		return NULL;
	if (n > 0 && !params) {
		sk_fail(_("optimizer: no parameters"));
		return NULL;
	}
	sk_optim *o = calloc(1, sizeof *o);
	if (!o || (n && !(o->slots = calloc(n, sizeof *o->slots)))) {
		free(o);
		sk_fail(_("optimizer: out of memory"));
		return NULL;
	}
	o->cfg = *cfg;
	for (size_t i = 0; i < n; i++) {
		o->n = i + 1;
		if (init_slot(cfg, &params[i], &o->slots[i]))
			goto fail;
		for (size_t j = 0; j < i; j++)
			if (strcmp(o->slots[j].name, params[i].name) == 0) {
				sk_fail(_("optimizer: duplicate parameter name '%s'"), params[i].name);
				goto fail;
			}
	}
	return o;
fail:
	sk_optim_free(o);
	return NULL;
}

int sk_optim_begin_step(sk_optim *o, double lr, sk_adam_args *a)
{
	if (!(lr >= 0.0) || !isfinite((float)lr))
		return sk_fail(_("optimizer: bad learning rate %g"), lr);
	o->step++;
	*a = (sk_adam_args){
		.lr = lr, .beta1 = o->cfg.beta1, .beta2 = o->cfg.beta2, .eps = o->cfg.eps,
		.weight_decay = o->cfg.weight_decay, .gnorm_scale = 1.0, .step = o->step,
	};
	return 0;
}

int sk_optim_step(sk_optim *o, double lr)
{
	sk_adam_args a;
	if (sk_optim_begin_step(o, lr, &a))
		return -1;
	for (size_t i = 0; i < o->n; i++) {
		sk_optim_slot *s = &o->slots[i];
		if (s->eight_bit)
			sk_adamw8bit_update(s->param, s->grad, s->state1, s->state2, s->absmax1, s->absmax2,
					    s->numel, &a);
		else if (o->cfg.kind == SK_OPTIM_ADAMW8BIT)
			sk_adamw8bit_update_fp32(s->param, s->grad, s->m, s->v, s->numel, &a);
		else
			sk_adamw_update(s->param, s->grad, s->m, s->v, s->numel, &a);
	}
	return 0;
}

int64_t sk_optim_steps_done(const sk_optim *o)
{
	return o->step;
}

const sk_optim_config *sk_optim_get_config(const sk_optim *o)
{
	return &o->cfg;
}

uint64_t sk_optim_state_bytes(const sk_optim *o)
{
	uint64_t total = 0;
	for (size_t i = 0; i < o->n; i++) {
		const sk_optim_slot *s = &o->slots[i];
		if (s->eight_bit)
			total += 2 * (uint64_t)s->numel + 2 * sizeof(float) * (uint64_t)s->nblocks;
		else
			total += 2 * sizeof(float) * (uint64_t)s->numel;
	}
	return total;
}

int sk_optim_state(const sk_optim *o, size_t i, sk_optim_state_view *out)
{
	if (i >= o->n)
		return sk_fail(_("optimizer: no parameter %zu"), i);
	const sk_optim_slot *s = &o->slots[i];
	*out = (sk_optim_state_view){
		.eight_bit = s->eight_bit, .numel = s->numel, .nblocks = s->eight_bit ? s->nblocks : 0,
		.state1 = s->state1, .state2 = s->state2, .absmax1 = s->absmax1, .absmax2 = s->absmax2,
		.m = s->m, .v = s->v,
	};
	return 0;
}

size_t sk_optim_param_count(const sk_optim *o)
{
	return o->n;
}

int sk_optim_state_buffers(sk_optim *o, size_t i, sk_optim_state_buf *out)
{
	if (i >= o->n)
		return sk_fail(_("optimizer: no parameter %zu"), i);
	sk_optim_slot *s = &o->slots[i];
	*out = (sk_optim_state_buf){
		.eight_bit = s->eight_bit, .numel = s->numel, .nblocks = s->eight_bit ? s->nblocks : 0,
		.param = s->param, .grad = s->grad, .state1 = s->state1, .state2 = s->state2,
		.absmax1 = s->absmax1, .absmax2 = s->absmax2, .m = s->m, .v = s->v,
	};
	return 0;
}
