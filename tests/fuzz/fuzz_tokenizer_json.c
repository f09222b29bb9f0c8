/* libFuzzer target: tokenizer.json content from the input. If it loads, a
 * fixed string is encoded, decoded, and streamed; nothing may crash, hang or
 * allocate without bound. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_tokenizer *t = sk_tokenizer_load_mem((const char *)data, size, "fuzz.json");
	if (!t)
		return 0;
	static const char text[] = "ab c<s> \xE2\x96\x81x\n\n<0x41>\xF0\x9F\x98\x80 \xC3\xA9\xFF";
	sk_ids ids = { 0 };
	if (sk_tokenizer_encode(t, text, sizeof text - 1, 1, &ids) == 0) {
		char *out = NULL;
		size_t len;
		if (sk_tokenizer_decode(t, ids.v, ids.n, 0, &out, &len) == 0)
			free(out);
		if (sk_tokenizer_decode(t, ids.v, ids.n, 1, &out, &len) == 0)
			free(out);
		sk_detok_stream s = { 0 };
		size_t cap = sk_tokenizer_max_piece_len(t) + 16;
		char *chunk = malloc(cap);
		for (size_t i = 0; chunk && i < ids.n; i++)
			if (sk_detok_stream_push(t, &s, ids.v[i], chunk, cap) < 0)
				abort(); /* the documented capacity must always be enough */
		if (chunk)
			sk_detok_stream_flush(&s, chunk, cap);
		free(chunk);
	}
	sk_ids_free(&ids);
	sk_tokenizer_find(t, "<s>");
	sk_tokenizer_free(t);
	return 0;
}
