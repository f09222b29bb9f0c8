/* Element types of stored tensors: the safetensors dtypes and the GGUF
 * (ggml) types, in one enum, with sizes and half-precision conversions. */
#ifndef SK_DTYPE_H
#define SK_DTYPE_H

#include <stdint.h>
#include <stddef.h>

typedef enum {
	SK_DT_F32, SK_DT_F16, SK_DT_BF16, SK_DT_F64,
	SK_DT_I64, SK_DT_I32, SK_DT_I16, SK_DT_I8, SK_DT_U8, SK_DT_BOOL,
	SK_DT_U16, SK_DT_U32, SK_DT_U64,
	/* ggml block-quantized types this project dequantizes */
	SK_DT_Q4_0, SK_DT_Q5_0, SK_DT_Q8_0, SK_DT_Q4_K, SK_DT_Q5_K, SK_DT_Q6_K,
	/* ggml types recognised (sizes known, counted by `info`) but not dequantized */
	SK_DT_Q4_1, SK_DT_Q5_1, SK_DT_Q8_1, SK_DT_Q2_K, SK_DT_Q3_K, SK_DT_Q8_K,
	SK_DT_COUNT
} sk_dtype;

/* "F32", "BF16", "Q4_K", ... */
const char *sk_dtype_name(sk_dtype t);
/* Elements per block (1 for plain types) and bytes per block. */
int64_t sk_dtype_block_elems(sk_dtype t);
int64_t sk_dtype_block_bytes(sk_dtype t);
/* Whether a tensor of this type can be read as floats (plain float types and
 * the dequantized block types). */
int sk_dtype_is_float_readable(sk_dtype t);
/* Byte size of n elements; -1 if n is not a whole number of blocks or overflows. */
int64_t sk_dtype_nbytes(sk_dtype t, int64_t n);

static inline float sk_bf16_to_f32(uint16_t h)
{
	union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
	return v.f;
}

/* Round to nearest even, NaN kept quiet (as PyTorch and ggml do). */
static inline uint16_t sk_f32_to_bf16(float f)
{
	union { float f; uint32_t u; } v = { .f = f };
	if ((v.u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((v.u >> 16) | 0x40);
	return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

float sk_f16_to_f32(uint16_t h);
uint16_t sk_f32_to_f16(float f);

#endif
