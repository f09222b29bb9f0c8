/* Model configuration of the Gemma 3n and Gemma 3 text decoders, read from a
 * Hugging Face config.json (config.c) or from GGUF metadata (config_gguf.c).
 * One struct for both architectures; fields that one of them lacks hold the
 * neutral value (0 / dense / no softcap). */
#ifndef SK_CONFIG_H
#define SK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct sk_gguf;

/* Layers are kept in fixed arrays; a config with more is rejected. */
#define SK_MAX_LAYERS 256
#define SK_MAX_EOS 8

typedef enum { SK_ARCH_NONE = 0, SK_ARCH_GEMMA3N, SK_ARCH_GEMMA3 } sk_arch;

typedef enum {
	SK_ROPE_DEFAULT = 0, /* plain RoPE */
	SK_ROPE_LINEAR,      /* positions divided by factor (Gemma 3 4B/12B/27B, global layers) */
	SK_ROPE_OTHER        /* a type this engine does not implement (name kept in rope_scaling_name) */
} sk_rope_scaling;

typedef struct {
	sk_arch arch;
	char model_type[32];      /* "gemma3n_text", "gemma3_text", or the GGUF architecture */
	int multimodal;           /* config had a nested text_config (vision/audio towers exist) */
	int inferred;             /* built from tensor shapes, not from a config file */

	int32_t hidden_size;
	int32_t num_layers;
	int32_t num_heads;
	int32_t num_kv_heads;
	int32_t head_dim;
	int32_t intermediate_size[SK_MAX_LAYERS];
	int32_t vocab_size;                  /* rows of embed_tokens and the tied LM head */
	int32_t vocab_size_per_layer_input;  /* PLE rows (Gemma 3n); 0 for Gemma 3 */
	int32_t hidden_size_per_layer_input; /* PLE width P (Gemma 3n); 0 for Gemma 3 */

	/* Gemma 3n only */
	int32_t altup_num_inputs;
	int32_t altup_active_idx;
	float altup_coef_clip;     /* 0 = no clamp */
	int altup_correct_scale;
	int32_t laurel_rank;
	int32_t num_kv_shared_layers; /* the last N layers reuse K/V of earlier layers */
	/* Per layer: target sparsity p (0 = dense) and the std multiplier
	 * z = Phi^-1(p) that the top-k gating uses (0 when dense). */
	float activation_sparsity[SK_MAX_LAYERS];
	float activation_sparsity_z[SK_MAX_LAYERS];

	uint8_t sliding[SK_MAX_LAYERS]; /* 1 = sliding-window (local) attention layer */
	int32_t sliding_window;

	float rope_theta_global;
	float rope_theta_local;
	sk_rope_scaling rope_scaling_global;
	float rope_factor_global;  /* 1 when no scaling */
	sk_rope_scaling rope_scaling_local;
	float rope_factor_local;
	char rope_scaling_name[24]; /* rope_type as written, when SK_ROPE_OTHER */

	float rms_norm_eps;
	float final_logit_softcap;   /* 0 = none */
	float attn_logit_softcap;    /* 0 = none */
	float query_pre_attn_scalar; /* Gemma 3: scale = scalar^-1/2; Gemma 3n ignores it (scale 1) */
	int32_t max_position_embeddings;

	int32_t bos_token_id;  /* -1 when not given */
	int32_t pad_token_id;  /* -1 when not given */
	int32_t eos_token_ids[SK_MAX_EOS];
	int n_eos;

	int tie_word_embeddings;
	char torch_dtype[16];      /* "bfloat16", "" when not given */

	/* GGUF gemma3 stores every norm weight as 1 + w (llama.cpp's converter);
	 * the engine must not add 1 again. Always 0 for config.json. */
	int norm_plus_one_stored;
} sk_config;

/* Parses a Hugging Face config.json (model_type "gemma3n", "gemma3n_text",
 * "gemma3", "gemma3_text"). Missing keys take transformers' defaults for the
 * model type (Gemma3nTextConfig = E4B, Gemma3TextConfig = the 4B-sized
 * defaults); see config.c. Errors: "PATH: key ..." and -1. */
int sk_config_from_json(const char *path, sk_config *out);
/* Same from memory; name is used in error messages. */
int sk_config_from_json_mem(const char *json, size_t len, const char *name, sk_config *out);

/* From GGUF metadata of architecture "gemma3n" or "gemma3" (formats.md §5.7);
 * tensor shapes fill what the metadata lacks (vocabulary, LAuReL rank). */
int sk_config_from_gguf(const struct sk_gguf *g, sk_config *out);

/* The text configuration of a released Gemma 3n shape: "e4b" or "e2b". */
int sk_config_preset(const char *name, sk_config *out);

/* Resets to the transformers defaults of the architecture (E4B for Gemma 3n). */
void sk_config_defaults(sk_config *c, sk_arch arch);
/* Cross-field checks shared by every reader (sizes positive, heads divisible,
 * active index in range, ...); name prefixes the error. */
int sk_config_validate(const sk_config *c, const char *name);

const char *sk_arch_name(sk_arch a);
/* Index of the first KV-shared layer (num_layers when none). */
int sk_config_first_kv_shared(const sk_config *c);
/* For a KV-shared layer, the earlier layer whose K/V it reads (the last
 * non-shared layer of the same attention type); the layer itself otherwise;
 * -1 when no such layer exists. */
int sk_config_kv_source_layer(const sk_config *c, int layer);
/* Attention score scale: 1 for Gemma 3n, query_pre_attn_scalar^-1/2 for Gemma 3. */
float sk_config_attn_scale(const sk_config *c);
/* Checkpointing as sk_config_train_flops counts it: none; every product of
 * a layer computed again; only those whose outputs were not kept (q, k, v,
 * gate, up: the default, sk_train_opts.recompute_all 0). */
enum { SK_TRAIN_CKPT_NONE = 0, SK_TRAIN_CKPT_ALL = 1, SK_TRAIN_CKPT_KEPT = 2 };
/* FLOPs of one training token at sequence length n in the matrix products
 * (projections, the tied head, attention as computed: every score of the
 * n x n block): forward, what checkpointing computes again (ckpt, one of
 * SK_TRAIN_CKPT_*), and the backward's dx (the frozen weights need no dW;
 * the LoRA branch's rank-r products are left out). The compute floor
 * divides a device's peak by it. */
double sk_config_train_flops(const sk_config *c, int64_t n, int ckpt);
/* Whether id is one of the end-of-sequence ids. */
int sk_config_is_eos(const sk_config *c, int32_t id);

#endif
