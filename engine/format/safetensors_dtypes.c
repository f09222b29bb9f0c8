/* dtype table of formats.md §4.2. The rank follows the order of the
 * reference implementation's Dtype enum, so that sorting by it reproduces
 * the reference writer's tensor order byte for byte. */
#include "engine/format/safetensors_dtypes.h"

#include <string.h>

static const sk_st_dtype_info sk_st_dtypes[] = {
	{ "BOOL",        8,  0, 1, SK_DT_BOOL },
	{ "F4",          4,  1, 0, SK_DT_COUNT },
	{ "F6_E2M3",     6,  2, 0, SK_DT_COUNT },
	{ "F6_E3M2",     6,  3, 0, SK_DT_COUNT },
	{ "U8",          8,  4, 1, SK_DT_U8 },
	{ "I8",          8,  5, 1, SK_DT_I8 },
	{ "F8_E5M2",     8,  6, 0, SK_DT_COUNT },
	{ "F8_E4M3",     8,  7, 0, SK_DT_COUNT },
	{ "F8_E8M0",     8,  8, 0, SK_DT_COUNT },
	{ "F8_E4M3FNUZ", 8,  8, 0, SK_DT_COUNT },
	{ "F8_E5M2FNUZ", 8,  8, 0, SK_DT_COUNT },
	{ "I16",        16,  9, 1, SK_DT_I16 },
	{ "U16",        16, 10, 1, SK_DT_U16 },
	{ "F16",        16, 11, 1, SK_DT_F16 },
	{ "BF16",       16, 12, 1, SK_DT_BF16 },
	{ "I32",        32, 13, 1, SK_DT_I32 },
	{ "U32",        32, 14, 1, SK_DT_U32 },
	{ "F32",        32, 15, 1, SK_DT_F32 },
	{ "C64",        64, 16, 0, SK_DT_COUNT },
	{ "F64",        64, 17, 1, SK_DT_F64 },
	{ "I64",        64, 18, 1, SK_DT_I64 },
	{ "U64",        64, 19, 1, SK_DT_U64 },
};

#define SK_ST_NDTYPES (sizeof sk_st_dtypes / sizeof sk_st_dtypes[0])

const sk_st_dtype_info *sk_st_dtype_by_name(const char *s)
{
	for (size_t i = 0; i < SK_ST_NDTYPES; i++)
		if (strcmp(sk_st_dtypes[i].name, s) == 0)
			return &sk_st_dtypes[i];
	return NULL;
}

const sk_st_dtype_info *sk_st_dtype_by_sk(sk_dtype t)
{
	for (size_t i = 0; i < SK_ST_NDTYPES; i++)
		if (sk_st_dtypes[i].supported && sk_st_dtypes[i].dtype == t)
			return &sk_st_dtypes[i];
	return NULL;
}
