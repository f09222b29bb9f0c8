/* Decoding ids to text as Gemma's decoder chain does it: "▁" becomes a
 * space, runs of <0xXX> byte tokens become their bytes (a run that is not
 * valid UTF-8 becomes one U+FFFD per byte, like HF's ByteFallback), and the
 * pieces are joined. */
#include "engine/text/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/strbuf.h"
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

static int sk_flush_bytes(sk_strbuf *b, const unsigned char *bytes, size_t n)
{
	if (sk_tok_valid_utf8((const char *)bytes, n))
		return sk_strbuf_add(b, bytes, n);
	for (size_t i = 0; i < n; i++)
		if (sk_strbuf_add(b, "\xEF\xBF\xBD", 3) != 0)
			return -1;
	return 0;
}

int sk_tokenizer_decode(const sk_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                        size_t *out_len)
{
	*out = NULL;
	if (out_len)
		*out_len = 0;
	sk_strbuf b = { 0 };
	sk_strbuf bytes = { 0 };
	if (sk_strbuf_add(&b, "", 0) != 0)
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
			if (sk_strbuf_add(&bytes, piece, 1) != 0)
				goto fail;
			continue;
		}
		if (bytes.len) {
			if (sk_flush_bytes(&b, (unsigned char *)bytes.s, bytes.len) != 0)
				goto fail;
			sk_strbuf_clear(&bytes);
		}
		if (sk_strbuf_add(&b, piece, pl) != 0)
			goto fail;
	}
	if (bytes.len && sk_flush_bytes(&b, (unsigned char *)bytes.s, bytes.len) != 0)
		goto fail;
	free(bytes.s);
	*out = b.s;
	if (out_len)
		*out_len = b.len;
	return 0;
fail:
	free(b.s);
	free(bytes.s);
	return -1;
}
