/* Name tables for the Gemma 3n / Gemma 3 text decoder in both layouts. */
#include "engine/model/tensor_names.h"

#include <stdio.h>
#include <string.h>

#include "engine/i18n.h"

typedef struct {
	sk_tensor_role role;
	const char *hf;   /* after the prefix (and "layers.N." for per-layer roles); %d = index */
	const char *gguf; /* full name, or after "blk.N." */
	int n_only;       /* 1: Gemma 3n only */
} role_name;

static const role_name roles[] = {
	{ SK_T_EMBED, "embed_tokens.weight", "token_embd.weight", 0 },
	{ SK_T_LM_HEAD, "lm_head.weight", "output.weight", 0 },
	{ SK_T_FINAL_NORM, "norm.weight", "output_norm.weight", 0 },
	{ SK_T_PLE_EMBED, "embed_tokens_per_layer.weight", "per_layer_token_embd.weight", 1 },
	{ SK_T_PLE_MODEL_PROJ, "per_layer_model_projection.weight", "per_layer_model_proj.weight", 1 },
	{ SK_T_PLE_PROJ_NORM, "per_layer_projection_norm.weight", "per_layer_proj_norm.weight", 1 },
	{ SK_T_ALTUP_PROJ, "altup_projections.%d.weight", "altup_proj.weight", 1 },
	{ SK_T_ALTUP_UNEMBD, "altup_unembed_projections.%d.weight", "altup_unembd_proj.weight", 1 },
	{ SK_T_ATTN_NORM, "input_layernorm.weight", "attn_norm.weight", 0 },
	{ SK_T_Q, "self_attn.q_proj.weight", "attn_q.weight", 0 },
	{ SK_T_K, "self_attn.k_proj.weight", "attn_k.weight", 0 },
	{ SK_T_V, "self_attn.v_proj.weight", "attn_v.weight", 0 },
	{ SK_T_O, "self_attn.o_proj.weight", "attn_output.weight", 0 },
	{ SK_T_Q_NORM, "self_attn.q_norm.weight", "attn_q_norm.weight", 0 },
	{ SK_T_K_NORM, "self_attn.k_norm.weight", "attn_k_norm.weight", 0 },
	{ SK_T_POST_ATTN_NORM, "post_attention_layernorm.weight", "post_attention_norm.weight", 0 },
	{ SK_T_PRE_FFN_NORM, "pre_feedforward_layernorm.weight", "ffn_norm.weight", 0 },
	{ SK_T_GATE, "mlp.gate_proj.weight", "ffn_gate.weight", 0 },
	{ SK_T_UP, "mlp.up_proj.weight", "ffn_up.weight", 0 },
	{ SK_T_DOWN, "mlp.down_proj.weight", "ffn_down.weight", 0 },
	{ SK_T_POST_FFN_NORM, "post_feedforward_layernorm.weight", "post_ffw_norm.weight", 0 },
	/* HF has no ".weight" here: it is a bare nn.Parameter */
	{ SK_T_ALTUP_CORRECT_SCALE, "altup.correct_output_scale", "altup_correct_scale.weight", 1 },
	{ SK_T_ALTUP_CORRECT_COEF, "altup.correction_coefs.weight", "altup_correct_coef.weight", 1 },
	{ SK_T_ALTUP_PREDICT_COEF, "altup.prediction_coefs.weight", "altup_predict_coef.weight", 1 },
	{ SK_T_ALTUP_ROUTER, "altup.modality_router.weight", "altup_router.weight", 1 },
	{ SK_T_ALTUP_ROUTER_NORM, "altup.router_norm.weight", "altup_router_norm.weight", 1 },
	{ SK_T_LAUREL_L, "laurel.linear_left.weight", "laurel_l.weight", 1 },
	{ SK_T_LAUREL_R, "laurel.linear_right.weight", "laurel_r.weight", 1 },
	{ SK_T_LAUREL_NORM, "laurel.post_laurel_norm.weight", "laurel_post_norm.weight", 1 },
	{ SK_T_PLE_GATE, "per_layer_input_gate.weight", "inp_gate.weight", 1 },
	{ SK_T_PLE_PROJ, "per_layer_projection.weight", "proj.weight", 1 },
	{ SK_T_PLE_POST_NORM, "post_per_layer_input_norm.weight", "post_norm.weight", 1 },
};
#define N_ROLES (sizeof roles / sizeof roles[0])

/* Vision/audio towers (HF multimodal layouts, old and new) and GGUF mmproj names. */
static const char *const skipped_prefixes[] = {
	"model.vision_tower.", "model.audio_tower.", "model.embed_vision.", "model.embed_audio.",
	"model.multi_modal_projector.", "vision_tower.", "audio_tower.", "embed_vision.", "embed_audio.",
	"multi_modal_projector.", "v.", "a.", "mm.",
};

/* HF text-decoder prefixes: multimodal (new), old Gemma 3 multimodal, text-only. */
static const char *const hf_prefixes[] = { "model.language_model.", "language_model.model.", "model." };

