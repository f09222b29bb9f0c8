/* Token ids and per-token labels of a rendered conversation. */
#include "engine/text/chat_template.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

int sk_chat_labels_push(sk_chat_labels *l, uint8_t label)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		if (cap < l->cap) return sk_fail("%s", _("chat: out of memory"));
		uint8_t *v = realloc(l->v, cap);
		if (!v) return sk_fail("%s", _("chat: out of memory"));
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = label;
	return 0;
}

void sk_chat_labels_free(sk_chat_labels *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Each span (run of equal label) is encoded on its own to know which ids it gives.
 * With the Gemma vocabulary every span boundary falls right after an added
 * token ("\n" before an assistant content, "<end_of_turn>" after it), which
 * the tokenizer splits out before BPE, so the spans' ids concatenate to the
 * one-piece encoding. That is checked here rather than assumed, since the ids
 * must be exactly Hugging Face's: a mismatch is an error, never wrong labels. */
int sk_chat_render(const sk_tokenizer *tok, const sk_chat_msg *msgs, size_t n, int add_generation_prompt,
                   sk_ids *ids, sk_chat_labels *labels)
{
	char *text = NULL;
	size_t len = 0, nspans = 0;
	sk_chat_span *spans = NULL;
	sk_ids whole = {0};
	size_t ids0 = ids->n, labels0 = labels ? labels->n : 0;
	if (!tok) return sk_fail("%s", _("chat: no tokenizer"));
	if (sk_chat_render_spans(msgs, n, add_generation_prompt, &text, &len, &spans, &nspans)) return -1;
	for (size_t r = 0; r < nspans; r++) {
		size_t before = ids->n;
		if (sk_tokenizer_encode(tok, text + spans[r].start, spans[r].end - spans[r].start, 0, ids))
			goto fail;
		for (size_t k = before; labels && k < ids->n; k++)
			if (sk_chat_labels_push(labels, spans[r].label)) goto fail;
	}
	if (sk_tokenizer_encode(tok, text, len, 0, &whole)) goto fail;
	if (whole.n != ids->n - ids0 || memcmp(whole.v, ids->v + ids0, whole.n * sizeof *whole.v)) {
		sk_fail("%s", _("chat: a token crosses a prompt/response boundary of the chat template"));
		goto fail;
	}
	sk_ids_free(&whole);
	free(text);
	free(spans);
	return 0;
fail:
	sk_ids_free(&whole);
	free(text);
	free(spans);
	ids->n = ids0;
	if (labels) labels->n = labels0;
	return -1;
}
