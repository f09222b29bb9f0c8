/* Fuzzes validation, trimming and text rendering of the chat template.
 * Input: messages separated by NUL bytes; each one's first byte picks the
 * role (byte % 4: system, user, assistant, or an invalid value); the first
 * input byte's low bit is add_generation_prompt. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/text/chat_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1) return 0;
	int gen = data[0] & 1;
	char *copy = malloc(size);
	if (!copy) return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	sk_chat_msg msgs[16];
	size_t n = 0;
	for (size_t i = 0; i < size - 1 && n < 16;) {
		size_t len = strlen(copy + i);
		if (len == 0) {
			i++;
			continue;
		}
		int r = (unsigned char)copy[i] % 4;
		msgs[n].role = r == 3 ? (sk_chat_role)9 : (sk_chat_role)r;
		msgs[n].content = copy + i + 1;
		size_t tl;
		const char *t = sk_chat_trim(copy + i + 1, len - 1, &tl);
		if (t < copy + i + 1 || t + tl > copy + i + len) abort();
		n++;
		i += len + 1;
	}
	char *out = NULL;
	size_t out_len = 0;
	if (sk_chat_render_text(msgs, n, gen, &out, &out_len) == 0) {
		if (strlen(out) != out_len || strncmp(out, "<bos>", 5)) abort();
		free(out);
	}
	free(copy);
	return 0;
}
