/* A loaded Gemma 3n / Gemma 3 text model and its batched forward pass: the
 * engine's public face for inference (generation, logits, chat). The forward
 * pass is one model definition over the backend ops table (engine/backend/backend.h). */
#ifndef SK_MODEL_H
#define SK_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend/backend_info.h"
#include "engine/model/config.h"
#include "engine/text/tokenizer.h"

struct sk_lora;

typedef struct {
	sk_device device;   /* a resolved backend (SK_DEVICE_CPU until the CUDA backend lands) */
	int quant_nf4;      /* quantize the decoder's linear weights to NF4 at load */
	int threads;        /* CPU threads; 0 = one per core */
} sk_model_opts;

typedef struct sk_model sk_model;

/* Opens PATH (any kind sk_model_source_open accepts, except tokenizer-only),
 * binds and checks every tensor the architecture needs, and loads the
 * tokenizer when the model has one. Weights stay in their stored type
 * (mmap); nothing is expanded to fp32 as a whole. NULL + sk_error(). */
sk_model *sk_model_load(const char *path, const sk_model_opts *opts);
void sk_model_free(sk_model *m);
/* A model of a released Gemma 3n shape ("e4b" or "e2b") with random
 * weights made by the backend (which must be able to: the GPU), NF4
 * projections with opts->quant_nf4; no tokenizer. For benchmarks. */
sk_model *sk_model_random(const char *shape, const sk_model_opts *opts, uint64_t seed);

const sk_config *sk_model_config(const sk_model *m);
/* NULL when the model directory has no tokenizer files. */
const sk_tokenizer *sk_model_tokenizer(const sk_model *m);
/* Whether the model ships a chat template; without one it is most likely a
 * base model that continues text rather than following the chat format. */
int sk_model_has_chat_template(const sk_model *m);
/* Width of a logits row (the embedding's row count). */
int32_t sk_model_vocab(const sk_model *m);

/* Attaches a LoRA adapter (borrowed; NULL detaches). Sequences choose per
 * forward whether it applies (sk_batch_item.adapter_on). 0, or -1 when the
 * backend cannot hold it (then no adapter is attached). */
int sk_model_set_adapter(sk_model *m, const struct sk_lora *lora);
const struct sk_lora *sk_model_adapter(const sk_model *m);

/* Memory accounting (for the TUI's memory bars), in bytes. */
typedef struct {
	uint64_t weights;      /* weight tensors as the forward reads them: stored type (file-mapped,
	                          resident only where touched) or NF4 — on the GPU, on the device; norms
	                          and other small fp32 vectors are left out */
	uint64_t host_table;   /* of those, the per-layer-embedding table a GPU backend keeps in pinned
	                          host memory (0 on the CPU) */
	uint64_t activations;  /* the forward/backward workspace reserved now: it grows to the
	                          largest batch seen and is kept for the next */
	uint64_t device_free, device_total; /* the GPU's memory now (0 on the CPU) */
	const char *backend;   /* "cpu" or "cuda" */
} sk_model_mem;
void sk_model_memory(const sk_model *m, sk_model_mem *out);
/* The measured copy bandwidth of the model's device (bytes read + written
 * per second; 0 when the backend cannot measure it). */
double sk_model_copy_bandwidth(sk_model *m);
/* Kernels in the backend's last recorded forward (a decode step's CUDA
 * graph); 0 when nothing was recorded. */
int sk_model_recorded_kernels(const sk_model *m);
/* With SK_CUDA_PROFILE=1: the GPU time of each op since the last report,
 * printed to file (a FILE *). Nothing otherwise. */
void sk_model_profile_report(sk_model *m, void *file);
/* Bytes of the fp32 K and V a cache of n_seqs sequences holding n_tokens
 * each fills (sliding layers hold at most their window). */
uint64_t sk_model_kv_bytes(const sk_model *m, int n_seqs, int n_tokens);

/* Per-sequence decoding state: one KV cache slot per sequence. Sliding
 * layers keep a ring of sliding_window entries; KV-shared layers read their
 * producer layer's cache. */
typedef struct sk_kv_cache sk_kv_cache;

/* max_ctx 0 = the config's max_position_embeddings. */
sk_kv_cache *sk_kv_cache_new(const sk_model *m, int n_seqs, int max_ctx);
void sk_kv_cache_free(sk_kv_cache *kv);
int sk_kv_cache_n_seqs(const sk_kv_cache *kv);
int sk_kv_cache_max_ctx(const sk_kv_cache *kv);
/* Empties one sequence's cache. */
void sk_kv_cache_clear(sk_kv_cache *kv, int seq);
/* Cuts a sequence back to its first n tokens when its caches still hold
 * what those need (sliding rings keep SK_KV_ROLLBACK positions beyond the
 * window), else empties it. Returns the tokens it holds now (n or 0). The
 * seen-ids bitmap of a cut sequence still counts the dropped ids. */
#define SK_KV_ROLLBACK 256
int sk_kv_cache_keep(sk_kv_cache *kv, int seq, int n);
/* Bytes of K and V the cache has allocated (all its sequences). */
uint64_t sk_kv_cache_bytes(const sk_kv_cache *kv);
/* Number of tokens a sequence holds (its next position). */
int sk_kv_cache_pos(const sk_kv_cache *kv, int seq);

typedef struct {
	int seq;               /* KV cache slot */
	const int32_t *ids;    /* new tokens, appended to that sequence */
	int n;
	int adapter_on;        /* apply the attached adapter to this sequence */
	int all_logits;        /* logits for every new token (else only the last) */
} sk_batch_item;

/* Runs the new tokens of every item in one batched forward (ragged: items
 * may have different lengths and positions) and appends them to their
 * caches. logits receives, item after item, n rows (all_logits) or one row
 * of sk_model_vocab() floats, after the final softcap. Errors (an id out of
 * range, a context overflow: "context of N tokens exceeds ...") leave the
 * caches unchanged and return -1. */
int sk_model_forward(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, float *logits);

/* One sequence's draw of its next token on the backend: the sampler's
 * rules (generate.h's sk_sampling) and the uniform number in [0, 1) the
 * caller drew for this step from the sequence's sampler (sk_sampler_uniform),
 * so the token is the one sk_sampler_sample would pick from the same logits
 * (exactly, unless more than 2048 tokens survive top-k: then the 2048 most
 * likely stand in for them). */
typedef struct {
	int greedy;
	float temperature;
	int top_k;
	float top_p, min_p, repeat_penalty;  /* the penalty over every id the sequence holds */
	double u;
} sk_draw;

/* Whether the model's backend draws tokens itself (the GPU). */
int sk_model_can_draw(const sk_model *m);
/* sk_model_forward with one logits row per item (all_logits 0) that never
 * leaves the device: the next token of item i is drawn by draws[i] into
 * ids[i] (-1 when every token is masked out). -1 + sk_error() when the
 * backend cannot draw. */
int sk_model_forward_draw(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, const sk_draw *draws,
                          int32_t *ids);

#endif
