/* Loading a PEFT LoRA adapter directory (formats.md §3) for inference:
 * adapter_config.json + adapter_model.safetensors, every tensor checked
 * against the model config and copied to fp32.
 *
 * Choices (documented in lora.h too):
 * - keys: "base_model.model." + module + ".lora_A.weight" (PEFT's saved
 *   form), also without the prefix and with ".lora_A.default.weight";
 *   module = model.layers.N..., model.language_model.layers.N... or the
 *   older language_model.model.layers.N...;
 * - vision/audio tower modules are ignored (the text decoder never runs
 *   them; PEFT's list form of target_modules does wrap the audio tower's
 *   q/k/v_proj), counted in sk_lora_ignored_count;
 * - k_proj/v_proj of KV-shared layers are checked, then ignored and counted:
 *   those layers read an earlier layer's K/V (recent transformers do not
 *   even create the projections, older ones skip them when a cache is used);
 * - anything else that is not a lora_A/lora_B weight of one of the seven
 *   decoder projections, or whose module target_modules does not select,
 *   is an error naming the tensor (PEFT would drop it with a warning, but a
 *   trained weight silently lost is worse than a refusal). */
#include "engine/model/lora.h"
#include "engine/model/lora_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/format/dtype.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/format/safetensors.h"

#define CONFIG_MAX_BYTES (1u << 20)


static const char *const module_names[SK_LORA_NMOD] = {
	"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
};

const char *sk_lora_module_name(sk_lora_module m)
{
	return (unsigned)m < SK_LORA_NMOD ? module_names[m] : "?";
}

/* Decoder layer prefixes, after "base_model.model." is removed. */
static const char *const layer_prefixes[] = {
	"model.language_model.layers.", /* Gemma3n/Gemma3 ForConditionalGeneration, transformers >= 4.52 */
	"model.layers.",                /* *ForCausalLM (text-only) */
	"language_model.model.layers.", /* older ForConditionalGeneration layout */
};

/* Modules of the other towers: adapters there are ignored. */
static const char *const tower_prefixes[] = {
	"model.vision_tower.", "model.audio_tower.", "model.embed_vision.", "model.embed_audio.",
	"model.multi_modal_projector.", "vision_tower.", "audio_tower.", "multi_modal_projector.",
	"embed_vision.", "embed_audio.",
};

