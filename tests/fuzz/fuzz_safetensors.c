/* libFuzzer target: any byte string given to the safetensors reader must be
 * rejected cleanly or yield views that lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy so the sanitizer catches any read past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	sk_st_file *f = sk_st_open_mem(buf, size, "fuzz");
	if (f) {
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < sk_st_count(f); i++) {
			const sk_tensor_view *t = sk_st_tensor(f, i);
			const uint8_t *p = t->data;
			if (p < buf || p + t->nbytes > buf + size || sk_st_find(f, t->name) != t)
				abort();
			if (t->nbytes)
				sink ^= p[0] ^ p[t->nbytes - 1];
		}
		for (size_t i = 0; i < sk_st_metadata_count(f); i++)
			if (!sk_st_metadata(f, sk_st_metadata_key(f, i)))
				abort();
		(void)sink;
	}
	sk_st_close(f);
	free(buf);
	return 0;
}
