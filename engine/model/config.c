/* sk_config from a Hugging Face config.json, plus the defaults and the
 * checks shared with the GGUF reader.
 *
 * Defaults for missing keys are transformers' (5.x) config-class defaults:
 *   gemma3n / gemma3n_text (Gemma3nTextConfig, = E4B): hidden 2048, 35 layers,
 *     8 heads, 2 KV heads, head_dim 256, intermediate 16384, vocab 262400,
 *     PLE vocab 262144 and width 256, AltUp 4 inputs / active 0 / clip 120 /
 *     correct_scale true, LAuReL 64, 15 KV-shared layers, sparsity 0.95 on the
 *     first 10 layers, full attention every 5th layer, window 512, RoPE 1e6 /
 *     1e4, eps 1e-6, final softcap 30, max positions 32768.
 *   gemma3 / gemma3_text (Gemma3TextConfig): hidden 2304, 26 layers, 8 heads,
 *     4 KV heads, head_dim 256, intermediate 9216, vocab 262208, full
 *     attention every 6th layer, window 4096, RoPE 1e6 / 1e4, eps 1e-6, no
 *     softcaps, query_pre_attn_scalar 256, max positions 131072.
 *   Both: bos 2, eos 1, pad 0, tied embeddings. */
#include "engine/model/config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

#define SK_CONFIG_MAX_BYTES (16u << 20) /* a config.json is a few KB; refuse absurd files */

const char *sk_arch_name(sk_arch a)
{
	switch (a) {
	case SK_ARCH_GEMMA3N: return "gemma3n";
	case SK_ARCH_GEMMA3: return "gemma3";
	default: return "none";
	}
}

/* Phi^-1(p) by bisection on erfc: exact to float precision, no table to get wrong. */
static double inv_normal_cdf(double p)
{
	double lo = -40.0, hi = 40.0;
	for (int i = 0; i < 200; i++) {
		double mid = 0.5 * (lo + hi);
		if (0.5 * erfc(-mid / sqrt(2.0)) < p)
			lo = mid;
		else
			hi = mid;
	}
	return 0.5 * (lo + hi);
}

static void set_sparsity(sk_config *c, int layer, double p)
{
	c->activation_sparsity[layer] = (float)p;
	c->activation_sparsity_z[layer] = p > 0.0 ? (float)inv_normal_cdf(p) : 0.0f;
}

static void default_layer_rules(sk_config *c, int period)
{
	for (int i = 0; i < c->num_layers; i++)
		c->sliding[i] = (uint8_t)((i + 1) % period != 0);
}

static void default_sparsity(sk_config *c)
{
	/* transformers' default pattern is [0.95]*10 + [0.0]*25, i.e. sparse on
	 * the first 10 layers; kept that way for other layer counts. */
	for (int i = 0; i < c->num_layers; i++)
		set_sparsity(c, i, i < 10 ? 0.95 : 0.0);
}

void sk_config_defaults(sk_config *c, sk_arch arch)
{
	memset(c, 0, sizeof *c);
	c->arch = arch;
	c->head_dim = 256;
	c->num_heads = 8;
	c->rope_theta_global = 1000000.0f;
	c->rope_theta_local = 10000.0f;
	c->rope_factor_global = 1.0f;
	c->rope_factor_local = 1.0f;
	c->rms_norm_eps = 1e-6f;
	c->query_pre_attn_scalar = 256.0f;
	c->bos_token_id = 2;
	c->pad_token_id = 0;
	c->eos_token_ids[0] = 1;
	c->n_eos = 1;
	c->tie_word_embeddings = 1;
	if (arch == SK_ARCH_GEMMA3N) {
		snprintf(c->model_type, sizeof c->model_type, "gemma3n_text");
		c->hidden_size = 2048;
		c->num_layers = 35;
		c->num_kv_heads = 2;
		for (int i = 0; i < SK_MAX_LAYERS; i++)
			c->intermediate_size[i] = 16384;
		c->vocab_size = 262400;
		c->vocab_size_per_layer_input = 262144;
		c->hidden_size_per_layer_input = 256;
		c->altup_num_inputs = 4;
		c->altup_active_idx = 0;
		c->altup_coef_clip = 120.0f;
		c->altup_correct_scale = 1;
		c->laurel_rank = 64;
		c->num_kv_shared_layers = 15;
		c->sliding_window = 512;
		c->final_logit_softcap = 30.0f;
		c->max_position_embeddings = 32768;
		default_layer_rules(c, 5);
		default_sparsity(c);
	} else {
		snprintf(c->model_type, sizeof c->model_type, "gemma3_text");
		c->hidden_size = 2304;
		c->num_layers = 26;
		c->num_kv_heads = 4;
		for (int i = 0; i < SK_MAX_LAYERS; i++)
			c->intermediate_size[i] = 9216;
		c->vocab_size = 262208;
		c->sliding_window = 4096;
		c->max_position_embeddings = 131072;
		default_layer_rules(c, 6);
	}
}

