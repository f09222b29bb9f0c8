/* Optimizer checkpoints: the whole state in one safetensors file (layout in
 * optim.h). Loading checks every tensor (name, dtype, shape, values)
 * before it changes anything, so a bad file leaves the optimizer as it
 * was. */
#include "engine/train/optim_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/format/safetensors.h"

#define STEP_KEY "optimizer.step"
#define CONFIG_KEY "optimizer.config"
#define MAX_STEP 2147483647  /* bitsandbytes keeps the step in an int32 */

static const char *const suffix[4] = { "state1", "state2", "absmax1", "absmax2" };

static char *tensor_name(const char *param, const char *suf)
{
	size_t len = strlen(param) + strlen(suf) + 2;
	char *s = malloc(len);
	if (s)
		snprintf(s, len, "%s.%s", param, suf);
	return s;
}

int sk_optim_save(const sk_optim *o, const char *path)
{
	size_t cap = 4 * o->n + 2, n = 0, named = 0;
	sk_st_entry *e = calloc(cap, sizeof *e);
	int rc = -1;
	int64_t step = o->step;
	double config[4] = { o->cfg.beta1, o->cfg.beta2, o->cfg.eps, o->cfg.weight_decay };
	if (!e) {
		sk_fail(_("%s: out of memory"), path);
		return -1;
	}
	for (size_t i = 0; i < o->n; i++) {
		const sk_optim_slot *s = &o->slots[i];
		int k = s->eight_bit ? 4 : 2;
		for (int j = 0; j < k; j++) {
			sk_st_entry *x = &e[n++];
			if (!(x->name = tensor_name(s->name, suffix[j]))) {
				sk_fail(_("%s: out of memory"), path);
				goto out;
			}
			named++;
			x->ndim = 1;
			if (!s->eight_bit) {
				x->dtype = SK_DT_F32;
				x->shape[0] = s->numel;
				x->data = j == 0 ? s->m : s->v;
			} else if (j < 2) {
				x->dtype = SK_DT_U8;
				x->shape[0] = s->numel;
				x->data = j == 0 ? s->state1 : s->state2;
			} else {
				x->dtype = SK_DT_F32;
				x->shape[0] = s->nblocks;
				x->data = j == 2 ? s->absmax1 : s->absmax2;
			}
		}
	}
	e[n++] = (sk_st_entry){ .name = STEP_KEY, .dtype = SK_DT_I64, .ndim = 1, .shape = { 1 }, .data = &step };
	e[n++] = (sk_st_entry){ .name = CONFIG_KEY, .dtype = SK_DT_F64, .ndim = 1, .shape = { 4 }, .data = config };
	rc = sk_st_write(path, e, n);
out:
	for (size_t i = 0; i < named; i++)
		free((char *)e[i].name);
	free(e);
	return rc;
}

/* The tensor NAME of the file, checked to be 1-D of count elements of dtype. */
static const sk_tensor_view *expect(const sk_st_file *f, const char *path, const char *name,
				    sk_dtype dtype, int64_t count)
{
	const sk_tensor_view *t = sk_st_find(f, name);
	if (!t) {
		sk_fail(_("%s: tensor '%s' is missing (state of another run?)"), path, name);
		return NULL;
	}
	if (t->dtype != dtype || t->ndim != 1 || t->shape[0] != count ||
	    t->nbytes != (uint64_t)count * (dtype == SK_DT_U8 ? 1u : dtype == SK_DT_F32 ? 4u : 8u)) {
		sk_fail(_("%s: tensor '%s' should be %s [%" PRId64 "] (state of another optimizer kind or parameter list?)"),
			path, name, sk_dtype_name(dtype), count);
		return NULL;
	}
	return t;
}

