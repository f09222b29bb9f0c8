/* Tensor names of Gemma 3n / Gemma 3 checkpoints, HF and GGUF spellings
 * (gemma3n-architecture.md §2, formats.md §5.6): parsing a stored name into
 * a role + layer, classifying it for counting and loading, and building the
 * name of a role for a given layout. */
#ifndef SK_TENSOR_NAMES_H
#define SK_TENSOR_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/config.h"

typedef enum {
	SK_TC_COMPUTE,    /* decoder weights used by the forward pass */
	SK_TC_TOKEN_EMBD, /* embed_tokens (= tied LM head) */
	SK_TC_PLE,        /* embed_tokens_per_layer (Gemma 3n PLE table) */
	SK_TC_SKIPPED,    /* vision/audio towers and their embedders */
	SK_TC_UNUSED_KV,  /* k_proj/v_proj/k_norm of KV-shared layers: stored but never used */
	SK_TC_LM_HEAD,    /* lm_head.weight: a copy of the tied embedding */
	SK_TC_UNKNOWN,    /* not a name this engine knows */
	SK_TC_COUNT
} sk_tensor_class;

typedef enum {
	SK_T_NONE = 0,
	/* global */
	SK_T_EMBED, SK_T_LM_HEAD, SK_T_FINAL_NORM,
	SK_T_PLE_EMBED, SK_T_PLE_MODEL_PROJ, SK_T_PLE_PROJ_NORM,
	SK_T_ALTUP_PROJ,       /* HF: 3 tensors (index 0..2); GGUF: one stacked [3,H,H] */
	SK_T_ALTUP_UNEMBD,     /* likewise */
	/* per layer */
	SK_T_ATTN_NORM, SK_T_Q, SK_T_K, SK_T_V, SK_T_O, SK_T_Q_NORM, SK_T_K_NORM,
	SK_T_POST_ATTN_NORM, SK_T_PRE_FFN_NORM, SK_T_GATE, SK_T_UP, SK_T_DOWN, SK_T_POST_FFN_NORM,
	SK_T_ALTUP_CORRECT_SCALE, SK_T_ALTUP_CORRECT_COEF, SK_T_ALTUP_PREDICT_COEF,
	SK_T_ALTUP_ROUTER, SK_T_ALTUP_ROUTER_NORM,
	SK_T_LAUREL_L, SK_T_LAUREL_R, SK_T_LAUREL_NORM,
	SK_T_PLE_GATE, SK_T_PLE_PROJ, SK_T_PLE_POST_NORM,
	SK_T_ROLE_COUNT
} sk_tensor_role;

#define SK_T_FIRST_LAYER_ROLE SK_T_ATTN_NORM

typedef enum { SK_LAYOUT_HF, SK_LAYOUT_GGUF } sk_tensor_layout;

typedef struct {
	sk_tensor_role role; /* SK_T_NONE when the name is not a decoder tensor */
	int layer;           /* per-layer roles; else -1 */
	int index;           /* altup_projections.{i} in HF layout; else 0 (GGUF stacked) or -1 */
	sk_tensor_class cls;
} sk_tensor_id;

/* Parses a stored name (HF under model.language_model., model. or
 * language_model.model.; or GGUF). cfg may be NULL (then consumer k/v are
 * COMPUTE and layer indices are only bounded by SK_MAX_LAYERS). */
sk_tensor_id sk_tensor_name_parse(const char *name, const sk_config *cfg);

/* Writes the name of a role ("model.language_model.layers.3.mlp.up_proj.weight",
 * "blk.3.ffn_up.weight") into buf; index picks altup_projections.{i} in HF
 * layout. prefix overrides the HF prefix when not NULL. Returns 0 or -1. */
int sk_tensor_name_build(sk_tensor_role role, int layer, int index, sk_tensor_layout layout,
                         const char *hf_prefix, char *buf, size_t cap);

/* Whether an architecture uses the role at all. */
int sk_tensor_role_in_arch(sk_tensor_role role, sk_arch arch);
int sk_tensor_role_is_per_layer(sk_tensor_role role);

/* Expected shape (PyTorch order) for a role under a config and layout;
 * returns ndim, or 0 when the role has no fixed expectation (e.g. vocabulary
 * rows of GGUF embeddings, checked loosely by the caller). */
int sk_tensor_expected_shape(const sk_config *c, sk_tensor_role role, int layer, sk_tensor_layout layout,
                             int64_t shape[4]);

const char *sk_tensor_class_name(sk_tensor_class cls);

#endif
