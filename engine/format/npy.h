/* NumPy .npy files (format version 1.0 written; 1.0, 2.0 and 3.0 read) for
 * little-endian float32 and int32 arrays in C order: reference logits,
 * dumps of activations, and what `sokhan logits` writes. */
#ifndef SK_NPY_H
#define SK_NPY_H

#include <stddef.h>
#include <stdint.h>

#define SK_NPY_MAX_DIMS 8

typedef enum { SK_NPY_F32, SK_NPY_I32 } sk_npy_dtype;

typedef struct {
	sk_npy_dtype dtype;
	int ndim;                        /* 0 for a scalar */
	int64_t shape[SK_NPY_MAX_DIMS];
	size_t count;                    /* product of the shape */
	void *data;                      /* count float or int32_t values (malloc'd) */
} sk_npy;

/* Writes PATH atomically (a crash never leaves half a file). */
int sk_npy_write(const char *path, sk_npy_dtype dtype, const void *data, int ndim, const int64_t *shape);
int sk_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
int sk_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape);

/* Reads a whole file; errors name the path ("PATH: ..."). */
int sk_npy_read(const char *path, sk_npy *out);
/* Same from memory; name is for messages. */
int sk_npy_parse(const void *buf, size_t len, const char *name, sk_npy *out);
void sk_npy_free(sk_npy *a);

#endif