/* Every float of t finite and, when nonneg, >= 0. */
static int check_floats(const sk_tensor_view *t, const char *path, int nonneg)
{
	const unsigned char *p = t->data;
	for (int64_t i = 0; i < t->shape[0]; i++) {
		float x;
		memcpy(&x, p + 4 * i, 4);
		if (!isfinite(x) || (nonneg && x < 0.0f))
			return sk_fail(_("%s: tensor '%s' holds an invalid value at %" PRId64), path, t->name, i);
	}
	return 0;
}

int sk_optim_load(sk_optim *o, const char *path)
{
	sk_st_file *f = sk_st_open(path);
	if (!f)
		return -1;
	int rc = sk_optim_load_st(o, f, path);
	sk_st_close(f);
	return rc;
}

int sk_optim_load_st(sk_optim *o, const sk_st_file *f, const char *path)
{
	int rc = -1;
	size_t expected = 2;
	const sk_tensor_view **views = calloc(4 * o->n + 1, sizeof *views);
	if (!views) {
		sk_fail(_("%s: out of memory"), path);
		goto out;
	}
	/* check everything first */
	for (size_t i = 0; i < o->n; i++) {
		const sk_optim_slot *s = &o->slots[i];
		int k = s->eight_bit ? 4 : 2;
		for (int j = 0; j < k; j++) {
			char *name = tensor_name(s->name, suffix[j]);
			if (!name) {
				sk_fail(_("%s: out of memory"), path);
				goto out;
			}
			sk_dtype dt = s->eight_bit && j < 2 ? SK_DT_U8 : SK_DT_F32;
			int64_t count = s->eight_bit && j >= 2 ? s->nblocks : s->numel;
			const sk_tensor_view *t = expect(f, path, name, dt, count);
			free(name);
			if (!t || (dt == SK_DT_F32 && check_floats(t, path, j != 0)))
				goto out;
			views[4 * i + (size_t)j] = t;
		}
		expected += (size_t)k;
	}
	if (sk_st_count(f) != expected) {
		sk_fail(_("%s: %zu tensors, expected %zu (state of another parameter list?)"), path,
			sk_st_count(f), expected);
		goto out;
	}
	const sk_tensor_view *st = expect(f, path, STEP_KEY, SK_DT_I64, 1);
	const sk_tensor_view *ct = expect(f, path, CONFIG_KEY, SK_DT_F64, 4);
	if (!st || !ct)
		goto out;
	int64_t step;
	double cfgv[4];
	memcpy(&step, st->data, 8);
	memcpy(cfgv, ct->data, sizeof cfgv);
	if (step < 0 || step > MAX_STEP) {
		sk_fail(_("%s: bad step count %" PRId64), path, step);
		goto out;
	}
	for (int i = 0; i < 4; i++)
		if (!(cfgv[i] >= 0.0) || !isfinite((float)cfgv[i]) || (i < 2 && !((float)cfgv[i] < 1.0f))) {
			sk_fail(_("%s: bad hyperparameter in '%s'"), path, CONFIG_KEY);
			goto out;
		}
	/* then apply */
	for (size_t i = 0; i < o->n; i++) {
		sk_optim_slot *s = &o->slots[i];
		size_t n = (size_t)s->numel, nb = (size_t)s->nblocks;
		if (s->eight_bit) {
			memcpy(s->state1, views[4 * i]->data, n);
			memcpy(s->state2, views[4 * i + 1]->data, n);
			memcpy(s->absmax1, views[4 * i + 2]->data, nb * sizeof(float));
			memcpy(s->absmax2, views[4 * i + 3]->data, nb * sizeof(float));
		} else {
			memcpy(s->m, views[4 * i]->data, n * sizeof(float));
			memcpy(s->v, views[4 * i + 1]->data, n * sizeof(float));
		}
	}
	o->step = step;
	o->cfg.beta1 = cfgv[0];
	o->cfg.beta2 = cfgv[1];
	o->cfg.eps = cfgv[2];
	o->cfg.weight_decay = cfgv[3];
	rc = 0;
out:
	free(views);
	return rc;
}
