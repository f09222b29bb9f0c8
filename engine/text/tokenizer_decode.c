/* Decoding ids to text as Gemma's decoder chain does it: "▁" becomes a
 * space, runs of <0xXX> byte tokens become their bytes (a run that is not
 * valid UTF-8 becomes one U+FFFD per byte, like HF's ByteFallback), and the
 * pieces are joined. */
#include "engine/text/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/text/tokenizer_model.h"

size_t sk_tok_decoded_piece(const sk_tokenizer *t, int32_t id, char *out, size_t cap)
{
	size_t len;
	const char *p = sk_tok_piece(t, id, &len);
	if (t->flags[id] & SK_TOKF_BYTE) {
		if (cap)
			out[0] = (char)sk_tok_byte_value(p, len);
		return 1;
	}
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		if ((t->options & SK_TOKO_META_TO_SPACE) && len - i >= 3 && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
			if (o < cap)
				out[o] = ' ';
			o++;
			i += 3;
		} else {
			if (o < cap)
				out[o] = p[i];
			o++;
			i++;
		}
	}
	return o;
}

typedef struct {
	char *p;
	size_t n, cap;
} sk_buf;

static int sk_buf_add(sk_buf *b, const void *data, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return sk_fail(_("out of memory"));
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

/* Emits the pending byte run: as is when valid UTF-8, else U+FFFD per byte. */
static int sk_flush_bytes(sk_buf *b, const unsigned char *bytes, size_t n)
{
	if (sk_tok_valid_utf8((const char *)bytes, n))
		return sk_buf_add(b, bytes, n);
	for (size_t i = 0; i < n; i++)
		if (sk_buf_add(b, "\xEF\xBF\xBD", 3) != 0)
			return -1;
	return 0;
}

int sk_tokenizer_decode(const sk_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                        size_t *out_len)
{
	*out = NULL;
	if (out_len)
		*out_len = 0;
	sk_buf b = { 0 };
	sk_buf bytes = { 0 };
	if (sk_buf_add(&b, "", 0) != 0)
		return -1;
	char piece[SK_TOK_MAX_PIECE];
	for (size_t i = 0; i < n; i++) {
		int32_t id = ids[i];
		if (id < 0 || id >= t->n_vocab || !(t->flags[id] & SK_TOKF_PRESENT)) {
			sk_fail(_("%s: token id %ld out of range"), t->name, (long)id);
			goto fail;
		}
		if (skip_special && (t->flags[id] & SK_TOKF_SPECIAL))
			continue;
		size_t pl = sk_tok_decoded_piece(t, id, piece, sizeof piece);
		if (t->flags[id] & SK_TOKF_BYTE) {
			if (sk_buf_add(&bytes, piece, 1) != 0)
				goto fail;
			continue;
		}
		if (bytes.n) {
			if (sk_flush_bytes(&b, (unsigned char *)bytes.p, bytes.n) != 0)
				goto fail;
			bytes.n = 0;
		}
		if (sk_buf_add(&b, piece, pl) != 0)
			goto fail;
	}
	if (bytes.n && sk_flush_bytes(&b, (unsigned char *)bytes.p, bytes.n) != 0)
		goto fail;
	free(bytes.p);
	*out = b.p;
	if (out_len)
		*out_len = b.n;
	return 0;
fail:
	free(b.p);
	free(bytes.p);
	return -1;
}
