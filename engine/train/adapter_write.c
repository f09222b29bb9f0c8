/* PEFT adapter directory writer (formats.md §3.5-3.7). The config carries
 * the full field set of PEFT 0.17 (§3.6) so that PEFT >= 0.17 loads it
 * without warnings; inference_mode is true as save_pretrained writes it. */
#include "engine/train/adapter_write.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/format/atomic_dir.h"
#include "engine/model/config.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/strbuf.h"
#include "engine/format/safetensors.h"

#define MAX_FACTOR_ELEMS ((int64_t)1 << 34)

static const char *key_prefix(sk_adapter_keys k)
{
	return k == SK_ADAPTER_KEYS_TEXT ? "model.layers." : "model.language_model.layers.";
}

static const char *group_of(sk_lora_module m)
{
	return m <= SK_LORA_O ? "self_attn" : "mlp";
}

typedef struct {
	uint8_t layers[SK_MAX_LAYERS]; /* 1 where the module is adapted */
	int used;
} module_set;

/* "self_attn\.(q_proj|k_proj)", "mlp\.(up_proj)" or both in a group. */
static void add_modules(sk_strbuf *b, unsigned mask)
{
	int attn = (mask & 0x0fu) != 0, mlp = (mask & 0x70u) != 0;
	if (attn && mlp)
		sk_strbuf_puts(b, "(");
	for (int g = 0; g < 2; g++) {
		unsigned part = mask & (g == 0 ? 0x0fu : 0x70u);
		if (!part)
			continue;
		if (g == 1 && attn)
			sk_strbuf_puts(b, "|");
		sk_strbuf_puts(b, group_of(g == 0 ? SK_LORA_Q : SK_LORA_GATE));
		sk_strbuf_puts(b, "\\.(");
		int first = 1;
		for (int m = 0; m < SK_LORA_NMOD; m++)
			if (part & (1u << m)) {
				if (!first)
					sk_strbuf_puts(b, "|");
				sk_strbuf_puts(b, sk_lora_module_name((sk_lora_module)m));
				first = 0;
			}
		sk_strbuf_puts(b, ")");
	}
	if (attn && mlp)
		sk_strbuf_puts(b, ")");
}

