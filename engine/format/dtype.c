#include "engine/format/dtype.h"

#include <string.h>

static const struct {
	const char *name;
	int64_t block_elems, block_bytes;
	int float_readable;
} sk_dtype_info[SK_DT_COUNT] = {
	[SK_DT_F32] = { "F32", 1, 4, 1 },
	[SK_DT_F16] = { "F16", 1, 2, 1 },
	[SK_DT_BF16] = { "BF16", 1, 2, 1 },
	[SK_DT_F64] = { "F64", 1, 8, 0 },
	[SK_DT_I64] = { "I64", 1, 8, 0 },
	[SK_DT_I32] = { "I32", 1, 4, 0 },
	[SK_DT_I16] = { "I16", 1, 2, 0 },
	[SK_DT_I8] = { "I8", 1, 1, 0 },
	[SK_DT_U8] = { "U8", 1, 1, 0 },
	[SK_DT_BOOL] = { "BOOL", 1, 1, 0 },
	[SK_DT_U16] = { "U16", 1, 2, 0 },
	[SK_DT_U32] = { "U32", 1, 4, 0 },
	[SK_DT_U64] = { "U64", 1, 8, 0 },
	[SK_DT_Q4_0] = { "Q4_0", 32, 18, 1 },
	[SK_DT_Q5_0] = { "Q5_0", 32, 22, 1 },
	[SK_DT_Q8_0] = { "Q8_0", 32, 34, 1 },
	[SK_DT_Q4_K] = { "Q4_K", 256, 144, 1 },
	[SK_DT_Q5_K] = { "Q5_K", 256, 176, 1 },
	[SK_DT_Q6_K] = { "Q6_K", 256, 210, 1 },
	[SK_DT_Q4_1] = { "Q4_1", 32, 20, 0 },
	[SK_DT_Q5_1] = { "Q5_1", 32, 24, 0 },
	[SK_DT_Q8_1] = { "Q8_1", 32, 36, 0 },
	[SK_DT_Q2_K] = { "Q2_K", 256, 84, 0 },
	[SK_DT_Q3_K] = { "Q3_K", 256, 110, 0 },
	[SK_DT_Q8_K] = { "Q8_K", 256, 292, 0 },
};

const char *sk_dtype_name(sk_dtype t)
{
	return (unsigned)t < SK_DT_COUNT ? sk_dtype_info[t].name : "?";
}

int64_t sk_dtype_block_elems(sk_dtype t)
{
	return (unsigned)t < SK_DT_COUNT ? sk_dtype_info[t].block_elems : 0;
}

int64_t sk_dtype_block_bytes(sk_dtype t)
{
	return (unsigned)t < SK_DT_COUNT ? sk_dtype_info[t].block_bytes : 0;
}

int sk_dtype_is_float_readable(sk_dtype t)
{
	return (unsigned)t < SK_DT_COUNT && sk_dtype_info[t].float_readable;
}

int64_t sk_dtype_nbytes(sk_dtype t, int64_t n)
{
	int64_t be = sk_dtype_block_elems(t), bb = sk_dtype_block_bytes(t);
	if (be <= 0 || n < 0 || n % be)
		return -1;
	int64_t blocks = n / be;
	if (blocks > INT64_MAX / bb)
		return -1;
	return blocks * bb;
}

float sk_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
	if (exp == 0x1f) {
		bits = sign | 0x7f800000u | (mant << 13);
	} else if (exp != 0) {
		bits = sign | ((exp + 112) << 23) | (mant << 13);
	} else if (mant == 0) {
		bits = sign;
	} else {
		/* subnormal: normalise */
		exp = 113;
		while (!(mant & 0x400u)) {
			mant <<= 1;
			exp--;
		}
		bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
	}
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t sk_f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t absx = x & 0x7fffffffu;
	if (absx > 0x7f800000u)
		return (uint16_t)(sign | 0x7e00u); /* NaN */
	if (absx >= 0x477ff000u)               /* rounds to >= 65520: inf */
		return (uint16_t)(sign | 0x7c00u);
	if (absx < 0x38800000u) {              /* below the smallest normal half */
		if (absx < 0x33000000u)            /* below half the smallest subnormal */
			return (uint16_t)sign;
		uint32_t e = absx >> 23, m = (absx & 0x7fffffu) | 0x800000u;
		uint32_t shift = 126 - e;          /* 14 + (112 - e) + 1 - 1 */
		uint32_t half = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
		if (rem > mid || (rem == mid && (half & 1)))
			half++;
		return (uint16_t)(sign | half);
	}
	uint32_t h = ((absx - 0x38000000u) >> 13);
	uint32_t rem = absx & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
		h++;
	return (uint16_t)(sign | h);
}