static const role_name *find_role(sk_tensor_role r)
{
	for (size_t i = 0; i < N_ROLES; i++)
		if (roles[i].role == r)
			return &roles[i];
	return NULL;
}

int sk_tensor_role_is_per_layer(sk_tensor_role role)
{
	return role >= SK_T_FIRST_LAYER_ROLE && role < SK_T_ROLE_COUNT;
}

int sk_tensor_role_in_arch(sk_tensor_role role, sk_arch arch)
{
	const role_name *r = find_role(role);
	if (!r)
		return 0;
	return arch == SK_ARCH_GEMMA3N || !r->n_only;
}

static int starts(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* "12." → 12 and the rest; strict digits, no leading zeros, bounded. */
static const char *parse_layer(const char *s, int *layer)
{
	int n = 0, digits = 0;
	if (s[0] == '0' && s[1] != '.')
		return NULL;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (*s - '0');
		if (n >= SK_MAX_LAYERS)
			return NULL;
		s++;
		digits++;
	}
	if (!digits || *s != '.')
		return NULL;
	*layer = n;
	return s + 1;
}

/* Matches s against a table pattern whose only possible "%d" is a small index. */
static int match_pattern(const char *s, const char *pat, int *index)
{
	const char *p = strstr(pat, "%d");
	if (!p)
		return strcmp(s, pat) == 0;
	size_t pre = (size_t)(p - pat);
	if (strncmp(s, pat, pre) != 0)
		return 0;
	s += pre;
	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return 0;
	int n = 0;
	while (*s >= '0' && *s <= '9' && n < 1000)
		n = n * 10 + (*s++ - '0');
	if (n >= 1000)
		return 0;
	if (strcmp(s, p + 2) != 0)
		return 0;
	*index = n;
	return 1;
}

static sk_tensor_class classify(const sk_tensor_id *id, const sk_config *cfg)
{
	if (cfg && !sk_tensor_role_in_arch(id->role, cfg->arch))
		return SK_TC_UNKNOWN;
	if (cfg && id->layer >= cfg->num_layers)
		return SK_TC_UNKNOWN;
	switch (id->role) {
	case SK_T_EMBED: return SK_TC_TOKEN_EMBD;
	case SK_T_PLE_EMBED: return SK_TC_PLE;
	case SK_T_LM_HEAD: return SK_TC_LM_HEAD;
	case SK_T_K:
	case SK_T_V:
	case SK_T_K_NORM:
		if (cfg && cfg->arch == SK_ARCH_GEMMA3N && id->layer >= sk_config_first_kv_shared(cfg))
			return SK_TC_UNUSED_KV;
		return SK_TC_COMPUTE;
	default: return SK_TC_COMPUTE;
	}
}

sk_tensor_id sk_tensor_name_parse(const char *name, const sk_config *cfg)
{
	sk_tensor_id id = { SK_T_NONE, -1, -1, SK_TC_UNKNOWN };
	for (size_t i = 0; i < sizeof skipped_prefixes / sizeof skipped_prefixes[0]; i++)
		if (starts(name, skipped_prefixes[i])) {
			id.cls = SK_TC_SKIPPED;
			return id;
		}
	if (strcmp(name, "lm_head.weight") == 0 || strcmp(name, "language_model.lm_head.weight") == 0 ||
	    strcmp(name, "output.weight") == 0) {
		id.role = SK_T_LM_HEAD;
		id.cls = classify(&id, cfg);
		return id;
	}
	const char *rest = NULL;
	for (size_t i = 0; i < sizeof hf_prefixes / sizeof hf_prefixes[0] && !rest; i++)
		if (starts(name, hf_prefixes[i]))
			rest = name + strlen(hf_prefixes[i]);
	int hf = rest != NULL;
	if (!hf)
		rest = name;
	int layer = -1;
	const char *per = NULL;
	if (hf && starts(rest, "layers."))
		per = parse_layer(rest + 7, &layer);
	else if (!hf && starts(rest, "blk."))
		per = parse_layer(rest + 4, &layer);
	for (size_t i = 0; i < N_ROLES; i++) {
		const role_name *r = &roles[i];
		int is_layer = sk_tensor_role_is_per_layer(r->role);
		if (is_layer != (per != NULL) || r->role == SK_T_LM_HEAD)
			continue;
		const char *s = per ? per : rest;
		int index = -1;
		int ok = hf ? match_pattern(s, r->hf, &index) : strcmp(s, r->gguf) == 0;
		if (!ok)
			continue;
		id.role = r->role;
		id.layer = per ? layer : -1;
		id.index = hf ? index : (r->role == SK_T_ALTUP_PROJ || r->role == SK_T_ALTUP_UNEMBD ? 0 : -1);
		id.cls = classify(&id, cfg);
		return id;
	}
	return id;
}

