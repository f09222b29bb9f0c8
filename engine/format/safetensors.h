/* safetensors reader (mmap, zero-copy, every check of formats.md §4.3),
 * sharded checkpoints through model.safetensors.index.json (§4.5), and an
 * atomic writer (§4.4). */
#ifndef SK_SAFETENSORS_H
#define SK_SAFETENSORS_H

#include <stddef.h>
#include <stdio.h>

#include "engine/format/tensor_view.h"

typedef struct sk_st_file sk_st_file;

/* Opens and validates one file. NULL + sk_error() "PATH: what is wrong". */
sk_st_file *sk_st_open(const char *path);
/* Validates a buffer already in memory (tests, fuzzing); buf must outlive the object. */
sk_st_file *sk_st_open_mem(const void *buf, size_t len, const char *name);
void sk_st_close(sk_st_file *f);
size_t sk_st_count(const sk_st_file *f);
const sk_tensor_view *sk_st_tensor(const sk_st_file *f, size_t i);
const sk_tensor_view *sk_st_find(const sk_st_file *f, const char *name);
/* Value of a __metadata__ key, or NULL. */
const char *sk_st_metadata(const sk_st_file *f, const char *key);
/* The __metadata__ keys, in header order. */
size_t sk_st_metadata_count(const sk_st_file *f);
const char *sk_st_metadata_key(const sk_st_file *f, size_t i);

/* A whole checkpoint: a directory with model.safetensors.index.json, a
 * directory with one or more *.safetensors, or a single .safetensors file. */
typedef struct sk_st_checkpoint sk_st_checkpoint;
sk_st_checkpoint *sk_st_checkpoint_open(const char *path);
void sk_st_checkpoint_close(sk_st_checkpoint *c);
size_t sk_st_checkpoint_count(const sk_st_checkpoint *c);
const sk_tensor_view *sk_st_checkpoint_tensor(const sk_st_checkpoint *c, size_t i);
const sk_tensor_view *sk_st_checkpoint_find(const sk_st_checkpoint *c, const char *name);
size_t sk_st_checkpoint_nfiles(const sk_st_checkpoint *c);
/* The i-th file of the checkpoint (shards in name order). */
const sk_st_file *sk_st_checkpoint_file(const sk_st_checkpoint *c, size_t i);
/* Tensors found in a shard but absent from the index's weight_map (they are
 * still loaded; callers may warn about them). 0 without an index. */
size_t sk_st_checkpoint_unmapped(const sk_st_checkpoint *c);

/* Writer. Tensors are given as views (data in memory); written to
 * PATH.tmp.XXXXXX in the same directory, fsynced, renamed over PATH. */
typedef struct {
	const char *name;
	sk_dtype dtype;
	int ndim;
	int64_t shape[SK_MAX_DIMS];
	const void *data;
} sk_st_entry;
int sk_st_write(const char *path, const sk_st_entry *entries, size_t n);
/* The start of a safetensors file: the header's length (u64, little
 * endian), then the JSON header padded with spaces to a multiple of 8, so
 * the data that follows is aligned. 0, or -1 after sk_fail_write. */
int sk_st_write_header(FILE *fp, const char *path, const char *json);

#endif