int sk_config_first_kv_shared(const sk_config *c)
{
	return c->num_layers - c->num_kv_shared_layers;
}

int sk_config_kv_source_layer(const sk_config *c, int layer)
{
	int first = sk_config_first_kv_shared(c);
	if (layer < first)
		return layer;
	for (int j = first - 1; j >= 0; j--)
		if (c->sliding[j] == c->sliding[layer])
			return j;
	return -1;
}

float sk_config_attn_scale(const sk_config *c)
{
	if (c->arch == SK_ARCH_GEMMA3N)
		return 1.0f;
	return 1.0f / sqrtf(c->query_pre_attn_scalar);
}

int sk_config_is_eos(const sk_config *c, int32_t id)
{
	for (int i = 0; i < c->n_eos; i++)
		if (c->eos_token_ids[i] == id)
			return 1;
	return 0;
}

int sk_config_validate(const sk_config *c, const char *name)
{
	if (c->arch != SK_ARCH_GEMMA3N && c->arch != SK_ARCH_GEMMA3)
		return sk_fail(_("%s: unknown architecture"), name);
	if (c->num_layers < 1 || c->num_layers > SK_MAX_LAYERS)
		return sk_fail(_("%s: %d layers is out of range (1 to %d)"), name, c->num_layers, SK_MAX_LAYERS);
	if (c->num_kv_heads < 1 || c->num_heads < c->num_kv_heads || c->num_heads % c->num_kv_heads != 0)
		return sk_fail(_("%s: %d attention heads are not a multiple of %d key/value heads"), name,
		               c->num_heads, c->num_kv_heads);
	if (c->head_dim % 2 != 0)
		return sk_fail(_("%s: head_dim %d must be even (RoPE rotates pairs)"), name, c->head_dim);
	if (c->sliding_window < 1)
		return sk_fail(_("%s: sliding_window must be positive"), name);
	for (int i = 0; i < c->n_eos; i++)
		if (c->eos_token_ids[i] < 0 || c->eos_token_ids[i] >= c->vocab_size)
			return sk_fail(_("%s: eos_token_id %d is outside the vocabulary of %d"), name,
			               c->eos_token_ids[i], c->vocab_size);
	if (c->bos_token_id >= c->vocab_size || c->pad_token_id >= c->vocab_size)
		return sk_fail(_("%s: bos/pad token id is outside the vocabulary of %d"), name, c->vocab_size);
	if (c->arch == SK_ARCH_GEMMA3N) {
		if (c->altup_num_inputs < 1 || c->altup_active_idx < 0 || c->altup_active_idx >= c->altup_num_inputs)
			return sk_fail(_("%s: altup_active_idx %d is not below altup_num_inputs %d"), name,
			               c->altup_active_idx, c->altup_num_inputs);
		if (c->num_kv_shared_layers < 0 || c->num_kv_shared_layers >= c->num_layers)
			return sk_fail(_("%s: num_kv_shared_layers %d must be below the %d layers"), name,
			               c->num_kv_shared_layers, c->num_layers);
		for (int l = sk_config_first_kv_shared(c); l < c->num_layers; l++)
			if (sk_config_kv_source_layer(c, l) < 0)
				return sk_fail(_("%s: KV-shared layer %d has no earlier %s layer to read K/V from"), name, l,
				               c->sliding[l] ? "sliding" : "full-attention");
		if (c->hidden_size_per_layer_input < 1 || c->vocab_size_per_layer_input < 1)
			return sk_fail(_("%s: per-layer input width and vocabulary must be positive"), name);
	}
	return 0;
}

/* ---- config.json ---- */

typedef struct {
	const char *name;   /* file name for messages */
	const char *prefix; /* "text_config." or "" */
} jctx;

static int bad(const jctx *x, const char *key, const char *what)
{
	return sk_fail("%s: %s%s %s", x->name, x->prefix, key, what);
}

