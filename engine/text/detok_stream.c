/* Streaming decoder: the text of each generated token as soon as it forms
 * whole UTF-8 characters, so a terminal never sees half a character when
 * byte-fallback tokens split one across several ids. */
#include "engine/text/tokenizer.h"

#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/text/tokenizer_model.h"

/* Expected length of a sequence starting with lead byte c; 0 if c cannot
 * start one. */
static size_t sk_lead_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF)
		return 3;
	if (c >= 0xF0 && c <= 0xF4)
		return 4;
	return 0;
}

static int sk_put(char *out, size_t cap, size_t *o, const void *p, size_t n)
{
	if (*o + n + 1 > cap)
		return sk_fail(_("streaming decoder: output buffer too small"));
	memcpy(out + *o, p, n);
	*o += n;
	return 0;
}

/* Moves the complete characters at the front of s->pending to out; an
 * invalid byte becomes U+FFFD. With flush, an incomplete tail does too. */
static int sk_drain(sk_detok_stream *s, char *out, size_t cap, size_t *o, int flush)
{
	size_t i = 0;
	while (i < s->npending) {
		const unsigned char *p = s->pending + i;
		size_t avail = s->npending - i;
		size_t need = sk_lead_len(p[0]);
		if (need == 0) {
			if (sk_put(out, cap, o, "\xEF\xBF\xBD", 3) != 0)
				return -1;
			i++;
			continue;
		}
		size_t cl = sk_tok_utf8_len(p, avail);
		if (cl == need) {
			if (sk_put(out, cap, o, p, cl) != 0)
				return -1;
			i += cl;
			continue;
		}
		/* cl == 1 here: either incomplete so far, or invalid */
		int prefix_ok = 1;
		for (size_t k = 1; k < avail && prefix_ok; k++)
			prefix_ok = (p[k] & 0xC0) == 0x80;
		if (prefix_ok && avail >= 2) {
			/* the second byte's range rules (E0, ED, F0, F4) */
			unsigned c = p[0], d = p[1];
			if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) ||
			    (c == 0xF4 && d > 0x8F))
				prefix_ok = 0;
		}
		if (prefix_ok && avail < need && !flush)
			break; /* wait for the rest */
		if (sk_put(out, cap, o, "\xEF\xBF\xBD", 3) != 0)
			return -1;
		i++;
	}
	memmove(s->pending, s->pending + i, s->npending - i);
	s->npending -= i;
	return 0;
}

int sk_detok_stream_push(const sk_tokenizer *t, sk_detok_stream *s, int32_t id, char *out, size_t cap)
{
	if (cap == 0)
		return sk_fail(_("streaming decoder: output buffer too small"));
	out[0] = '\0';
	if (id < 0 || id >= t->n_vocab || !(t->flags[id] & SK_TOKF_PRESENT))
		return sk_fail(_("%s: token id %ld out of range"), t->name, (long)id);
	if (s->npending > 3)
		s->npending = 0; /* never more than 3 held: a corrupt state starts over */
	size_t o = 0;
	if (t->flags[id] & SK_TOKF_BYTE) {
		size_t len;
		const char *p = sk_tok_piece(t, id, &len);
		s->pending[s->npending++] = (unsigned char)sk_tok_byte_value(p, len);
		if (sk_drain(s, out, cap, &o, 0) != 0)
			return -1;
	} else {
		/* text pieces are whole UTF-8 strings (checked at load): whatever is
		 * pending can no longer complete */
		if (sk_drain(s, out, cap, &o, 1) != 0)
			return -1;
		char piece[SK_TOK_MAX_PIECE];
		size_t pl = sk_tok_decoded_piece(t, id, piece, sizeof piece);
		if (sk_put(out, cap, &o, piece, pl) != 0)
			return -1;
	}
	out[o] = '\0';
	return (int)o;
}

int sk_detok_stream_flush(sk_detok_stream *s, char *out, size_t cap)
{
	if (cap == 0)
		return sk_fail(_("streaming decoder: output buffer too small"));
	if (s->npending > 3)
		s->npending = 0;
	size_t o = 0;
	if (sk_drain(s, out, cap, &o, 1) != 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}