static int starts_with(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

typedef enum { KEY_BAD, KEY_TOWER, KEY_DECODER } key_kind;

typedef struct {
	key_kind kind;
	int is_b;
	int layer;
	sk_lora_module mod;
	char module[256]; /* module name as PEFT matches it */
	const char *why;  /* for KEY_BAD */
} parsed_key;

/* Splits a tensor key into module, factor, layer and projection. */
static void parse_key(const char *key, parsed_key *pk)
{
	memset(pk, 0, sizeof *pk);
	pk->kind = KEY_BAD;
	const char *s = key;
	if (starts_with(s, "base_model.model."))
		s += strlen("base_model.model.");
	static const char *const suffixes[4] = { ".lora_A.weight", ".lora_B.weight", ".lora_A.default.weight",
						 ".lora_B.default.weight" };
	size_t len = strlen(s), mlen = 0;
	int found = 0;
	for (int i = 0; i < 4; i++) {
		size_t k = strlen(suffixes[i]);
		if (len > k && strcmp(s + len - k, suffixes[i]) == 0) {
			pk->is_b = i % 2;
			mlen = len - k;
			found = 1;
			break;
		}
	}
	if (!found) {
		pk->why = N_("not a LoRA factor (only lora_A.weight / lora_B.weight tensors are supported)");
		return;
	}
	if (mlen >= sizeof pk->module) {
		pk->why = N_("name too long");
		return;
	}
	memcpy(pk->module, s, mlen);
	pk->module[mlen] = '\0';
	for (size_t i = 0; i < sizeof tower_prefixes / sizeof *tower_prefixes; i++)
		if (starts_with(pk->module, tower_prefixes[i])) {
			pk->kind = KEY_TOWER;
			return;
		}
	pk->why = N_("unknown module (expected a decoder layer's self_attn.{q,k,v,o}_proj or mlp.{gate,up,down}_proj)");
	const char *p = NULL;
	for (size_t i = 0; i < sizeof layer_prefixes / sizeof *layer_prefixes && !p; i++)
		if (starts_with(pk->module, layer_prefixes[i]))
			p = pk->module + strlen(layer_prefixes[i]);
	if (!p || *p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
		return;
	long layer = 0;
	while (*p >= '0' && *p <= '9') {
		layer = layer * 10 + (*p++ - '0');
		if (layer > 1000000)
			return;
	}
	if (*p++ != '.')
		return;
	for (int m = 0; m < SK_LORA_NMOD; m++) {
		const char *group = m <= SK_LORA_O ? "self_attn." : "mlp.";
		if (starts_with(p, group) && strcmp(p + strlen(group), module_names[m]) == 0) {
			pk->kind = KEY_DECODER;
			pk->layer = (int)layer;
			pk->mod = (sk_lora_module)m;
			return;
		}
	}
}

void sk_lora_module_dims(const sk_config *c, int layer, sk_lora_module m, int64_t *in, int64_t *out)
{
	int64_t h = c->hidden_size, q = (int64_t)c->num_heads * c->head_dim,
		kv = (int64_t)c->num_kv_heads * c->head_dim, ff = c->intermediate_size[layer];
	switch (m) {
	case SK_LORA_Q: *in = h; *out = q; break;
	case SK_LORA_K:
	case SK_LORA_V: *in = h; *out = kv; break;
	case SK_LORA_O: *in = q; *out = h; break;
	case SK_LORA_GATE:
	case SK_LORA_UP: *in = h; *out = ff; break;
	default: *in = ff; *out = h; break;
	}
}

static float *to_f32(const sk_tensor_view *t)
{
	int64_t n = sk_tensor_view_numel(t);
	float *o = malloc((size_t)n * sizeof(float) + sizeof(float));
	if (!o)
		return NULL;
	const unsigned char *d = t->data;
	for (int64_t i = 0; i < n; i++) {
		if (t->dtype == SK_DT_F32) {
			memcpy(&o[i], d + 4 * i, 4);
		} else {
			uint16_t h;
			memcpy(&h, d + 2 * i, 2);
			o[i] = t->dtype == SK_DT_BF16 ? sk_bf16_to_f32(h) : sk_f16_to_f32(h);
		}
	}
	return o;
}

void sk_lora_free(sk_lora *l)
{
	if (!l)
		return;
	for (int64_t i = 0; l->pairs && i < (int64_t)l->num_layers * SK_LORA_NMOD; i++) {
		free(l->pairs[i].A);
		free(l->pairs[i].B);
		if (l->names) {
			free(l->names[2 * i]);
			free(l->names[2 * i + 1]);
		}
		if (l->grad_a)
			free(l->grad_a[i]);
		if (l->grad_b)
			free(l->grad_b[i]);
	}
	free(l->pairs);
	free(l->names);
	free(l->grad_a);
	free(l->grad_b);
	free(l);
}

/* Checks one (A, B) pair and copies it into l. */
static int take_pair(sk_lora *l, const sk_config *c, const sk_lora_config *lc, const char *path, int layer,
		     sk_lora_module m, const sk_tensor_view *A, const sk_tensor_view *B)
{
	int64_t in, out;
	sk_lora_module_dims(c, layer, m, &in, &out);
	const char *mn = module_names[m];
	if (A->shape[0] != lc->r || B->shape[1] != lc->r) {
		const sk_tensor_view *t = A->shape[0] != lc->r ? A : B;
		return sk_fail(_("%s: %s: shape [%lld, %lld] has rank %lld, but adapter_config.json has r = %d"), path,
			       t->name, (long long)t->shape[0], (long long)t->shape[1],
			       (long long)(t == A ? A->shape[0] : B->shape[1]), lc->r);
	}
	if (A->shape[1] != in)
		return sk_fail(_("%s: %s: shape [%lld, %lld] does not fit %s of layer %d (in %lld)"), path, A->name,
			       (long long)A->shape[0], (long long)A->shape[1], mn, layer, (long long)in);
	if (B->shape[0] != out)
		return sk_fail(_("%s: %s: shape [%lld, %lld] does not fit %s of layer %d (out %lld)"), path, B->name,
			       (long long)B->shape[0], (long long)B->shape[1], mn, layer, (long long)out);
	if ((m == SK_LORA_K || m == SK_LORA_V) && layer >= sk_config_first_kv_shared(c)) {
		l->ignored += 2;
		return 0;
	}
	sk_lora_pair *p = &l->pairs[(size_t)layer * SK_LORA_NMOD + m];
	p->A = to_f32(A);
	p->B = to_f32(B);
	/* the names are kept so gradients can be written under the same keys */
	size_t slot = (size_t)layer * SK_LORA_NMOD + m;
	l->names[2 * slot] = strdup(A->name);
	l->names[2 * slot + 1] = strdup(B->name);
	if (!p->A || !p->B || !l->names[2 * slot] || !l->names[2 * slot + 1])
		return sk_fail(_("%s: out of memory"), path);
	p->r = lc->r;
	p->in = (int32_t)in;
	p->out = (int32_t)out;
	p->scale = lc->scale;
	l->npairs++;
	return 0;
}

sk_lora *sk_lora_load(const char *dir, const sk_config *cfg)
{
	sk_lora *l = NULL;
	sk_st_file *st = NULL;
	const sk_tensor_view **slots = NULL;
	char *json = NULL;
	sk_lora_config lc = { 0 };
	char *cpath = sk_path_join(dir, "adapter_config.json"), *mpath = sk_path_join(dir, "adapter_model.safetensors");
	if (!cpath || !mpath) {
		sk_fail(_("%s: out of memory"), dir);
		goto fail;
	}
	if (cfg->num_layers < 1 || cfg->num_layers > SK_MAX_LAYERS) {
		sk_fail(_("%s: the model config has no decoder layers"), dir);
		goto fail;
	}
	size_t jlen;
	if (sk_read_file(cpath, CONFIG_MAX_BYTES, &json, &jlen) ||
	    sk_lora_config_parse(json, jlen, cpath, &lc))
		goto fail;
	st = sk_st_open(mpath);
	if (!st)
		goto fail;
	l = calloc(1, sizeof *l);
	size_t nslots = (size_t)cfg->num_layers * SK_LORA_NMOD * 2;
	slots = calloc(nslots, sizeof *slots);
	if (!l || !slots || !(l->pairs = calloc(nslots / 2, sizeof *l->pairs)) ||
	    !(l->names = calloc(nslots, sizeof *l->names))) {
		sk_fail(_("%s: out of memory"), dir);
		goto fail;
	}
	l->num_layers = cfg->num_layers;
	l->rank = lc.r;

	/* pass 1: sort every tensor into its (layer, module, A|B) slot */
	for (size_t i = 0; i < sk_st_count(st); i++) {
		const sk_tensor_view *t = sk_st_tensor(st, i);
		parsed_key pk;
		parse_key(t->name, &pk);
		if (pk.kind == KEY_BAD) {
			sk_fail("%s: %s: %s", mpath, t->name, _(pk.why));
			goto fail;
		}
		if (!sk_lora_config_targets(&lc, pk.module)) {
			sk_fail(_("%s: %s: module %s is not selected by target_modules of adapter_config.json"), mpath,
				t->name, pk.module);
			goto fail;
		}
		if (t->dtype != SK_DT_F32 && t->dtype != SK_DT_BF16 && t->dtype != SK_DT_F16) {
			sk_fail(_("%s: %s: dtype %s (LoRA factors must be F32, BF16 or F16)"), mpath, t->name,
				sk_dtype_name(t->dtype));
			goto fail;
		}
		if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
			sk_fail(_("%s: %s: a LoRA factor must be a 2-D matrix"), mpath, t->name);
			goto fail;
		}
		if (pk.kind == KEY_TOWER) {
			l->ignored++;
			continue;
		}
		if (pk.layer >= cfg->num_layers) {
			sk_fail(_("%s: %s: layer %d out of range (the model has %d layers)"), mpath, t->name, pk.layer,
				cfg->num_layers);
			goto fail;
		}
		size_t k = ((size_t)pk.layer * SK_LORA_NMOD + pk.mod) * 2 + (size_t)pk.is_b;
		if (slots[k]) {
			sk_fail(_("%s: %s: the same factor is also stored as %s"), mpath, t->name, slots[k]->name);
			goto fail;
		}
		slots[k] = t;
	}
	/* pass 2: pairs complete, shapes right, then copied */
	for (int layer = 0; layer < cfg->num_layers; layer++)
		for (int m = 0; m < SK_LORA_NMOD; m++) {
			const sk_tensor_view *A = slots[((size_t)layer * SK_LORA_NMOD + m) * 2];
			const sk_tensor_view *B = slots[((size_t)layer * SK_LORA_NMOD + m) * 2 + 1];
			if (!A && !B)
				continue;
			if (!A || !B) {
				sk_fail(_("%s: %s has no matching %s"), mpath, (A ? A : B)->name,
					A ? "lora_B.weight" : "lora_A.weight");
				goto fail;
			}
			if (take_pair(l, cfg, &lc, mpath, layer, (sk_lora_module)m, A, B))
				goto fail;
		}
	if (l->npairs == 0 && l->ignored == 0) {
		sk_fail(_("%s: no LoRA tensors"), mpath);
		goto fail;
	}
	goto done;
fail:
	sk_lora_free(l);
	l = NULL;
done:
	free(slots);
	sk_st_close(st);
	sk_lora_config_free(&lc);
	free(json);
	free(cpath);
	free(mpath);
	return l;
}

const sk_lora_pair *sk_lora_get(const sk_lora *l, int layer, sk_lora_module m)
{
	if (!l || layer < 0 || layer >= l->num_layers || (unsigned)m >= SK_LORA_NMOD)
		return NULL;
	const sk_lora_pair *p = &l->pairs[(size_t)layer * SK_LORA_NMOD + m];
	return p->A ? p : NULL;
}

int32_t sk_lora_rank(const sk_lora *l)
{
	return l ? l->rank : 0;
}

int32_t sk_lora_ignored_count(const sk_lora *l)
{
	return l ? l->ignored : 0;
}

int32_t sk_lora_pair_count(const sk_lora *l)
{
	return l ? l->npairs : 0;
}