/* Integer-valued number (JSON integer, or a real with an integral value). */
static int json_as_int(const json_t *v, long long *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d == floor(d) && fabs(d) < 9e15) {
			*out = (long long)d;
			return 0;
		}
	}
	return -1;
}

/* Missing or null keeps *out; out-of-range or wrong type is an error. */
static int get_int(const jctx *x, const json_t *o, const char *key, long long lo, long long hi,
                   const char *what, int32_t *out)
{
	const json_t *v = json_object_get(o, key);
	long long n;
	if (!v || json_is_null(v))
		return 0;
	if (json_as_int(v, &n) != 0 || n < lo || n > hi)
		return bad(x, key, what);
	*out = (int32_t)n;
	return 0;
}

static int get_float(const jctx *x, const json_t *o, const char *key, double lo, double hi,
                     const char *what, float *out)
{
	const json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return bad(x, key, what);
	double d = json_number_value(v);
	if (!isfinite(d) || d < lo || d > hi)
		return bad(x, key, what);
	*out = (float)d;
	return 0;
}

/* A softcap: null or 0 means none. */
static int get_softcap(const jctx *x, const json_t *o, const char *key, float *out)
{
	const json_t *v = json_object_get(o, key);
	if (v && json_is_null(v)) {
		*out = 0.0f;
		return 0;
	}
	return get_float(x, o, key, 0.0, 1e6, _("must be null or a non-negative number"), out);
}

static int get_bool(const jctx *x, const json_t *o, const char *key, int *out)
{
	const json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bad(x, key, _("must be true or false"));
	*out = json_is_true(v);
	return 0;
}

/* Token ids: an integer, null (none, -1), or for eos a list. */
static int get_token(const jctx *x, const json_t *o, const char *key, int32_t *out)
{
	const json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (json_is_null(v)) {
		*out = -1;
		return 0;
	}
	return get_int(x, o, key, 0, INT32_MAX, _("must be a non-negative integer or null"), out);
}

static int get_eos(const jctx *x, const json_t *o, sk_config *c)
{
	const json_t *v = json_object_get(o, "eos_token_id");
	long long n;
	if (!v)
		return 0;
	if (json_is_null(v)) {
		c->n_eos = 0;
		return 0;
	}
	if (json_is_array(v)) {
		size_t cnt = json_array_size(v);
		if (cnt < 1 || cnt > SK_MAX_EOS)
			return bad(x, "eos_token_id", _("must be a list of 1 to 8 token ids"));
		for (size_t i = 0; i < cnt; i++) {
			if (json_as_int(json_array_get(v, i), &n) != 0 || n < 0 || n > INT32_MAX)
				return bad(x, "eos_token_id", _("must hold non-negative integers"));
			c->eos_token_ids[i] = (int32_t)n;
		}
		c->n_eos = (int)cnt;
		return 0;
	}
	if (json_as_int(v, &n) != 0 || n < 0 || n > INT32_MAX)
		return bad(x, "eos_token_id", _("must be a non-negative integer or a list of them"));
	c->eos_token_ids[0] = (int32_t)n;
	c->n_eos = 1;
	return 0;
}

static int get_str(const jctx *x, const json_t *o, const char *key, char *buf, size_t cap)
{
	const json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(x, key, _("must be a string"));
	snprintf(buf, cap, "%s", json_string_value(v));
	return 0;
}

/* {"rope_type": "linear", "factor": 8, "rope_theta": ...}; old configs spell rope_type "type". */
static int parse_rope_dict(const jctx *x, const char *key, const json_t *d, float *theta, sk_rope_scaling *kind,
                           float *factor, sk_config *c)
{
	if (!json_is_object(d))
		return bad(x, key, _("must be an object or null"));
	const json_t *t = json_object_get(d, "rope_type");
	if (!t)
		t = json_object_get(d, "type");
	const json_t *th = json_object_get(d, "rope_theta");
	if (th && !json_is_null(th)) {
		if (!json_is_number(th) || !isfinite(json_number_value(th)) || json_number_value(th) <= 1.0 ||
		    json_number_value(th) > 1e12)
			return bad(x, key, _("has a rope_theta that is not a number above 1"));
		*theta = (float)json_number_value(th);
	}
	*kind = SK_ROPE_DEFAULT;
	*factor = 1.0f;
	if (t && !json_is_null(t)) {
		if (!json_is_string(t))
			return bad(x, key, _("has a rope_type that is not a string"));
		const char *s = json_string_value(t);
		if (strcmp(s, "default") == 0) {
			*kind = SK_ROPE_DEFAULT;
		} else if (strcmp(s, "linear") == 0) {
			*kind = SK_ROPE_LINEAR;
		} else {
			*kind = SK_ROPE_OTHER;
			snprintf(c->rope_scaling_name, sizeof c->rope_scaling_name, "%s", s);
		}
	}
	const json_t *f = json_object_get(d, "factor");
	if (f && !json_is_null(f)) {
		if (!json_is_number(f) || !isfinite(json_number_value(f)) || json_number_value(f) <= 0.0 ||
		    json_number_value(f) > 1e6)
			return bad(x, key, _("has a factor that is not a positive number"));
		*factor = (float)json_number_value(f);
	}
	if (*kind == SK_ROPE_LINEAR && !(f && !json_is_null(f)))
		return bad(x, key, _("has rope_type linear without a factor"));
	return 0;
}

