/* Shared between the merge files: one planned output tensor and the
 * streaming writer of its bytes. */
#ifndef SK_MERGE_INTERNAL_H
#define SK_MERGE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/model/lora.h"
#include "engine/train/merge.h"
#include "engine/format/tensor_view.h"

typedef enum { SK_MT_COPY, SK_MT_CONVERT, SK_MT_MERGE } sk_merge_kind;

typedef struct {
	const sk_tensor_view *v;     /* the stored tensor */
	sk_merge_kind kind;
	sk_dtype out;                /* dtype written */
	uint64_t out_bytes;
	const sk_lora_pair *pair;    /* SK_MT_MERGE only */
	int shard;                   /* 0-based shard it goes to */
	uint64_t offset;             /* within its shard's data buffer */
} sk_merge_item;

/* Progress bookkeeping for the writer. */
typedef struct {
	const sk_merge_opts *o;
	int shard, nshards;
	const char *shard_name;
	uint64_t done, total;
	int64_t overflow;
} sk_merge_progress;

/* Writes the output bytes of one tensor to fp (path names errors), in
 * chunks of bounded size so even a 1 GB embedding needs no copy in memory. */
int sk_merge_write_tensor(FILE *fp, const char *path, const sk_merge_item *it, sk_merge_progress *p);

/* Copies one small side file (config, tokenizer) byte for byte. */
int sk_merge_copy_file(const char *src, const char *dst);
/* root as JSON text (json_dumps flags) and a final newline, as transformers
 * writes config.json and the index. */
int sk_merge_write_json(const char *path, const json_t *root, size_t flags);
/* Writes dir/config.json from src_dir/config.json with every dtype entry
 * set to the torch name of t ("bfloat16"). */
int sk_merge_write_config(const char *src, const char *dst, sk_dtype t);

#endif