int sk_tensor_name_build(sk_tensor_role role, int layer, int index, sk_tensor_layout layout,
                         const char *hf_prefix, char *buf, size_t cap)
{
	const role_name *r = find_role(role);
	int n;
	if (!r || cap == 0)
		return -1;
	int per = sk_tensor_role_is_per_layer(role);
	if (per && (layer < 0 || layer >= SK_MAX_LAYERS))
		return -1;
	if (layout == SK_LAYOUT_GGUF) {
		n = per ? snprintf(buf, cap, "blk.%d.%s", layer, r->gguf) : snprintf(buf, cap, "%s", r->gguf);
	} else {
		const char *pre = hf_prefix ? hf_prefix : "model.language_model.";
		char tail[96];
		if (strstr(r->hf, "%d"))
			snprintf(tail, sizeof tail, "altup%s_projections.%d.weight",
			         role == SK_T_ALTUP_UNEMBD ? "_unembed" : "", index);
		else
			snprintf(tail, sizeof tail, "%s", r->hf);
		if (role == SK_T_LM_HEAD)
			n = snprintf(buf, cap, "lm_head.weight");
		else if (per)
			n = snprintf(buf, cap, "%slayers.%d.%s", pre, layer, tail);
		else
			n = snprintf(buf, cap, "%s%s", pre, tail);
	}
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int set(int64_t *s, int64_t a, int64_t b, int64_t c)
{
	s[0] = a;
	s[1] = b;
	s[2] = c;
	return c ? 3 : b ? 2 : 1;
}

int sk_tensor_expected_shape(const sk_config *c, sk_tensor_role role, int layer, sk_tensor_layout layout,
                             int64_t shape[4])
{
	int64_t H = c->hidden_size, d = c->head_dim, A = c->altup_num_inputs, P = c->hidden_size_per_layer_input;
	int64_t L = c->num_layers, R = c->laurel_rank;
	int64_t F = layer >= 0 && layer < SK_MAX_LAYERS ? c->intermediate_size[layer] : 0;
	int gguf = layout == SK_LAYOUT_GGUF;
	shape[3] = 0;
	switch (role) {
	/* GGUF vocabularies differ between converters (262144 vs 262400): rows are a wildcard there */
	case SK_T_EMBED:
	case SK_T_LM_HEAD: return set(shape, gguf ? -1 : c->vocab_size, H, 0);
	case SK_T_PLE_EMBED: return set(shape, gguf ? -1 : c->vocab_size_per_layer_input, L * P, 0);
	case SK_T_FINAL_NORM: return set(shape, H, 0, 0);
	case SK_T_PLE_MODEL_PROJ: return set(shape, L * P, H, 0);
	case SK_T_PLE_PROJ_NORM: return set(shape, P, 0, 0);
	case SK_T_ALTUP_PROJ:
	case SK_T_ALTUP_UNEMBD: return gguf ? set(shape, A - 1, H, H) : set(shape, H, H, 0);
	case SK_T_ATTN_NORM:
	case SK_T_POST_ATTN_NORM:
	case SK_T_PRE_FFN_NORM:
	case SK_T_POST_FFN_NORM:
	case SK_T_ALTUP_CORRECT_SCALE:
	case SK_T_ALTUP_ROUTER_NORM:
	case SK_T_LAUREL_NORM:
	case SK_T_PLE_POST_NORM: return set(shape, H, 0, 0);
	case SK_T_Q: return set(shape, c->num_heads * d, H, 0);
	case SK_T_K:
	case SK_T_V: return set(shape, c->num_kv_heads * d, H, 0);
	case SK_T_O: return set(shape, H, c->num_heads * d, 0);
	case SK_T_Q_NORM:
	case SK_T_K_NORM: return set(shape, d, 0, 0);
	case SK_T_GATE:
	case SK_T_UP: return set(shape, F, H, 0);
	case SK_T_DOWN: return set(shape, H, F, 0);
	case SK_T_ALTUP_CORRECT_COEF: return set(shape, A, A, 0);
	case SK_T_ALTUP_PREDICT_COEF: return set(shape, A * A, A, 0);
	case SK_T_ALTUP_ROUTER: return set(shape, A, H, 0);
	case SK_T_LAUREL_L: return set(shape, R, H, 0);
	case SK_T_LAUREL_R: return set(shape, H, R, 0);
	case SK_T_PLE_GATE: return set(shape, P, H, 0);
	case SK_T_PLE_PROJ: return set(shape, H, P, 0);
	default: return 0;
	}
}

const char *sk_tensor_class_name(sk_tensor_class cls)
{
	switch (cls) {
	case SK_TC_COMPUTE: return _("compute");
	case SK_TC_TOKEN_EMBD: return _("token-embedding");
	case SK_TC_PLE: return _("per-layer-embedding");
	case SK_TC_SKIPPED: return _("skipped");
	case SK_TC_UNUSED_KV: return _("unused-consumer-kv");
	case SK_TC_LM_HEAD: return _("tied-lm-head");
	default: return _("unknown");
	}
}
