/* The training configuration: defaults, recipes, the targets list, JSON
 * round trip (trainer_state.json, options.json) and checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/checkpoint.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/train/train.h"
#include "engine/train/train_grad.h"

static const char *const short_names[SK_LORA_NMOD] = { "q", "k", "v", "o", "gate", "up", "down" };

void sk_train_config_default(sk_train_config *c)
{
	memset(c, 0, sizeof *c);
	c->r = 8;
	c->alpha = 16;
	c->dropout = 0;
	c->targets = SK_LORA_MASK_ALL;
	c->quant_nf4 = 1;
	c->grad_ckpt = 1;
	c->optim = SK_OPTIM_ADAMW8BIT;
	c->weight_decay = 0.01;
	c->sched = SK_LR_LINEAR;
	c->warmup = 10;
	c->lr = 2e-5;
	c->grad_accum = 4;
	c->max_grad_norm = 1.0;
	c->epochs = 1;
	c->batch = 2;
	c->seed = 3407;
	c->loss_on = SK_LOSS_RESPONSES;
	c->max_len = 2048;
	c->bad_rows = SK_BAD_ROWS_SKIP;
	c->save_every = 100;
	c->keep = 3;
	c->merge_tokens = -1;
}

int sk_train_config_recipe(sk_train_config *c, const char *name)
{
	if (!strcmp(name, "seed") || !strcmp(name, "seed-run")) {
		/* the seed report's table (section 4) */
		c->r = 8;
		c->alpha = 16;
		c->dropout = 0;
		c->targets = SK_LORA_MASK_ALL;
		c->optim = SK_OPTIM_ADAMW8BIT;
		c->lr = 2e-5;
		c->sched = SK_LR_LINEAR;
		c->batch = 2;
		c->grad_accum = 4;
		c->epochs = 1;
		c->warmup = 10;
		c->weight_decay = 0.01;
		c->seed = 3407;
		c->quant_nf4 = 1;
		if (!strcmp(name, "seed-run")) {
			/* what the run's notebook actually did (seed-notes.md) */
			c->targets = SK_LORA_MASK_MLP;
			c->loss_on = SK_LOSS_ALL;
			c->max_len = 4000;
		}
		return 0;
	}
	sk_fail(_("--recipe: '%s' is not one of seed, seed-run"), name);
	return -1;
}

int sk_train_targets_parse(const char *s, unsigned *mask)
{
	if (!strcmp(s, "all")) {
		*mask = SK_LORA_MASK_ALL;
		return 0;
	}
	if (!strcmp(s, "attn")) {
		*mask = SK_LORA_MASK_ATTN;
		return 0;
	}
	if (!strcmp(s, "mlp")) {
		*mask = SK_LORA_MASK_MLP;
		return 0;
	}
	unsigned m = 0;
	const char *p = s;
	while (*p) {
		size_t n = strcspn(p, ",");
		int found = -1;
		for (int i = 0; i < SK_LORA_NMOD; i++) {
			const char *full = sk_lora_module_name((sk_lora_module)i);
			if ((strlen(short_names[i]) == n && !strncmp(p, short_names[i], n)) ||
			    (strlen(full) == n && !strncmp(p, full, n)))
				found = i;
		}
		if (found < 0) {
			sk_fail(_("--targets: '%.*s' is not one of q, k, v, o, gate, up, down (or attn, mlp, all)"),
				(int)(n > 40 ? 40 : n), p);
			return -1;
		}
		m |= 1u << found;
		p += n;
		if (*p == ',')
			p++;
	}
	if (!m) {
		sk_fail("%s", _("--targets: no module given"));
		return -1;
	}
	*mask = m;
	return 0;
}

void sk_train_targets_format(unsigned mask, char *buf, size_t cap)
{
	size_t k = 0;
	buf[0] = '\0';
	for (int i = 0; i < SK_LORA_NMOD; i++)
		if (mask & (1u << i)) {
			int w = snprintf(buf + k, cap - k, "%s%s", k ? "," : "", short_names[i]);
			if (w < 0 || (size_t)w >= cap - k)
				return;
			k += (size_t)w;
		}
}