char *sk_adapter_target_regex(const sk_adapter_pair *pairs, size_t n, sk_adapter_keys keys)
{
	module_set *sets = calloc(SK_LORA_NMOD, sizeof *sets);
	if (!sets) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	int maxl = -1;
	for (size_t i = 0; i < n; i++) {
		if (pairs[i].layer < 0 || pairs[i].layer >= SK_MAX_LAYERS || (unsigned)pairs[i].module >= SK_LORA_NMOD) {
			free(sets);
			sk_fail(_("adapter pair %zu: layer %d / module %d out of range"), i, (int)pairs[i].layer,
				(int)pairs[i].module);
			return NULL;
		}
		sets[pairs[i].module].layers[pairs[i].layer] = 1;
		sets[pairs[i].module].used = 1;
		if (pairs[i].layer > maxl)
			maxl = pairs[i].layer;
	}
	/* modules with the same layer set share one alternative */
	unsigned groups[SK_LORA_NMOD] = { 0 };
	int ng = 0, done[SK_LORA_NMOD] = { 0 };
	for (int m = 0; m < SK_LORA_NMOD; m++) {
		if (!sets[m].used || done[m])
			continue;
		for (int k = m; k < SK_LORA_NMOD; k++)
			if (sets[k].used && !done[k] && memcmp(sets[k].layers, sets[m].layers, SK_MAX_LAYERS) == 0) {
				groups[ng] |= 1u << k;
				done[k] = 1;
			}
		ng++;
	}
	sk_strbuf b = { 0 };
	const char *p = key_prefix(keys);
	for (; *p; p++) {
		char c[3] = { *p, 0, 0 };
		if (*p == '.') {
			c[0] = '\\';
			c[1] = '.';
		}
		sk_strbuf_puts(&b, c);
	}
	if (ng > 1)
		sk_strbuf_puts(&b, "(");
	for (int g = 0; g < ng; g++) {
		int m = __builtin_ctz(groups[g]);
		int count = 0, all = 1;
		for (int l = 0; l < SK_MAX_LAYERS; l++) {
			count += sets[m].layers[l];
			if (l <= maxl && !sets[m].layers[l])
				all = 0;
		}
		if (g)
			sk_strbuf_puts(&b, "|");
		if (all) {
			sk_strbuf_puts(&b, "\\d+");
		} else {
			if (count > 1)
				sk_strbuf_puts(&b, "(");
			int first = 1;
			for (int l = 0; l < SK_MAX_LAYERS; l++)
				if (sets[m].layers[l]) {
					char num[16];
					snprintf(num, sizeof num, "%s%d", first ? "" : "|", l);
					sk_strbuf_puts(&b, num);
					first = 0;
				}
			if (count > 1)
				sk_strbuf_puts(&b, ")");
		}
		sk_strbuf_puts(&b, "\\.");
		add_modules(&b, groups[g]);
	}
	if (ng > 1)
		sk_strbuf_puts(&b, ")");
	free(sets);
	if (b.oom || !b.s) {
		free(b.s);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	return b.s;
}

static int check_pairs(const char *dir, const sk_adapter_info *info, const sk_adapter_pair *pairs, size_t n)
{
	if (n == 0)
		return sk_fail(_("%s: an adapter needs at least one LoRA pair"), dir);
	if (info->r < 1 || info->r > 65536)
		return sk_fail(_("%s: LoRA rank %d out of range"), dir, (int)info->r);
	if (!isfinite(info->alpha) || info->alpha <= 0 || !isfinite(info->dropout) || info->dropout < 0 ||
	    info->dropout >= 1)
		return sk_fail(_("%s: bad lora_alpha %g or lora_dropout %g"), dir, info->alpha, info->dropout);
	uint8_t *seen = calloc((size_t)SK_MAX_LAYERS * SK_LORA_NMOD, 1);
	if (!seen)
		return sk_fail(_("%s: out of memory"), dir);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const sk_adapter_pair *p = &pairs[i];
		if (p->layer < 0 || p->layer >= SK_MAX_LAYERS || (unsigned)p->module >= SK_LORA_NMOD) {
			rc = sk_fail(_("%s: pair %zu: layer %d / module %d out of range"), dir, i, (int)p->layer,
				     (int)p->module);
			break;
		}
		const char *mn = sk_lora_module_name(p->module);
		size_t k = (size_t)p->layer * SK_LORA_NMOD + p->module;
		if (seen[k]++) {
			rc = sk_fail(_("%s: layer %d %s given twice"), dir, (int)p->layer, mn);
			break;
		}
		if (!p->A || !p->B || p->in < 1 || p->out < 1 || (int64_t)p->in * info->r > MAX_FACTOR_ELEMS ||
		    (int64_t)p->out * info->r > MAX_FACTOR_ELEMS) {
			rc = sk_fail(_("%s: layer %d %s: bad factor (in %d, out %d, r %d)"), dir, (int)p->layer, mn,
				     (int)p->in, (int)p->out, (int)info->r);
			break;
		}
		size_t na = (size_t)p->in * (size_t)info->r, nb = (size_t)p->out * (size_t)info->r;
		for (size_t j = 0; j < na + nb; j++) {
			float v = j < na ? p->A[j] : p->B[j - na];
			if (!isfinite(v)) {
				rc = sk_fail(_("%s: layer %d %s: lora_%s holds a non-finite value"), dir, (int)p->layer,
					     mn, j < na ? "A" : "B");
				break;
			}
		}
	}
	free(seen);
	return rc;
}

static int write_tensors(const char *dir, const sk_adapter_info *info, const sk_adapter_pair *pairs, size_t n)
{
	sk_st_entry *e = calloc(2 * n, sizeof *e);
	char *names = malloc(2 * n * 160);
	char *path = sk_path_join(dir, "adapter_model.safetensors");
	int rc = -1;
	if (!e || !names || !path) {
		sk_fail(_("%s: out of memory"), dir);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const sk_adapter_pair *p = &pairs[i];
		for (int f = 0; f < 2; f++) {
			char *nm = names + (2 * i + f) * 160;
			snprintf(nm, 160, "base_model.model.%s%d.%s.%s.lora_%s.weight", key_prefix(info->keys),
				 (int)p->layer, group_of(p->module), sk_lora_module_name(p->module), f ? "B" : "A");
			sk_st_entry *t = &e[2 * i + f];
			t->name = nm;
			t->dtype = SK_DT_F32;
			t->ndim = 2;
			t->shape[0] = f ? p->out : info->r;
			t->shape[1] = f ? info->r : p->in;
			t->data = f ? (const void *)p->B : (const void *)p->A;
		}
	}
	rc = sk_st_write(path, e, 2 * n);
out:
	free(e);
	free(names);
	free(path);
	return rc;
}

