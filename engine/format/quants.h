/* CPU dequantization of stored element types to f32: F32, F16, BF16 and the
 * ggml blocks Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K (formats.md §5.5).
 * Results are bit-identical to gguf-py's gguf.quants.dequantize. */
#ifndef SK_QUANTS_H
#define SK_QUANTS_H

#include <stdint.h>
#include "engine/format/dtype.h"

/* Dequantizes n elements starting at src (n a multiple of the block size).
 * Returns 0, or -1 for a type it cannot read. src may be unaligned. */
int sk_dequantize(sk_dtype t, const void *src, float *dst, int64_t n);
/* 1 if sk_dequantize can read type t, else 0. */
int sk_dequantize_supported(sk_dtype t);

#endif