json_t *sk_train_config_to_json(const sk_train_config *c)
{
	char targets[64];
	sk_train_targets_format(c->targets, targets, sizeof targets);
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:f, s:f, s:s, s:b, s:s, s:b, s:s, s:f, s:s, s:I, s:f,"
			      " s:i, s:f, s:i, s:i, s:s, s:s, s:I, s:b, s:f, s:I, s:s, s:I, s:i, s:I, s:i, s:I}",
			      "model", c->model, "data", c->data, "run_dir", c->run_dir, "r", c->r, "alpha",
			      c->alpha, "dropout", c->dropout, "targets", targets, "rslora", c->rslora, "quant",
			      c->quant_nf4 ? "nf4" : "none", "grad_ckpt", c->grad_ckpt, "optim",
			      sk_optim_kind_name(c->optim), "weight_decay", c->weight_decay, "sched",
			      sk_lr_kind_name(c->sched), "warmup", (json_int_t)c->warmup, "lr", c->lr, "grad_accum",
			      c->grad_accum, "max_grad_norm", c->max_grad_norm, "epochs", c->epochs, "batch", c->batch,
			      "loss_on", c->loss_on == SK_LOSS_ALL ? "all" : "responses", "on_bad_row",
			      c->bad_rows == SK_BAD_ROWS_SKIP ? "skip" : "fail", "max_len", (json_int_t)c->max_len,
			      "packing", c->packing, "eval_frac", c->eval_frac, "eval_every", (json_int_t)c->eval_every,
			      "seed", "", "save_every", (json_int_t)c->save_every, "keep", c->keep, "max_steps",
			      (json_int_t)c->max_steps, "threads", c->threads, "merge_tokens",
			      (json_int_t)c->merge_tokens);
	if (!o)
		return NULL;
	/* a 64-bit seed does not fit json_int_t's sign; keep it as decimal text */
	char seed[32];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
	json_object_set_new(o, "seed", json_string(seed));
	return o;
}

static int get_str(const json_t *o, const char *key, const char *name, const char **out)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (!json_is_string(v)) {
		sk_fail(_("%s: option %s is not a string"), name, key);
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

static int get_num(const json_t *o, const char *key, const char *name, double min, double max, double *out)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < min ||
	    json_number_value(v) > max) {
		sk_fail(_("%s: option %s is not a number in [%g, %g]"), name, key, min, max);
		return -1;
	}
	*out = json_number_value(v);
	return 1;
}

static int get_int(const json_t *o, const char *key, const char *name, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		sk_fail(_("%s: option %s is not an integer in [%lld, %lld]"), name, key, (long long)min,
			(long long)max);
		return -1;
	}
	*out = json_integer_value(v);
	return 1;
}

