/* sk_config from GGUF metadata (formats.md §5.7) for architectures
 * "gemma3n" and "gemma3". What llama.cpp hard-codes instead of storing
 * (SWA period, sliding RoPE base, AltUp clip) gets the same defaults here;
 * the vocabulary and LAuReL rank come from tensor shapes. */
#include "engine/model/config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/gguf.h"
#include "engine/i18n.h"

typedef struct {
	const sk_gguf *g;
	const char *arch;
	const char *name;
	char key[128];
} gctx;

static const sk_gguf_kv *find(gctx *x, const char *suffix)
{
	snprintf(x->key, sizeof x->key, "%s.%s", x->arch, suffix);
	return sk_gguf_find(x->g, x->key);
}

/* Optional unsigned key in [lo, hi]; missing keeps *out (required makes it an error). */
static int opt_u32(gctx *x, const char *suffix, uint32_t lo, uint32_t hi, int required, int32_t *out)
{
	uint32_t v;
	if (!find(x, suffix))
		return required ? sk_fail(_("%s: metadata key %s is missing"), x->name, x->key) : 0;
	if (sk_gguf_get_u32(x->g, x->key, &v) != 0 || v < lo || v > hi)
		return sk_fail(_("%s: metadata key %s must be an integer from %u to %u"), x->name, x->key, lo, hi);
	*out = (int32_t)v;
	return 0;
}

static int opt_f32(gctx *x, const char *suffix, double lo, double hi, int required, float *out)
{
	const sk_gguf_kv *kv = find(x, suffix);
	float v;
	if (!kv)
		return required ? sk_fail(_("%s: metadata key %s is missing"), x->name, x->key) : 0;
	if (kv->type == SK_GGUF_FLOAT32) {
		if (sk_gguf_get_f32(x->g, x->key, &v) != 0)
			return -1;
	} else {
		uint32_t u;
		if (sk_gguf_get_u32(x->g, x->key, &u) != 0)
			return sk_fail(_("%s: metadata key %s must be a number"), x->name, x->key);
		v = (float)u;
	}
	if (!isfinite(v) || v < lo || v > hi)
		return sk_fail(_("%s: metadata key %s is out of range"), x->name, x->key);
	*out = v;
	return 0;
}

/* Per-layer key: a scalar or an array of block_count numbers. */
static int per_layer(gctx *x, const char *suffix, sk_config *c, double lo, double hi, double *vals, int *present)
{
	const sk_gguf_kv *kv = find(x, suffix);
	*present = 0;
	if (!kv)
		return 0;
	if (kv->type == SK_GGUF_ARRAY) {
		if (kv->arr_count != (uint64_t)c->num_layers)
			return sk_fail(_("%s: metadata key %s has %llu entries for %d layers"), x->name, x->key,
			               (unsigned long long)kv->arr_count, c->num_layers);
		for (int i = 0; i < c->num_layers; i++) {
			if (sk_gguf_arr_f64(kv, (uint64_t)i, &vals[i]) != 0)
				return sk_fail(_("%s: metadata key %s must be a numeric array"), x->name, x->key);
			if (!(isnan(vals[i]) || (vals[i] >= lo && vals[i] <= hi) || isinf(vals[i])))
				return sk_fail(_("%s: metadata key %s is out of range"), x->name, x->key);
		}
	} else {
		float f;
		if (opt_f32(x, suffix, lo, hi, 0, &f))
			return -1;
		for (int i = 0; i < c->num_layers; i++)
			vals[i] = f;
	}
	*present = 1;
	return 0;
}

static int64_t rows_of(const sk_gguf *g, const char *tensor)
{
	const sk_tensor_view *t = sk_gguf_find_tensor(g, tensor);
	return t && t->ndim >= 1 ? t->shape[0] : -1;
}

