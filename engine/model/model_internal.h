/* The loaded model's internals, shared by model.c (loading/binding),
 * gemma.c (the forward pass) and kv_cache.c. Not a public header. */
#ifndef SK_MODEL_INTERNAL_H
#define SK_MODEL_INTERNAL_H

#include "engine/backend/backend.h"
#include "engine/model/model.h"
#include "engine/model/model_source.h"
#include "engine/format/nf4.h"
#include "engine/tensor.h"

#define SK_MAX_ALTUP 16

typedef struct {
	/* linear weights, stored type or NF4 */
	sk_tensor q, k, v, o, gate, up, down;
	sk_tensor laurel_l, laurel_r, ple_gate, ple_proj;   /* Gemma 3n */
	/* norms as fp32 multipliers (Gemma 3's 1 + w already applied) */
	float *attn_norm, *q_norm, *k_norm, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm;
	float *laurel_norm, *ple_post_norm, *altup_scale, *router_norm;  /* Gemma 3n */
	float *router;     /* [A][H] */
	float *pred_coef;  /* [A·A][A], clipped */
	float *corr_coef;  /* [A][A], clipped */
	int sliding;
	int kv_src;        /* layer whose K/V this layer reads (itself when it owns them) */
	int kv_slot;       /* index among KV-owning layers, -1 for a consumer */
	int ffn;           /* FFN width */
	float sparsity_z;  /* 0 = dense */
} sk_layer;

struct sk_model {
	sk_config cfg;
	sk_model_source *src;
	sk_tokenizer *tok;
	sk_backend *be;
	const struct sk_lora *lora;
	int quant_nf4;

	sk_tensor embed;               /* [V, H], also the tied LM head */
	sk_tensor ple_embed;           /* [Vp, L·P] */
	sk_tensor ple_model_proj;      /* [L·P, H] */
	sk_tensor altup_proj[SK_MAX_ALTUP], altup_unembed[SK_MAX_ALTUP];
	float *ple_proj_norm, *final_norm;
	sk_layer *layers;
	int n_kv_layers;               /* layers that own a KV cache */
	int32_t vocab;                 /* rows of embed */
	float embed_scale;             /* sqrt(H), rounded to the embedding's stored type as HF does */
	float ple_scale;               /* sqrt(P), likewise */

	sk_arena ws;                   /* activations of one forward, in the backend's memory */
	sk_arena hstage;               /* host-side index arrays of one forward (staging for upload) */
	/* owned allocations to free */
	void **owned;
	size_t n_owned, cap_owned;
	sk_nf4_tensor **nf4;
	size_t n_nf4, cap_nf4;
};

struct sk_kv_cache {
	const sk_model *m;
	int n_seqs, max_ctx, n_layers;  /* n_layers = KV-owning layers */
	int64_t kv_dim;
	int64_t *cap;      /* per owning layer: ring slots */
	float **k, **v;    /* [seq · n_layers + slot] → [cap][kv_dim], in the backend's memory */
	int *pos;          /* per sequence */
	uint64_t serial;   /* unique among the process's caches: recordings of a forward name its buffers */
	uint32_t *seen;    /* per sequence, a bitmap of the ids it holds (backend memory; made when
	                      tokens are first drawn on the backend) */
	int64_t seen_words;
};

/* Adds p to the allocations freed with the model. 0 or -1. */
int sk_model_own(sk_model *m, void *p);
/* The layer's attention kind, K/V source and slot, FFN width and sparsity
 * cutoff from the config; -1 when no layer provides its K/V. */
int sk_model_layer_meta(sk_model *m, int l);

#endif