static int copy_path(char *dst, const char *src, const char *name, const char *key)
{
	if (strlen(src) >= SK_TRAIN_PATH_MAX) {
		sk_fail(_("%s: option %s is too long"), name, key);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

int sk_train_config_from_json(sk_train_config *c, const json_t *o, const char *name)
{
	if (!json_is_object(o)) {
		sk_fail(_("%s: options are not an object"), name);
		return -1;
	}
	sk_train_config t = *c;
	const char *s;
	double d;
	int64_t i;
	int rc;
#define STR(key, body) \
	if ((rc = get_str(o, key, name, &s)) < 0) return -1; \
	if (rc) { body }
#define NUM(key, lo, hi, field) \
	if ((rc = get_num(o, key, name, lo, hi, &d)) < 0) return -1; \
	if (rc) t.field = d;
#define INT(key, lo, hi, field) \
	if ((rc = get_int(o, key, name, lo, hi, &i)) < 0) return -1; \
	if (rc) t.field = i;
	STR("model", if (copy_path(t.model, s, name, "model")) return -1;)
	STR("data", if (copy_path(t.data, s, name, "data")) return -1;)
	STR("run_dir", if (copy_path(t.run_dir, s, name, "run_dir")) return -1;)
	INT("r", 1, 1024, r)
	NUM("alpha", 0, 1e6, alpha)
	NUM("dropout", 0, 0.999, dropout)
	STR("targets", if (sk_train_targets_parse(s, &t.targets)) return -1;)
	INT("rslora", 0, 1, rslora)
	STR("quant", if (!strcmp(s, "nf4")) t.quant_nf4 = 1; else if (!strcmp(s, "none")) t.quant_nf4 = 0;
	    else { sk_fail(_("%s: option quant '%s' is not nf4 or none"), name, s); return -1; })
	INT("grad_ckpt", 0, 1, grad_ckpt)
	STR("optim", if (sk_optim_kind_parse(s, &t.optim)) return -1;)
	NUM("weight_decay", 0, 10, weight_decay)
	STR("sched", if (sk_lr_kind_parse(s, &t.sched)) return -1;)
	INT("warmup", 0, INT32_MAX, warmup)
	NUM("lr", 0, 10, lr)
	INT("grad_accum", 1, 65536, grad_accum)
	NUM("max_grad_norm", 0, 1e9, max_grad_norm)
	INT("epochs", 1, 100000, epochs)
	INT("batch", 1, 65536, batch)
	STR("loss_on", if (sk_loss_on_parse(s, &t.loss_on)) return -1;)
	STR("on_bad_row", if (sk_bad_rows_parse(s, &t.bad_rows)) return -1;)
	INT("max_len", 0, INT32_MAX, max_len)
	INT("packing", 0, 1, packing)
	INT("merge_tokens", -1, INT32_MAX, merge_tokens)
	NUM("eval_frac", 0, 0.999, eval_frac)
	INT("eval_every", 0, INT32_MAX, eval_every)
	INT("save_every", 0, INT32_MAX, save_every)
	INT("keep", 0, 1000000, keep)
	INT("max_steps", 0, INT32_MAX, max_steps)
	INT("threads", 0, 1024, threads)
	STR("seed", {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		if (!*s || *end || *s == '-') {
			sk_fail(_("%s: option seed '%s' is not a non-negative integer"), name, s);
			return -1;
		}
		t.seed = v;
	})
#undef STR
#undef NUM
#undef INT
	*c = t;
	return 0;
}

void sk_train_config_describe(const sk_train_config *c, char *buf, size_t cap)
{
	char targets[64];
	sk_train_targets_format(c->targets, targets, sizeof targets);
	char maxsteps[32] = "-";
	if (c->max_steps)
		snprintf(maxsteps, sizeof maxsteps, "%lld", (long long)c->max_steps);
	char merged[64] = "";
	if (c->merge_tokens > 0)
		snprintf(merged, sizeof merged, "; merged passes up to %lld tokens", (long long)c->merge_tokens);
	else if (c->merge_tokens < 0)
		snprintf(merged, sizeof merged, "; merged passes: the backend's default");
	snprintf(buf, cap,
		 "  model        %s (%s)\n"
		 "  data         %s (loss on %s, max length %lld%s, bad rows: %s, eval fraction %g)\n"
		 "  run dir      %s\n"
		 "  LoRA         r %d, alpha %g%s, dropout %g, targets %s\n"
		 "  optimizer    %s, lr %g, %s schedule, warm-up %lld, weight decay %g, max grad norm %g\n"
		 "  batches      %d x %d accumulated (effective %d), %d epoch(s), max steps %s, seed %llu%s\n"
		 "  saving       every %lld steps, keep %d; eval every %lld; gradient checkpointing %s\n",
		 c->model, c->quant_nf4 ? "frozen NF4 base" : "frozen base in its stored type", c->data,
		 c->loss_on == SK_LOSS_ALL ? "all tokens" : "responses", (long long)c->max_len,
		 c->packing ? ", packing" : "", c->bad_rows == SK_BAD_ROWS_SKIP ? "skip" : "fail", c->eval_frac,
		 c->run_dir, c->r, c->alpha, c->rslora ? " (rsLoRA)" : "", c->dropout, targets,
		 sk_optim_kind_name(c->optim), c->lr, sk_lr_kind_name(c->sched), (long long)c->warmup,
		 c->weight_decay, c->max_grad_norm, c->batch, c->grad_accum, c->batch * c->grad_accum, c->epochs,
		 maxsteps, (unsigned long long)c->seed, merged, (long long)c->save_every, c->keep, (long long)c->eval_every,
		 c->grad_ckpt ? "on" : "off");
}

int sk_train_config_check(const sk_train_config *c)
{
	if (c->r < 1 || c->r > 1024)
		return sk_fail(_("--r: %d is not in [1, 1024]"), c->r);
	if (!(c->dropout >= 0 && c->dropout < 1))
		return sk_fail(_("--dropout: %g is not in [0, 1)"), c->dropout);
	if (!(c->eval_frac >= 0 && c->eval_frac < 1))
		return sk_fail(_("--eval-frac: %g is not in [0, 1)"), c->eval_frac);
	if (c->merge_tokens < -1)
		return sk_fail(_("--merge-tokens: %lld is not a token count"), (long long)c->merge_tokens);
	if (c->packing && c->max_len <= 0)
		return sk_fail("%s", _("--packing needs --max-len N"));
	if (!(c->targets & SK_LORA_MASK_ALL))
		return sk_fail("%s", _("--targets: no module given"));
	if (c->batch < 1 || c->grad_accum < 1 || c->epochs < 1)
		return sk_fail("%s", _("--batch, --grad-accum and --epochs must be at least 1"));
	if (!c->data[0])
		return sk_fail("%s", _("--data FILE is required"));
	if (!c->run_dir[0])
		return sk_fail("%s", _("--out RUN_DIR is required"));
	return 0;
}

int sk_train_config_load_run(const char *run_dir, sk_train_config *c)
{
	char *ckpt = NULL;
	int64_t step;
	int found = sk_checkpoint_find_latest(run_dir, &ckpt, &step, NULL, NULL);
	if (found < 0)
		return -1;
	if (found) {
		sk_trainer_state st;
		memset(&st, 0, sizeof st);
		int rc = sk_checkpoint_read_state(ckpt, &st);
		if (rc == 0 && st.options)
			rc = sk_train_config_from_json(c, st.options, ckpt);
		sk_trainer_state_free(&st);
		free(ckpt);
		if (rc)
			return -1;
		return 1;
	}
	char *path = sk_path_join(run_dir, "options.json");
	if (!path)
		return sk_fail("%s", _("out of memory"));
	if (sk_file_exists(path) != 1) {
		free(path);
		return 0;
	}
	json_error_t je;
	json_t *o = json_load_file(path, 0, &je);
	if (!o) {
		sk_fail(_("%s: %s (line %d)"), path, je.text, je.line);
		free(path);
		return -1;
	}
	int rc = sk_train_config_from_json(c, o, path);
	json_decref(o);
	free(path);
	return rc ? -1 : 1;
}
