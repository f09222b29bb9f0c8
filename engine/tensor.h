/* The engine's small tensor: a stored type, up to 4 dims (PyTorch order),
 * a data pointer and the device it lives on; and arena allocators for
 * activations and workspace, so a decode step allocates nothing. */
#ifndef SK_TENSOR_H
#define SK_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend/backend_info.h"
#include "engine/format/dtype.h"

#define SK_TENSOR_MAX_DIMS 4

typedef struct {
	sk_dtype dtype;       /* stored element type (ignored when nf4) */
	int nf4;              /* data is an sk_nf4_tensor (engine/format/nf4.h) of shape's elements */
	int ndim;
	int64_t shape[SK_TENSOR_MAX_DIMS];
	const void *data;     /* stored bytes (may be unaligned: a file mapping) */
	sk_device device;
} sk_tensor;

/* Rows (shape[0] of a matrix) and row width (last dim); 0 when empty. */
int64_t sk_tensor_rows(const sk_tensor *t);
int64_t sk_tensor_cols(const sk_tensor *t);
int64_t sk_tensor_numel(const sk_tensor *t);
/* Bytes of one row in the stored type (-1 when a row is not whole blocks, or nf4). */
int64_t sk_tensor_row_bytes(const sk_tensor *t);
/* Slice i of the outermost dimension of a plain/block-quantized tensor as a
 * tensor of ndim-1 dims (e.g. one of the stacked AltUp matrices). -1 on error. */
int sk_tensor_slice(const sk_tensor *t, int64_t i, sk_tensor *out);

/* Bump allocator over one block. Every allocation is 64-byte aligned. With
 * base == NULL the arena only measures (allocations return NULL and count):
 * run a plan once to size it, reserve, then run it again for real. */
typedef struct {
	char *base;
	size_t cap, used, peak;
} sk_arena;

void sk_arena_init_measure(sk_arena *a);
/* Makes the arena hold at least cap bytes (contents are dropped); 0 or -1. */
int sk_arena_reserve(sk_arena *a, size_t cap);
/* Makes the arena carve from base [cap bytes], owned by the caller (e.g.
 * backend memory): sk_arena_free must not be called on it. */
void sk_arena_adopt(sk_arena *a, void *base, size_t cap);
void *sk_arena_alloc(sk_arena *a, size_t bytes);
float *sk_arena_floats(sk_arena *a, size_t n);
void sk_arena_reset(sk_arena *a);
void sk_arena_free(sk_arena *a);

#endif
