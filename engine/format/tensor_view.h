/* A read-only view of one stored tensor, as the format readers yield it.
 * Shapes are in PyTorch order (outermost first) whatever the file format:
 * the GGUF reader reverses ggml's ne[] so a [out, in] weight reads the same. */
#ifndef SK_TENSOR_VIEW_H
#define SK_TENSOR_VIEW_H

#include <stdint.h>
#include "engine/format/dtype.h"

#define SK_MAX_DIMS 8

typedef struct {
	const char *name;            /* owned by the file object */
	sk_dtype dtype;
	int ndim;
	int64_t shape[SK_MAX_DIMS];  /* PyTorch order */
	const void *data;            /* points into the file mapping; may be unaligned */
	uint64_t nbytes;
	const char *file;            /* path of the file that holds it */
} sk_tensor_view;

/* Number of elements (1 for a scalar). */
int64_t sk_tensor_view_numel(const sk_tensor_view *t);

#endif
