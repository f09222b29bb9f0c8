/* Where a model comes from: a Hugging Face directory, a single .safetensors
 * file, a .gguf file, or a directory holding only tokenizer files. Opening
 * reads headers only (config, tensor directory); tensor data stays mapped
 * and untouched until the engine reads it. */
#ifndef SK_MODEL_SOURCE_H
#define SK_MODEL_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/config.h"
#include "engine/model/tensor_names.h"
#include "engine/format/tensor_view.h"

struct sk_gguf;
struct sk_st_checkpoint;

typedef enum {
	SK_SRC_HF_DIR,          /* directory: config.json + *.safetensors (+ index) */
	SK_SRC_SAFETENSORS,     /* one .safetensors file */
	SK_SRC_GGUF,            /* one .gguf file */
	SK_SRC_TOKENIZER_ONLY   /* directory with tokenizer files and no weights */
} sk_source_kind;

typedef struct sk_model_source sk_model_source;

/* NULL + sk_error() ("PATH: what is wrong") when the path is missing, of an
 * unknown kind, or its config/headers are invalid. */
sk_model_source *sk_model_source_open(const char *path);
void sk_model_source_close(sk_model_source *s);

sk_source_kind sk_model_source_kind(const sk_model_source *s);
const char *sk_model_source_kind_name(sk_source_kind k);
const char *sk_model_source_path(const sk_model_source *s);
/* NULL for a tokenizer-only source. */
const sk_config *sk_model_source_config(const sk_model_source *s);
/* Where the config came from: "config.json" path, "GGUF metadata" or "tensor shapes". */
const char *sk_model_source_config_origin(const sk_model_source *s);
/* tokenizer.json beside the weights (NULL when absent; a GGUF carries its own). */
const char *sk_model_source_tokenizer_json(const sk_model_source *s);
/* Whether the model ships a chat template (tokenizer.chat_template in a
 * GGUF; chat_template in tokenizer_config.json or a chat_template.jinja
 * beside tokenizer.json). Base (pretrained) models usually have none. */
int sk_model_source_has_chat_template(const sk_model_source *s);
/* The GGUF file (NULL for other kinds). */
const struct sk_gguf *sk_model_source_gguf(const sk_model_source *s);
size_t sk_model_source_nfiles(const sk_model_source *s);
sk_tensor_layout sk_model_source_layout(const sk_model_source *s);

size_t sk_model_source_tensor_count(const sk_model_source *s);
const sk_tensor_view *sk_model_source_tensor(const sk_model_source *s, size_t i);
sk_tensor_id sk_model_source_tensor_id(const sk_model_source *s, size_t i);
/* The stored tensor of a role (index: altup_projections.{i} for HF; 0 for GGUF), or NULL. */
const sk_tensor_view *sk_model_source_get(const sk_model_source *s, sk_tensor_role role, int layer, int index);

/* Checks that every tensor the architecture needs exists with the shape the
 * config implies. Each problem is passed to report (when not NULL); the
 * first is also recorded with sk_fail. Returns the number of problems. */
typedef void (*sk_source_report_fn)(void *ctx, const char *message);
int sk_model_source_check(const sk_model_source *s, sk_source_report_fn report, void *ctx);

/* Totals of a tensor list by class: parameters (elements) and stored bytes. */
typedef struct {
	int64_t params[SK_TC_COUNT];
	uint64_t bytes[SK_TC_COUNT];
	size_t count[SK_TC_COUNT];
} sk_param_totals;
void sk_param_totals_add(sk_param_totals *t, sk_tensor_class cls, const sk_tensor_view *v);

#endif