static int parse_rope(const jctx *x, const json_t *o, sk_config *c)
{
	int rc = get_float(x, o, "rope_theta", 1.0, 1e12, _("must be a number above 1"), &c->rope_theta_global);
	rc |= get_float(x, o, "rope_local_base_freq", 1.0, 1e12, _("must be a number above 1"), &c->rope_theta_local);
	if (rc)
		return -1;
	const json_t *rs = json_object_get(o, "rope_scaling");
	if (rs && !json_is_null(rs)) {
		/* old spelling: scaling applies to the global (full-attention) layers only */
		float theta = c->rope_theta_global;
		if (parse_rope_dict(x, "rope_scaling", rs, &theta, &c->rope_scaling_global, &c->rope_factor_global, c))
			return -1;
	}
	const json_t *rp = json_object_get(o, "rope_parameters");
	if (!rp || json_is_null(rp))
		return 0;
	if (!json_is_object(rp))
		return bad(x, "rope_parameters", _("must be an object"));
	const json_t *full = json_object_get(rp, "full_attention");
	const json_t *slide = json_object_get(rp, "sliding_attention");
	if (full || slide) {
		if (full && parse_rope_dict(x, "rope_parameters.full_attention", full, &c->rope_theta_global,
		                            &c->rope_scaling_global, &c->rope_factor_global, c))
			return -1;
		if (slide && parse_rope_dict(x, "rope_parameters.sliding_attention", slide, &c->rope_theta_local,
		                             &c->rope_scaling_local, &c->rope_factor_local, c))
			return -1;
		return 0;
	}
	/* flat single dict: the global layers' parameters; local keeps rope_local_base_freq */
	return parse_rope_dict(x, "rope_parameters", rp, &c->rope_theta_global, &c->rope_scaling_global,
	                       &c->rope_factor_global, c);
}

