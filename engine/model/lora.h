/* LoRA adapters in PEFT layout (formats.md §3): adapter_config.json plus
 * adapter_model.safetensors, loaded as fp32 A [r, in] and B [out, r]
 * matrices with their scale, applied inside the linear op as
 * y = W x + scale * B (A x). */
#ifndef SK_LORA_H
#define SK_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/config.h"

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
 * layout. NULL + sk_error(). Also accepted: keys without the
 * "base_model.model." prefix, ".lora_A.default.weight" forms, the older
 * language_model.model.layers.N layout, and F32/BF16/F16 factors. Errors:
 * any other tensor, a module target_modules does not select, a layer out of
 * range, a missing partner, a rank other than r, a shape that does not fit. */
sk_lora *sk_lora_load(const char *dir, const sk_config *cfg);
void sk_lora_free(sk_lora *l);

/* The pair for one module of one layer, or NULL when not adapted. */
const sk_lora_pair *sk_lora_get(const sk_lora *l, int layer, sk_lora_module m);
int32_t sk_lora_rank(const sk_lora *l);
const char *sk_lora_module_name(sk_lora_module m);  /* "q_proj", ... */

/* Adapter tensors that fit but are left out: k_proj/v_proj of KV-shared
 * layers (those layers read an earlier layer's K/V, so the factors would
 * never run) and modules of the vision/audio towers (the text decoder never
 * runs them). The caller may warn when this is not 0. */
int32_t sk_lora_ignored_count(const sk_lora *l);
/* Number of (layer, module) pairs in use. */
int32_t sk_lora_pair_count(const sk_lora *l);

/* adapter_config.json (lora_config.c). target_modules and exclude_modules
 * follow PEFT: a list matches a module whose name equals an entry or ends
 * with "." + entry; a string is a Python regular expression that must match
 * the whole name (re.fullmatch), run here as POSIX ERE "^(...)$" after
 * translating the supported subset (sk_lora_regex_to_posix). */
typedef struct sk_lora_match sk_lora_match;
typedef struct {
	int32_t r;
	float alpha;
	int use_rslora;
	float scale;            /* alpha / r, or alpha / sqrt(r) */
	sk_lora_match *targets; /* NULL: target_modules absent or null (any module) */
	sk_lora_match *exclude; /* NULL: nothing excluded */
} sk_lora_config;

/* Parses the JSON text; name (the path) prefixes errors. Returns 0 or -1. */
int sk_lora_config_parse(const char *json, size_t len, const char *name, sk_lora_config *out);
void sk_lora_config_free(sk_lora_config *c);
/* 1 if PEFT would put an adapter on the module of this name
 * ("model.language_model.layers.3.self_attn.q_proj"), else 0. */
int sk_lora_config_targets(const sk_lora_config *c, const char *module);
/* Python regex -> anchored POSIX ERE, malloc'd; NULL + sk_error() for what
 * the subset lacks. Supported: literals, ., [...] classes (with \d \w \s
 * inside), \d \D \w \W \s \S, escaped punctuation, groups ( ) and
 * (?: ), |, * + ? {m,n} and their lazy forms (same full-match result).
 * Rejected: other (?...) groups, backreferences, \b \A \Z and other
 * escapes, possessive quantifiers. */
char *sk_lora_regex_to_posix(const char *py, const char *name);

#endif
