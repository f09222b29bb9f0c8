/* The safetensors dtype strings (formats.md §4.2), their bit sizes, and the
 * reference writer's dtype rank; shared by the reader and the writer. */
#ifndef SK_SAFETENSORS_DTYPES_H
#define SK_SAFETENSORS_DTYPES_H

#include <stddef.h>
#include "engine/format/dtype.h"

typedef struct {
	const char *name;  /* "BF16" */
	int bits;          /* bits per element (4 and 6 for the sub-byte types) */
	int rank;          /* position in the reference Dtype enum; the writer sorts by it */
	int supported;     /* 1 if it maps to an sk_dtype this project reads */
	sk_dtype dtype;    /* valid when supported */
} sk_st_dtype_info;

/* The table entry for a dtype string, or NULL for an unknown string. */
const sk_st_dtype_info *sk_st_dtype_by_name(const char *s);
/* The table entry for an sk_dtype that safetensors can hold, or NULL. */
const sk_st_dtype_info *sk_st_dtype_by_sk(sk_dtype t);

#endif