static int parse_text(const jctx *x, const json_t *o, sk_config *c)
{
	const int32_t BIG = 1 << 24;
	const char *pos = _("must be a positive integer");
	int32_t old_layers = c->num_layers;
	if (get_int(x, o, "num_hidden_layers", 1, SK_MAX_LAYERS, _("must be a positive integer of at most 256"),
	            &c->num_layers))
		return -1;
	if (c->num_layers != old_layers) {
		/* the per-layer defaults follow the layer count */
		default_layer_rules(c, c->arch == SK_ARCH_GEMMA3N ? 5 : 6);
		if (c->arch == SK_ARCH_GEMMA3N)
			default_sparsity(c);
	}
	if (get_int(x, o, "hidden_size", 1, 1 << 20, pos, &c->hidden_size) ||
	    get_int(x, o, "num_attention_heads", 1, 4096, pos, &c->num_heads) ||
	    get_int(x, o, "num_key_value_heads", 1, 4096, pos, &c->num_kv_heads) ||
	    get_int(x, o, "head_dim", 1, 65536, pos, &c->head_dim) ||
	    get_int(x, o, "vocab_size", 1, BIG, pos, &c->vocab_size) ||
	    get_int(x, o, "sliding_window", 1, 1 << 30, pos, &c->sliding_window) ||
	    get_int(x, o, "max_position_embeddings", 1, 1 << 30, pos, &c->max_position_embeddings))
		return -1;
	if (get_float(x, o, "rms_norm_eps", 1e-30, 1.0, _("must be a number in (0, 1]"), &c->rms_norm_eps) ||
	    get_softcap(x, o, "final_logit_softcapping", &c->final_logit_softcap) ||
	    get_softcap(x, o, "attn_logit_softcapping", &c->attn_logit_softcap) ||
	    get_float(x, o, "query_pre_attn_scalar", 1e-6, 1e9, _("must be a positive number"),
	              &c->query_pre_attn_scalar) ||
	    get_bool(x, o, "tie_word_embeddings", &c->tie_word_embeddings) ||
	    get_token(x, o, "bos_token_id", &c->bos_token_id) || get_token(x, o, "pad_token_id", &c->pad_token_id) ||
	    get_eos(x, o, c) || parse_rope(x, o, c))
		return -1;
	if (get_str(x, o, "torch_dtype", c->torch_dtype, sizeof c->torch_dtype) ||
	    get_str(x, o, "dtype", c->torch_dtype, sizeof c->torch_dtype))
		return -1;

	const json_t *v = json_object_get(o, "hidden_activation");
	if (v && !json_is_null(v) &&
	    (!json_is_string(v) || (strcmp(json_string_value(v), "gelu_pytorch_tanh") != 0 &&
	                            strcmp(json_string_value(v), "gelu_tanh") != 0)))
		return bad(x, "hidden_activation", _("is not gelu_pytorch_tanh (the only activation supported)"));
	v = json_object_get(o, "attention_bias");
	if (v && json_is_true(v))
		return bad(x, "attention_bias", _("is true; attention biases are not supported"));

	/* intermediate_size: scalar or per-layer list (MatFormer) */
	v = json_object_get(o, "intermediate_size");
	if (v && json_is_array(v)) {
		if ((long long)json_array_size(v) != c->num_layers)
			return bad(x, "intermediate_size", _("must list one size per layer"));
		for (int i = 0; i < c->num_layers; i++) {
			long long n;
			if (json_as_int(json_array_get(v, (size_t)i), &n) != 0 || n < 1 || n > BIG)
				return bad(x, "intermediate_size", _("must hold positive integers"));
			c->intermediate_size[i] = (int32_t)n;
		}
	} else if (v && !json_is_null(v)) {
		int32_t n = 0;
		if (get_int(x, o, "intermediate_size", 1, BIG, _("must be a positive integer or a list of them"), &n))
			return -1;
		for (int i = 0; i < SK_MAX_LAYERS; i++)
			c->intermediate_size[i] = n;
	}

	/* sliding pattern: an explicit list wins over the period */
	int32_t period = 0;
	if (get_int(x, o, "sliding_window_pattern", 1, SK_MAX_LAYERS + 1, pos, &period) ||
	    get_int(x, o, "_sliding_window_pattern", 1, SK_MAX_LAYERS + 1, pos, &period))
		return -1;
	if (period > 0)
		default_layer_rules(c, period);
	v = json_object_get(o, "layer_types");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v) || (long long)json_array_size(v) != c->num_layers)
			return bad(x, "layer_types", _("must list one attention type per layer"));
		for (int i = 0; i < c->num_layers; i++) {
			const char *s = json_string_value(json_array_get(v, (size_t)i));
			if (s && strcmp(s, "sliding_attention") == 0)
				c->sliding[i] = 1;
			else if (s && strcmp(s, "full_attention") == 0)
				c->sliding[i] = 0;
			else
				return bad(x, "layer_types", _("must hold \"sliding_attention\" or \"full_attention\""));
		}
	}

	if (c->arch != SK_ARCH_GEMMA3N)
		return 0;
	if (get_int(x, o, "vocab_size_per_layer_input", 1, BIG, pos, &c->vocab_size_per_layer_input) ||
	    get_int(x, o, "hidden_size_per_layer_input", 1, 1 << 16, pos, &c->hidden_size_per_layer_input) ||
	    get_int(x, o, "altup_num_inputs", 1, 64, _("must be an integer from 1 to 64"), &c->altup_num_inputs) ||
	    get_int(x, o, "altup_active_idx", 0, 63, _("must be a non-negative integer"), &c->altup_active_idx) ||
	    get_float(x, o, "altup_coef_clip", 0.0, 1e30, _("must be null or a non-negative number"),
	              &c->altup_coef_clip) ||
	    get_bool(x, o, "altup_correct_scale", &c->altup_correct_scale) ||
	    get_int(x, o, "laurel_rank", 1, 1 << 20, pos, &c->laurel_rank) ||
	    get_int(x, o, "num_kv_shared_layers", 0, SK_MAX_LAYERS, _("must be a non-negative integer"),
	            &c->num_kv_shared_layers))
		return -1;
	v = json_object_get(o, "altup_coef_clip");
	if (v && json_is_null(v))
		c->altup_coef_clip = 0.0f;
	v = json_object_get(o, "activation_sparsity_pattern");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v) || (long long)json_array_size(v) != c->num_layers)
			return bad(x, "activation_sparsity_pattern", _("must list one sparsity per layer"));
		for (int i = 0; i < c->num_layers; i++) {
			const json_t *e = json_array_get(v, (size_t)i);
			double p = json_is_number(e) ? json_number_value(e) : -1.0;
			if (!(p >= 0.0 && p < 1.0))
				return bad(x, "activation_sparsity_pattern", _("must hold numbers in [0, 1)"));
			set_sparsity(c, i, p);
		}
	}
	return 0;
}

