/* libFuzzer target for the GGUF reader and the dequantizers: parse the input,
 * then touch every metadata value, every string-array element, and the first
 * block of every tensor, so any out-of-range pointer the reader hands out is
 * dereferenced under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/format/gguf.h"
#include "engine/format/quants.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_gguf *g = sk_gguf_open_mem(data, size, "fuzz.gguf");
	if (!g)
		return 0;
	volatile unsigned sink = 0;
	for (size_t i = 0; i < sk_gguf_kv_count(g); i++) {
		const sk_gguf_kv *kv = sk_gguf_kv_at(g, i);
		sink += (unsigned)strlen(kv->key);
		if (sk_gguf_find(g, kv->key) != kv)
			abort();
		if (kv->type == SK_GGUF_STRING) {
			const char *s;
			size_t n;
			if (sk_gguf_get_str(g, kv->key, &s, &n) || s[n] != 0)
				abort();
			for (size_t j = 0; j < n; j++)
				sink += (uint8_t)s[j];
		} else if (kv->type == SK_GGUF_ARRAY && kv->arr_type == SK_GGUF_STRING) {
			for (uint64_t j = 0; j < kv->arr_count; j++) {
				const char *s;
				size_t n;
				if (sk_gguf_arr_str(g, kv, j, &s, &n))
					abort();
				if (n)
					sink += (uint8_t)s[0] + (uint8_t)s[n - 1];
			}
		} else if (kv->type == SK_GGUF_ARRAY) {
			for (uint64_t j = 0; j < kv->arr_count; j++) {
				double d;
				if (sk_gguf_arr_f64(kv, j, &d))
					abort();
				sink += d > 0;
			}
		} else {
			uint32_t u;
			float f;
			int b;
			sk_gguf_get_u32(g, kv->key, &u);
			sk_gguf_get_f32(g, kv->key, &f);
			sk_gguf_get_bool(g, kv->key, &b);
			sink += ((const uint8_t *)kv->data)[0];
		}
	}
	float block[256];
	for (size_t i = 0; i < sk_gguf_tensor_count(g); i++) {
		const sk_tensor_view *t = sk_gguf_tensor(g, i);
		if (sk_gguf_find_tensor(g, t->name) != t)
			abort();
		int64_t be, bb;
		if (sk_ggml_type_block(sk_gguf_tensor_ggml_type(g, i), &be, &bb))
			abort();
		if (t->nbytes >= (uint64_t)bb) {
			/* first block; plain types: up to 256 elements */
			int64_t n = be > 1 ? be : (int64_t)(t->nbytes / (uint64_t)bb < 256 ? t->nbytes / (uint64_t)bb : 256);
			if (sk_dequantize_supported(t->dtype) && sk_dequantize(t->dtype, t->data, block, n))
				abort();
			sink += ((const uint8_t *)t->data)[t->nbytes - 1];
		}
	}
	(void)sink;
	sk_gguf_close(g);
	return 0;
}
