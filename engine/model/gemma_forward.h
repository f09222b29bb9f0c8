/* The Gemma 3n / Gemma 3 forward pass, written once (gemma.c) over the
 * backend ops table. Inference (model_forward.c: a KV cache, logits) and
 * training (train/gemma_backward.c: whole sequences, each layer's
 * activations kept or recomputed for the backward) both run these
 * functions; they differ only in where the activations go and how LoRA is
 * applied. Not a public header. */
#ifndef SK_GEMMA_FORWARD_H
#define SK_GEMMA_FORWARD_H

#include "engine/model/model_internal.h"

/* What one layer's forward writes, [N][...] each. The backward reads every
 * one of them; inference points several at one buffer (q0 = q, g0 = z,
 * pg0 = the per-layer gate's output, k0/v0 = the K/V it stores, ...) and
 * the layer code skips a copy between aliased buffers. Gemma 3 uses
 * nrm..f only. */
typedef struct {
	float *modal1, *p;          /* AltUp router output [N][A], predictions [A][N][H] */
	float *nrm, *lr, *lam0;     /* input norm, LAuReL's low-rank and raw outputs */
	float *q0, *q, *k0, *v0;    /* q/k/v projections before their norms; q normed and roped */
	float *att, *o;             /* attention heads' output, o_proj's output */
	float *h1, *mm;             /* residual after attention, its pre-MLP norm */
	float *g0, *u, *z, *f;      /* gate and up outputs, gated product, down's output */
	float *y, *modal2, *vin;    /* layer output before AltUp correct, its router, per-layer gate input */
	float *pg0, *psi0;          /* per-layer gate output (before gelu), projection output */
	int mlp_saved;              /* g0, u, z hold the backend's own form of them (gated_mlp) */
} sk_layer_acts;

/* What the final hidden state's computation writes (§3.8): each stream's
 * selected rows hs [A][n][H], the unembedded streams vk ([A-1][n][H], or
 * one buffer reused when vk_stride is 0), their mean hsum and its norm hn. */
typedef struct {
	float *hs, *vk, *hsum, *hn;
	int64_t vk_stride;
} sk_head_acts;

/* One sequence's rows in the batch and, with a KV cache, its slot. */
typedef struct {
	int64_t row0, n;
	int seq;
} sk_fwd_item;

typedef struct {
	sk_model *m;
	const sk_backend_ops *ops;
	int64_t N;                   /* rows: every item's new tokens */
	const int32_t *pos;          /* [N] positions (backend memory) */
	const sk_fwd_item *items;
	int n_items;
	const sk_kv_cache *kv;       /* NULL: each item starts at position 0 with no past */
	const sk_row_span *spans;    /* without kv, the items' rows (NULL: attention an item at a time) */
	float *k_new, *v_new;        /* [KV-owning layer][N][kv_dim]: K normed and roped, V normed */
	float *pli;                  /* [N][L·P] per-layer inputs (Gemma 3n) */
	float *lam, *t2, *tP;        /* scratch: λ [N][H], [N][H], [N][P] */
	/* LoRA. Inference: the model's attached adapter on the rows with
	 * lora_rows[i] != 0 (NULL: none). Training: the trainable adapter on
	 * every row, with dropout seeded per (layer, module). */
	const uint8_t *lora_rows;
	sk_lora *train_lora;
	float dropout;
	uint64_t dropout_seed;
	/* A training layer computed again for its backward: which of its
	 * outputs the first forward kept in the record (SK_KEEP_*), so that
	 * the products (and attention) that made them are skipped. 0 otherwise. */
	unsigned kept;
	/* A training forward whose layer outputs nothing reads again but the
	 * kept ones (a checkpointed pass's first forward, or one without a
	 * backward): a backend may fuse the ops between them (gated_mlp). */
	int transient;
} sk_fwd;

/* Outputs a training forward may keep per layer, and what computing the
 * layer again then skips: down's output f (the down product), attention's
 * output att and o_proj's o (attention and the o product), LAuReL's lam0
 * (its two products: the backward does not read lr), the per-layer input's pg0 and psi0 (its two
 * products and the streams' update, which the backward does not read). */
enum { SK_KEEP_DOWN = 1, SK_KEEP_ATTN = 2, SK_KEEP_LAUREL = 4, SK_KEEP_PLE = 8 };

/* Embedding of ids [N] into the streams x [A][N][H] (Gemma 3: [N][H]) and,
 * for Gemma 3n, the per-layer inputs f->pli from ple_ids (ids outside the
 * per-layer table already mapped to 0). tmp: [N][max(L·P, H)]. */
int sk_gemma_embed(sk_fwd *f, const int32_t *ids, const int32_t *ple_ids, float *tmp, float *x);
/* Layer l from its input streams x to its output streams out (distinct
 * buffers), writing a. */
int sk_gemma_layer(sk_fwd *f, int l, sk_layer_acts *a, const float *x, float *out);
/* Final hidden states of the n rows sel (backend memory) of the last
 * layer's streams x into h->hn. */
int sk_gemma_final_hidden(sk_fwd *f, const float *x, const int64_t *sel, int64_t n, sk_head_acts *h);

/* Seed of the LoRA dropout mask of (layer, module) in a training pass. */
uint64_t sk_gemma_lora_seed(uint64_t seed, int layer, int mod);

/* RoPE base, linear scaling factor and attention window of a layer. */
typedef struct {
	float theta, factor;
	int window;
} sk_rope_cfg;
sk_rope_cfg sk_gemma_layer_rope(const sk_config *c, const sk_layer *L);

/* Makes the model's workspace (backend memory) hold at least need bytes and
 * resets it. 0 or -1. */
int sk_model_workspace(sk_model *m, size_t need);
/* The same, a grown workspace's quarter more taking it to at most most bytes. */
int sk_model_workspace_upto(sk_model *m, size_t need, size_t most);
/* Frees the workspace, so that a smaller one takes only what it needs. */
void sk_model_workspace_release(sk_model *m);
/* Makes the model's host staging arena (index arrays before their upload)
 * hold at least need bytes and resets it. 0 or -1. */
int sk_model_host_stage(sk_model *m, size_t need);

#endif
