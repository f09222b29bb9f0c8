/* LoRA adapters in PEFT layout (formats.md §3): adapter_config.json plus
 * adapter_model.safetensors, loaded as fp32 A [r, in] and B [out, r]
 * matrices with their scale, applied inside the linear op as
 * y = W x + scale * B (A x). */
#ifndef SK_LORA_H
#define SK_LORA_H

#include <stdint.h>

#include "engine/config.h"

typedef enum {
	SK_LORA_Q, SK_LORA_K, SK_LORA_V, SK_LORA_O, SK_LORA_GATE, SK_LORA_UP, SK_LORA_DOWN,
	SK_LORA_NMOD
} sk_lora_module;

typedef struct {
	float *A;      /* [r, in], row-major */
	float *B;      /* [out, r] */
	int32_t r, in, out;
	float scale;   /* alpha / r, or alpha / sqrt(r) with use_rslora */
} sk_lora_pair;

typedef struct sk_lora sk_lora;

/* Loads DIR/adapter_config.json + DIR/adapter_model.safetensors and checks
 * every pair against the model config; an adapter that does not fit is an
 * error naming the tensor. Keys may use the multimodal
 * (...model.language_model.layers.N...) or text-only (...model.layers.N...)
 * layout. NULL + sk_error(). */
sk_lora *sk_lora_load(const char *dir, const sk_config *cfg);
void sk_lora_free(sk_lora *l);

/* The pair for one module of one layer, or NULL when not adapted. */
const sk_lora_pair *sk_lora_get(const sk_lora *l, int layer, sk_lora_module m);
int32_t sk_lora_rank(const sk_lora *l);
const char *sk_lora_module_name(sk_lora_module m);  /* "q_proj", ... */

#endif
