/* Writing a LoRA adapter as a PEFT-loadable directory (formats.md §3.5-3.7):
 * adapter_model.safetensors (fp32, "base_model.model." + module key names),
 * adapter_config.json (every field PEFT 0.17 writes) and a README.md model
 * card. sk_lora_load reads the result back. */
#ifndef SK_ADAPTER_WRITE_H
#define SK_ADAPTER_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/lora.h"

/* Module path of the decoder layers in the base model. */
typedef enum {
	SK_ADAPTER_KEYS_MULTIMODAL, /* model.language_model.layers.N (*ForConditionalGeneration) */
	SK_ADAPTER_KEYS_TEXT,       /* model.layers.N (*ForCausalLM) */
} sk_adapter_keys;

typedef struct {
	int32_t layer;
	sk_lora_module module;
	const float *A; /* [r, in] */
	const float *B; /* [out, r] */
	int32_t in, out;
} sk_adapter_pair;

typedef struct {
	int32_t r;
	double alpha;
	double dropout;
	int use_rslora;
	const char *base_model; /* base_model_name_or_path; NULL writes null */
	sk_adapter_keys keys;
} sk_adapter_info;

/* Writes the three files into an existing directory (each file atomically).
 * target_modules is written as a regular expression that selects exactly
 * the (layer, module) pairs given, so PEFT wraps no module the file lacks
 * (the list form would also catch the audio tower's q/k/v_proj). Refused:
 * no pairs, a duplicate (layer, module), a bad size, a non-finite value
 * (an adapter holding NaN is useless; the caller should stop earlier). */
int sk_adapter_write_files(const char *dir, const sk_adapter_info *info, const sk_adapter_pair *pairs, size_t n);

/* The same, as a whole directory that replaces DIR atomically (atomic_dir.h). */
int sk_adapter_write(const char *dir, const sk_adapter_info *info, const sk_adapter_pair *pairs, size_t n);

/* The target_modules regular expression for these pairs (malloc'd), e.g.
 * model\.layers\.(\d+\.(self_attn\.(q_proj|o_proj))|(0|1)\.self_attn\.(k_proj)).
 * A layer set that is 0..max (max over all pairs) is written as \d+. */
char *sk_adapter_target_regex(const sk_adapter_pair *pairs, size_t n, sk_adapter_keys keys);

#endif