/* An integral alpha is written as an int, as PEFT does for lora_alpha=16. */
static json_t *number(double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *build_config(const sk_adapter_info *info, const char *regex)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
#define SET(k, v) bad |= json_object_set_new(o, k, v)
	SET("alpha_pattern", json_object());
	SET("auto_mapping", json_null());
	SET("base_model_name_or_path", info->base_model ? json_string(info->base_model) : json_null());
	SET("bias", json_string("none"));
	SET("corda_config", json_null());
	SET("eva_config", json_null());
	SET("exclude_modules", json_null());
	SET("fan_in_fan_out", json_false());
	SET("inference_mode", json_true());
	SET("init_lora_weights", json_true());
	SET("layer_replication", json_null());
	SET("layers_pattern", json_null());
	SET("layers_to_transform", json_null());
	SET("loftq_config", json_object());
	SET("lora_alpha", number(info->alpha));
	SET("lora_bias", json_false());
	SET("lora_dropout", json_real(info->dropout));
	SET("megatron_config", json_null());
	SET("megatron_core", json_string("megatron.core"));
	SET("modules_to_save", json_null());
	SET("peft_type", json_string("LORA"));
	SET("qalora_group_size", json_integer(16));
	SET("r", json_integer(info->r));
	SET("rank_pattern", json_object());
	SET("revision", json_null());
	SET("target_modules", json_string(regex));
	SET("target_parameters", json_null());
	SET("task_type", json_string("CAUSAL_LM"));
	SET("trainable_token_indices", json_null());
	SET("use_dora", json_false());
	SET("use_qalora", json_false());
	SET("use_rslora", info->use_rslora ? json_true() : json_false());
#undef SET
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int write_config(const char *dir, const sk_adapter_info *info, const char *regex)
{
	char *path = sk_path_join(dir, "adapter_config.json");
	json_t *o = build_config(info, regex);
	/* PEFT writes json.dumps(indent=2, sort_keys=True) */
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) : NULL;
	int rc = (!path || !text) ? sk_fail(_("%s: out of memory"), dir) : sk_write_file_atomic(path, text, strlen(text));
	json_decref(o);
	free(text);
	free(path);
	return rc;
}

static int write_card(const char *dir, const sk_adapter_info *info, const char *regex, const sk_adapter_pair *pairs,
		      size_t n)
{
	const char *base = info->base_model ? info->base_model : "";
	json_t *qb = json_string(base); /* a JSON string is a valid YAML scalar */
	char *base_q = qb ? json_dumps(qb, JSON_ENCODE_ANY) : NULL;
	json_decref(qb);
	int64_t params = 0;
	for (size_t i = 0; i < n; i++)
		params += (int64_t)info->r * ((int64_t)pairs[i].in + pairs[i].out);
	sk_strbuf b = { 0 };
	sk_strbuf_puts(&b, "---\n");
	if (info->base_model) {
		sk_strbuf_puts(&b, "base_model: ");
		sk_strbuf_puts(&b, base_q ? base_q : "\"\"");
		sk_strbuf_puts(&b, "\n");
	}
	sk_strbuf_puts(&b, "library_name: peft\ntags:\n- lora\n- sokhan\n---\n\n# LoRA adapter\n\n");
	sk_strbuf_puts(&b, "A LoRA adapter trained with sokhan (QLoRA fine-tuning in the terminal)");
	if (info->base_model) {
		sk_strbuf_puts(&b, " for `");
		sk_strbuf_puts(&b, base);
		sk_strbuf_puts(&b, "`");
	}
	sk_strbuf_puts(&b, ".\n\n");
	sk_strbuf_printf(&b,
			 "- rank r = %d, lora_alpha = %g, lora_dropout = %g, rsLoRA: %s\n- %zu adapted modules, %lld "
			 "parameters (fp32)\n- target_modules: ",
			 (int)info->r, info->alpha, info->dropout, info->use_rslora ? "yes" : "no", n, (long long)params);
	sk_strbuf_puts(&b, "`");
	sk_strbuf_puts(&b, regex);
	sk_strbuf_puts(&b, "`\n\n## Use\n\n```python\nfrom peft import PeftModel\n"
			   "model = PeftModel.from_pretrained(base_model, \"path/to/this/directory\")\n```\n\n"
			   "or with sokhan: `sokhan chat --model BASE --adapter DIR`.\n");
	free(base_q);
	char *path = sk_path_join(dir, "README.md");
	int rc = (b.oom || !path) ? sk_fail(_("%s: out of memory"), dir) : sk_write_file_atomic(path, b.s, b.len);
	free(path);
	free(b.s);
	return rc;
}

int sk_adapter_write_files(const char *dir, const sk_adapter_info *info, const sk_adapter_pair *pairs, size_t n)
{
	if (check_pairs(dir, info, pairs, n))
		return -1;
	char *regex = sk_adapter_target_regex(pairs, n, info->keys);
	if (!regex)
		return sk_fail_prefix(dir);
	int rc = write_tensors(dir, info, pairs, n);
	if (!rc)
		rc = write_config(dir, info, regex);
	if (!rc)
		rc = write_card(dir, info, regex, pairs, n);
	free(regex);
	return rc;
}

int sk_adapter_write(const char *dir, const sk_adapter_info *info, const sk_adapter_pair *pairs, size_t n)
{
	if (check_pairs(dir, info, pairs, n))
		return -1;
	sk_atomic_dir d;
	if (sk_atomic_dir_begin(&d, dir))
		return -1;
	if (sk_adapter_write_files(d.tmp_path, info, pairs, n)) {
		sk_atomic_dir_abort(&d);
		return -1;
	}
	return sk_atomic_dir_commit(&d);
}
