/* GGUF v2/v3 reader (formats.md §5): header, every metadata value type,
 * tensor infos, alignment. Zero-copy over an mmap. The whole file structure
 * is validated at open; accessors then only check their arguments.
 *
 * Tensors of a ggml type that sk_dtype cannot name (IQ*, TQ*, MXFP4, ...) are
 * still listed: their view has dtype SK_DT_COUNT (and correct data/nbytes);
 * sk_gguf_tensor_ggml_type and sk_ggml_type_name tell what they are. */
#ifndef SK_GGUF_H
#define SK_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "engine/format/tensor_view.h"

typedef enum {
	SK_GGUF_UINT8 = 0, SK_GGUF_INT8 = 1, SK_GGUF_UINT16 = 2, SK_GGUF_INT16 = 3,
	SK_GGUF_UINT32 = 4, SK_GGUF_INT32 = 5, SK_GGUF_FLOAT32 = 6, SK_GGUF_BOOL = 7,
	SK_GGUF_STRING = 8, SK_GGUF_ARRAY = 9, SK_GGUF_UINT64 = 10, SK_GGUF_INT64 = 11,
	SK_GGUF_FLOAT64 = 12
} sk_gguf_type;

typedef struct {
	const char *key;        /* NUL-terminated copy */
	sk_gguf_type type;
	sk_gguf_type arr_type;  /* when type == ARRAY */
	uint64_t arr_count;     /* when type == ARRAY */
	const void *data;       /* raw little-endian value (scalar) or first element (array) in the file */
	/* STRING: a NUL-terminated copy of the value (str_len is authoritative
	 * if it holds a NUL byte); NULL otherwise. For string arrays use
	 * sk_gguf_arr_str (O(1) per element: offsets are indexed at open). */
	const char *str;
	uint64_t str_len;
} sk_gguf_kv;

typedef struct sk_gguf sk_gguf;

sk_gguf *sk_gguf_open(const char *path);
sk_gguf *sk_gguf_open_mem(const void *buf, size_t len, const char *name);
void sk_gguf_close(sk_gguf *g);
uint32_t sk_gguf_version(const sk_gguf *g);
uint32_t sk_gguf_alignment(const sk_gguf *g);

size_t sk_gguf_kv_count(const sk_gguf *g);
const sk_gguf_kv *sk_gguf_kv_at(const sk_gguf *g, size_t i);
const sk_gguf_kv *sk_gguf_find(const sk_gguf *g, const char *key);

/* Typed getters: 0 on success; -1 if missing or of another type (sk_error set).
 * get_u32 accepts any integer type whose value fits. */
int sk_gguf_get_u32(const sk_gguf *g, const char *key, uint32_t *out);
int sk_gguf_get_f32(const sk_gguf *g, const char *key, float *out);
int sk_gguf_get_bool(const sk_gguf *g, const char *key, int *out);
int sk_gguf_get_str(const sk_gguf *g, const char *key, const char **s, size_t *len);
/* Element i of an array as a number (integer, float or bool arrays). */
int sk_gguf_arr_f64(const sk_gguf_kv *kv, uint64_t i, double *out);
/* Element i of a string array (pointer into the file, not NUL-terminated). */
int sk_gguf_arr_str(const sk_gguf *g, const sk_gguf_kv *kv, uint64_t i, const char **s, size_t *len);

size_t sk_gguf_tensor_count(const sk_gguf *g);
const sk_tensor_view *sk_gguf_tensor(const sk_gguf *g, size_t i);
const sk_tensor_view *sk_gguf_find_tensor(const sk_gguf *g, const char *name);
/* ggml type id of tensor i as stored (also for types sk_dtype does not name). */
uint32_t sk_gguf_tensor_ggml_type(const sk_gguf *g, size_t i);
/* File offset of the tensor data section. */
uint64_t sk_gguf_data_offset(const sk_gguf *g);

/* ggml type ids (formats.md §5.3). */
/* "Q4_K", "IQ2_XXS", ...; NULL for an unknown or retired id. */
const char *sk_ggml_type_name(uint32_t type);
/* Bytes of nelems elements; -1 for an unknown id, a count that is not a whole
 * number of blocks, or overflow. */
int64_t sk_ggml_type_nbytes(uint32_t type, int64_t nelems);
/* Elements and bytes per block; -1 for an unknown id. */
int sk_ggml_type_block(uint32_t type, int64_t *block_elems, int64_t *block_bytes);
/* The sk_dtype of a ggml type; SK_DT_COUNT when there is none. */
sk_dtype sk_ggml_type_dtype(uint32_t type);

#endif
