/* Merging a LoRA adapter into a model's stored weights (formats.md §3.2):
 * W' = W + scale·B·A computed in fp32 from the original (not quantized)
 * weights and rounded once to the output dtype; every other tensor copied
 * byte for byte (or converted when a different dtype is asked for). The
 * result is a Hugging Face checkpoint in the input's layout (same tensor
 * names, config.json, tokenizer and generation files, sharded safetensors
 * with model.safetensors.index.json, §4.4–4.5), written tensor by tensor
 * into a temporary directory that is renamed into place. */
#ifndef SK_MERGE_H
#define SK_MERGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/format/dtype.h"

/* Default shard limit: 2 GB (decimal, as huggingface_hub counts "2GB"). */
#define SK_MERGE_DEFAULT_SHARD 2000000000ull

/* Called as the data is written: shard is 0-based; done/total count data
 * bytes of the whole checkpoint. */
typedef void (*sk_merge_progress_fn)(void *ctx, int shard, int nshards, const char *shard_name,
                                     uint64_t done, uint64_t total);

typedef struct {
	const char *model;        /* HF directory or one .safetensors (+ config.json beside it) */
	const char *adapter;      /* PEFT adapter directory */
	const char *out;          /* output directory */
	int dtype;                /* -1: each tensor keeps its stored dtype; else SK_DT_F32/F16/BF16 */
	uint64_t max_shard_size;  /* 0: SK_MERGE_DEFAULT_SHARD */
	int force;                /* replace an existing output directory */
	sk_merge_progress_fn progress;
	void *progress_ctx;
} sk_merge_opts;

typedef struct {
	size_t tensors;           /* written */
	size_t merged;            /* with an adapter delta added */
	size_t converted;         /* copied into another dtype */
	size_t copied;            /* byte for byte */
	int shards;
	uint64_t bytes;           /* tensor data written */
	int32_t lora_ignored;     /* adapter tensors that never run (KV-shared k/v, towers) */
	int64_t overflow;         /* finite values that became ±inf when narrowed to f16 */
	sk_dtype in_dtype;        /* the dtype of the adapted weights as stored */
	sk_dtype out_dtype;       /* the dtype the adapted weights were written in */
} sk_merge_stats;

/* Does the whole merge. 0, or -1 + sk_error() with nothing left behind
 * (no output directory, no temporary sibling). */
int sk_merge(const sk_merge_opts *o, sk_merge_stats *st);

/* "2GB" (10^9), "500MB", "64KiB" (2^10), "1.5GB", "123" (bytes): 0, or -1
 * for a malformed or zero size. Case-insensitive units B KB MB GB TB KiB
 * MiB GiB TiB, as huggingface_hub reads max_shard_size. */
int sk_merge_parse_size(const char *s, uint64_t *out);

/* The merge of `rows` rows of one weight: w (fp32, [rows, in]) += scale ·
 * B[rows] · A, with B given from its first row of the chunk ([rows, r]) and
 * A [r, in]. acc is scratch of `in` floats. */
void sk_merge_rows(float *w, const float *B, const float *A, int64_t rows, int64_t in, int32_t r, float scale,
                   float *acc);

/* fp32 → the output dtype's bytes (little-endian); counts finite values
 * that overflowed to ±inf into *overflow. */
void sk_merge_store(sk_dtype t, const float *src, void *dst, int64_t n, int64_t *overflow);

#endif