int sk_config_from_gguf(const sk_gguf *g, sk_config *c)
{
	const char *arch_s;
	size_t arch_len;
	gctx x = { g, NULL, "GGUF", "" };
	const sk_tensor_view *any = sk_gguf_tensor_count(g) ? sk_gguf_tensor(g, 0) : NULL;
	if (any && any->file)
		x.name = any->file;
	if (sk_gguf_get_str(g, "general.architecture", &arch_s, &arch_len) != 0)
		return sk_fail(_("%s: general.architecture is missing"), x.name);
	sk_arch arch;
	if (arch_len == 7 && memcmp(arch_s, "gemma3n", 7) == 0)
		arch = SK_ARCH_GEMMA3N;
	else if (arch_len == 6 && memcmp(arch_s, "gemma3", 6) == 0)
		arch = SK_ARCH_GEMMA3;
	else
		return sk_fail(_("%s: architecture \"%.*s\" is not supported (expected gemma3n or gemma3)"), x.name,
		               (int)(arch_len > 64 ? 64 : arch_len), arch_s);
	sk_config_defaults(c, arch);
	x.arch = arch == SK_ARCH_GEMMA3N ? "gemma3n" : "gemma3";
	snprintf(c->model_type, sizeof c->model_type, "%s", x.arch);
	/* llama.cpp's converter adds 1 to every Gemma 3 norm weight; Gemma 3n norms are stored as is */
	c->norm_plus_one_stored = arch == SK_ARCH_GEMMA3;
	c->final_logit_softcap = 0.0f; /* only when the key says so */
	c->torch_dtype[0] = '\0';

	if (opt_u32(&x, "block_count", 1, SK_MAX_LAYERS, 1, &c->num_layers) ||
	    opt_u32(&x, "embedding_length", 1, 1u << 20, 1, &c->hidden_size) ||
	    opt_u32(&x, "context_length", 1, 1u << 30, 0, &c->max_position_embeddings) ||
	    opt_u32(&x, "attention.head_count", 1, 4096, 1, &c->num_heads))
		return -1;
	c->num_kv_heads = c->num_heads;
	c->head_dim = c->hidden_size / c->num_heads;
	if (opt_u32(&x, "attention.head_count_kv", 1, 4096, 0, &c->num_kv_heads) ||
	    opt_u32(&x, "attention.key_length", 1, 65536, 0, &c->head_dim) ||
	    opt_u32(&x, "attention.sliding_window", 1, 1u << 30, 0, &c->sliding_window) ||
	    opt_f32(&x, "attention.layer_norm_rms_epsilon", 1e-30, 1.0, 0, &c->rms_norm_eps) ||
	    opt_f32(&x, "rope.freq_base", 1.0, 1e12, 0, &c->rope_theta_global) ||
	    opt_f32(&x, "rope.freq_base_swa", 1.0, 1e12, 0, &c->rope_theta_local) ||
	    opt_f32(&x, "final_logit_softcapping", 0.0, 1e6, 0, &c->final_logit_softcap) ||
	    opt_f32(&x, "attn_logit_softcapping", 0.0, 1e6, 0, &c->attn_logit_softcap))
		return -1;
	if (c->head_dim < 1)
		return sk_fail(_("%s: head dimension is zero"), x.name);
	/* llama.cpp's Gemma 3 scale: 1/sqrt(head_dim), except 27B (62 layers) uses hidden/heads */
	c->query_pre_attn_scalar = (float)c->head_dim;
	if (arch == SK_ARCH_GEMMA3 && c->num_layers == 62)
		c->query_pre_attn_scalar = (float)(c->hidden_size / c->num_heads);

	/* RoPE scaling (Gemma 3 4B+ writes linear x8 for the global layers) */
	const sk_gguf_kv *kv = find(&x, "rope.scaling.type");
	if (kv) {
		const char *s;
		size_t n;
		if (sk_gguf_get_str(g, x.key, &s, &n) != 0)
			return sk_fail(_("%s: %s must be a string"), x.name, x.key);
		if (n == 6 && memcmp(s, "linear", 6) == 0) {
			c->rope_scaling_global = SK_ROPE_LINEAR;
		} else if (!(n == 4 && memcmp(s, "none", 4) == 0)) {
			c->rope_scaling_global = SK_ROPE_OTHER;
			snprintf(c->rope_scaling_name, sizeof c->rope_scaling_name, "%.*s", (int)(n > 20 ? 20 : n), s);
		}
		if (opt_f32(&x, "rope.scaling.factor", 1e-6, 1e6, c->rope_scaling_global == SK_ROPE_LINEAR,
		            &c->rope_factor_global))
			return -1;
	}

	double vals[SK_MAX_LAYERS];
	int present;
	if (per_layer(&x, "feed_forward_length", c, 1, 1 << 24, vals, &present))
		return -1;
	if (!present)
		return sk_fail(_("%s: metadata key %s is missing"), x.name, x.key);
	for (int i = 0; i < c->num_layers; i++) {
		if (!(vals[i] >= 1 && vals[i] <= (1 << 24)))
			return sk_fail(_("%s: metadata key %s is out of range"), x.name, x.key);
		c->intermediate_size[i] = (int32_t)vals[i];
	}

	/* sliding pattern: bool per layer (true = sliding), else the default period */
	for (int i = 0; i < c->num_layers; i++)
		c->sliding[i] = (uint8_t)((i + 1) % (arch == SK_ARCH_GEMMA3N ? 5 : 6) != 0);
	kv = find(&x, "attention.sliding_window_pattern");
	if (kv && kv->type == SK_GGUF_ARRAY) {
		if (per_layer(&x, "attention.sliding_window_pattern", c, 0, 1, vals, &present))
			return -1;
		for (int i = 0; i < c->num_layers; i++)
			c->sliding[i] = vals[i] != 0.0;
	} else if (kv) {
		/* a scalar period (some converters write the Gemma 3 "every Nth layer" form) */
		int32_t period = 0;
		if (opt_u32(&x, "attention.sliding_window_pattern", 1, SK_MAX_LAYERS + 1, 0, &period))
			return -1;
		for (int i = 0; i < c->num_layers; i++)
			c->sliding[i] = (uint8_t)((i + 1) % period != 0);
	}

	/* vocabulary: from the embedding rows, else the token list */
	int64_t rows = rows_of(g, "token_embd.weight");
	if (rows < 0) {
		const sk_gguf_kv *tok = sk_gguf_find(g, "tokenizer.ggml.tokens");
		rows = tok && tok->type == SK_GGUF_ARRAY ? (int64_t)tok->arr_count : -1;
	}
	if (rows < 1 || rows > (1 << 24))
		return sk_fail(_("%s: cannot tell the vocabulary size (no token_embd.weight or token list)"), x.name);
	c->vocab_size = (int32_t)rows;

	uint32_t u;
	if (sk_gguf_find(g, "tokenizer.ggml.bos_token_id") &&
	    sk_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == 0)
		c->bos_token_id = u <= INT32_MAX ? (int32_t)u : -1;
	if (sk_gguf_find(g, "tokenizer.ggml.padding_token_id") &&
	    sk_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &u) == 0)
		c->pad_token_id = u <= INT32_MAX ? (int32_t)u : -1;
	if (sk_gguf_find(g, "tokenizer.ggml.eos_token_id") &&
	    sk_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == 0 && u < (uint32_t)c->vocab_size)
		c->eos_token_ids[0] = (int32_t)u;
	if (sk_gguf_find(g, "tokenizer.ggml.eot_token_id") &&
	    sk_gguf_get_u32(g, "tokenizer.ggml.eot_token_id", &u) == 0 && u < (uint32_t)c->vocab_size &&
	    (int32_t)u != c->eos_token_ids[0])
		c->eos_token_ids[c->n_eos++] = (int32_t)u;
	if (c->bos_token_id >= c->vocab_size)
		c->bos_token_id = -1;
	if (c->pad_token_id >= c->vocab_size)
		c->pad_token_id = -1;
	sk_error_clear();

	if (arch == SK_ARCH_GEMMA3N) {
		if (opt_u32(&x, "altup.active_idx", 0, 63, 0, &c->altup_active_idx) ||
		    opt_u32(&x, "altup.num_inputs", 1, 64, 0, &c->altup_num_inputs) ||
		    opt_u32(&x, "embedding_length_per_layer_input", 1, 1 << 16, 0, &c->hidden_size_per_layer_input))
			return -1;
		float shared = (float)c->num_kv_shared_layers;
		if (opt_f32(&x, "attention.shared_kv_layers", 0, SK_MAX_LAYERS, 0, &shared))
			return -1;
		if (shared != floorf(shared))
			return sk_fail(_("%s: metadata key %s must be a whole number"), x.name, x.key);
		c->num_kv_shared_layers = (int32_t)shared;
		/* activation_sparsity_scale holds z = Phi^-1(p); -inf or 0 means dense */
		if (per_layer(&x, "activation_sparsity_scale", c, -1e3, 1e3, vals, &present))
			return -1;
		if (present) {
			for (int i = 0; i < c->num_layers; i++) {
				double z = vals[i];
				if (isnan(z) || (isinf(z) && z > 0))
					return sk_fail(_("%s: metadata key %s is out of range"), x.name, x.key);
				if (isinf(z) || z == 0.0) {
					c->activation_sparsity[i] = 0.0f;
					c->activation_sparsity_z[i] = 0.0f;
				} else {
					c->activation_sparsity[i] = (float)(0.5 * erfc(-z / sqrt(2.0)));
					c->activation_sparsity_z[i] = (float)z;
				}
			}
		}
		int64_t ple_rows = rows_of(g, "per_layer_token_embd.weight");
		if (ple_rows >= 1 && ple_rows <= (1 << 24))
			c->vocab_size_per_layer_input = (int32_t)ple_rows;
		/* newer converters pad the PLE table to the main vocabulary; the real
		 * table has 262144 rows, which is what the engine indexes with */
		if (c->vocab_size_per_layer_input > 262144 && c->vocab_size_per_layer_input == c->vocab_size)
			c->vocab_size_per_layer_input = 262144;
		int64_t laurel = rows_of(g, "blk.0.laurel_l.weight");
		if (laurel >= 1 && laurel <= (1 << 20))
			c->laurel_rank = (int32_t)laurel;
	} else {
		for (int i = 0; i < c->num_layers; i++) {
			c->activation_sparsity[i] = 0.0f;
			c->activation_sparsity_z[i] = 0.0f;
		}
	}
	return sk_config_validate(c, x.name);
}