static int parse_root(const json_t *root, const char *name, sk_config *c)
{
	jctx top = { name, "" };
	if (!json_is_object(root))
		return sk_fail(_("%s: not a JSON object"), name);
	const json_t *mt = json_object_get(root, "model_type");
	if (!mt)
		return sk_fail(_("%s: model_type is missing"), name);
	if (!json_is_string(mt))
		return bad(&top, "model_type", _("must be a string"));
	const char *t = json_string_value(mt);
	int nested;
	sk_arch arch;
	if (strcmp(t, "gemma3n") == 0) {
		arch = SK_ARCH_GEMMA3N;
		nested = 1;
	} else if (strcmp(t, "gemma3n_text") == 0) {
		arch = SK_ARCH_GEMMA3N;
		nested = 0;
	} else if (strcmp(t, "gemma3") == 0) {
		arch = SK_ARCH_GEMMA3;
		nested = 1;
	} else if (strcmp(t, "gemma3_text") == 0) {
		arch = SK_ARCH_GEMMA3;
		nested = 0;
	} else {
		return sk_fail(_("%s: model_type \"%s\" is not supported (expected gemma3n, gemma3n_text, gemma3 or "
		                 "gemma3_text)"),
		               name, t);
	}
	sk_config_defaults(c, arch);
	c->multimodal = nested;
	const json_t *text = root;
	jctx tx = top;
	if (nested) {
		text = json_object_get(root, "text_config");
		if (!text)
			return sk_fail(_("%s: text_config is missing (model_type \"%s\" nests the text model there)"),
			               name, t);
		if (!json_is_object(text))
			return bad(&top, "text_config", _("must be an object"));
		tx.prefix = "text_config.";
		const json_t *tt = json_object_get(text, "model_type");
		const char *want = arch == SK_ARCH_GEMMA3N ? "gemma3n_text" : "gemma3_text";
		if (tt && !json_is_null(tt) && (!json_is_string(tt) || strcmp(json_string_value(tt), want) != 0))
			return bad(&tx, "model_type", arch == SK_ARCH_GEMMA3N ? _("must be \"gemma3n_text\"")
			                                                      : _("must be \"gemma3_text\""));
	}
	if (parse_text(&tx, text, c))
		return -1;
	if (nested) {
		/* multimodal files put the generation ids and dtype at the top */
		if (get_eos(&top, root, c) || get_token(&top, root, "bos_token_id", &c->bos_token_id) ||
		    get_token(&top, root, "pad_token_id", &c->pad_token_id) ||
		    get_bool(&top, root, "tie_word_embeddings", &c->tie_word_embeddings) ||
		    get_str(&top, root, "torch_dtype", c->torch_dtype, sizeof c->torch_dtype) ||
		    get_str(&top, root, "dtype", c->torch_dtype, sizeof c->torch_dtype))
			return -1;
	}
	return sk_config_validate(c, name);
}

int sk_config_from_json_mem(const char *json, size_t len, const char *name, sk_config *out)
{
	json_error_t err;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		return sk_fail(_("%s: not valid JSON (line %d: %s)"), name, err.line, err.text);
	int rc = parse_root(root, name, out);
	json_decref(root);
	return rc;
}

int sk_config_from_json(const char *path, sk_config *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return sk_fail("%s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			if (cap >= SK_CONFIG_MAX_BYTES) {
				fclose(f);
				free(buf);
				return sk_fail(_("%s: larger than 16 MiB, not a config.json"), path);
			}
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				fclose(f);
				free(buf);
				return sk_fail(_("%s: out of memory"), path);
			}
			buf = nb;
			cap = ncap;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		free(buf);
		return sk_fail(_("%s: read error"), path);
	}
	int rc = sk_config_from_json_mem(buf, len, path, out);
	free(buf);
	return rc;
}
