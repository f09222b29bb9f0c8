/* The Gemma chat template: roles, validation, trimming, rendered text. */
#include "engine/text/chat_template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

int sk_role_parse(const char *s, sk_chat_role *out)
{
	if (!s) return sk_fail("%s", _("chat: missing role"));
	if (!strcmp(s, "system")) *out = SK_CHAT_SYSTEM;
	else if (!strcmp(s, "user")) *out = SK_CHAT_USER;
	else if (!strcmp(s, "assistant") || !strcmp(s, "model")) *out = SK_CHAT_ASSISTANT;
	else
		return sk_fail(_("chat: unknown role \"%.64s\" (expected system, user, assistant or model)"), s);
	return 0;
}

const char *sk_role_name(sk_chat_role r)
{
	switch (r) {
	case SK_CHAT_SYSTEM: return "system";
	case SK_CHAT_USER: return "user";
	case SK_CHAT_ASSISTANT: return "assistant";
	}
	return "?";
}

/* ---- UTF-8 and Python's whitespace ---- */

/* Length of the valid UTF-8 sequence at s[0..len) and its code point, or 0. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n) return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
	*cp = v;
	return n;
}

int sk_chat_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_next(p + i, len - i, &cp);
		if (!k) return 0;
		i += k;
	}
	return 1;
}

/* Python's str.isspace(): bidirectional class WS, B or S, or category Zs. */
static int py_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
	       c == 0x3000;
}

const char *sk_chat_trim(const char *s, size_t len, size_t *out_len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t a = 0, b = len;
	while (a < b) {
		size_t k = utf8_next(p + a, b - a, &cp);
		if (!k || !py_isspace(cp)) break;
		a += k;
	}
	while (b > a) {
		/* Step back to the first byte of the last character. */
		size_t st = b - 1;
		while (st > a && (p[st] & 0xc0) == 0x80 && b - st < 4) st--;
		size_t k = utf8_next(p + st, b - st, &cp);
		if (k != b - st || !py_isspace(cp)) break;
		b = st;
	}
	*out_len = b - a;
	return s + a;
}

/* ---- validation ---- */

int sk_chat_validate(const sk_chat_msg *msgs, size_t n)
{
	if (n == 0 || !msgs) return sk_fail("%s", _("chat: empty conversation"));
	size_t first = msgs[0].role == SK_CHAT_SYSTEM ? 1 : 0;
	if (first == 1 && n == 1)
		return sk_fail("%s", _("chat: message 1: a system message must be followed by a user message"));
	for (size_t i = 0; i < n; i++) {
		sk_chat_role r = msgs[i].role;
		if (r != SK_CHAT_SYSTEM && r != SK_CHAT_USER && r != SK_CHAT_ASSISTANT)
			return sk_fail(_("chat: message %zu: invalid role %d"), i + 1, (int)r);
		if (!msgs[i].content) return sk_fail(_("chat: message %zu: no content"), i + 1);
		if (!sk_chat_utf8_valid(msgs[i].content, strlen(msgs[i].content)))
			return sk_fail(_("chat: message %zu: content is not valid UTF-8"), i + 1);
		if (i < first) continue;
		if (r == SK_CHAT_SYSTEM)
			return sk_fail(_("chat: message %zu: a system message may only be the first message"), i + 1);
		int want_user = (i - first) % 2 == 0;
		if (i == first && r != SK_CHAT_USER)
			return sk_fail(_("chat: message %zu: the conversation must start with a user message "
			                 "(after an optional system message)"),
			               i + 1);
		if (want_user != (r == SK_CHAT_USER))
			return sk_fail(_("chat: message %zu: roles must alternate user/assistant (expected %s)"), i + 1,
			               want_user ? "user" : "assistant");
	}
	return 0;
}

/* ---- rendering: the text as runs of equal label ---- */

typedef struct {
	char *buf;
	size_t len, cap;
	sk_chat_span *runs;
	size_t nruns, runcap;
} chat_text;

static void chat_text_free(chat_text *t)
{
	free(t->buf);
	free(t->runs);
	memset(t, 0, sizeof *t);
}

static int chat_append(chat_text *t, const char *s, size_t n, uint8_t label)
{
	if (n > SIZE_MAX - 1 - t->len) return sk_fail("%s", _("chat: conversation too large"));
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1) {
			if (cap > SIZE_MAX / 2) {
				cap = t->len + n + 1;
				break;
			}
			cap *= 2;
		}
		char *b = realloc(t->buf, cap);
		if (!b) return sk_fail("%s", _("chat: out of memory"));
		t->buf = b;
		t->cap = cap;
	}
	if (t->nruns && t->runs[t->nruns - 1].label == label) {
		t->runs[t->nruns - 1].end += n;
	} else {
		if (t->nruns == t->runcap) {
			size_t cap = t->runcap ? t->runcap * 2 : 16;
			if (cap > SIZE_MAX / sizeof *t->runs) return sk_fail("%s", _("chat: out of memory"));
			sk_chat_span *r = realloc(t->runs, cap * sizeof *r);
			if (!r) return sk_fail("%s", _("chat: out of memory"));
			t->runs = r;
			t->runcap = cap;
		}
		t->runs[t->nruns++] = (sk_chat_span){t->len, t->len + n, label};
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return 0;
}

static int chat_lit(chat_text *t, const char *s, uint8_t label) { return chat_append(t, s, strlen(s), label); }

static int chat_build(const sk_chat_msg *msgs, size_t n, int add_generation_prompt, chat_text *t)
{
	const uint8_t P = SK_CHAT_LABEL_PROMPT, R = SK_CHAT_LABEL_RESPONSE;
	if (sk_chat_validate(msgs, n)) return -1;
	size_t first = msgs[0].role == SK_CHAT_SYSTEM ? 1 : 0;
	if (chat_lit(t, "<bos>", P)) goto fail;
	for (size_t i = first; i < n; i++) {
		int user = msgs[i].role == SK_CHAT_USER;
		uint8_t lab = user ? P : R;
		if (chat_lit(t, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n", P)) goto fail;
		/* The template adds the system text untrimmed, then "\n\n". */
		if (i == first && first == 1 &&
		    (chat_lit(t, msgs[0].content, P) || chat_lit(t, "\n\n", P)))
			goto fail;
		size_t len;
		const char *c = sk_chat_trim(msgs[i].content, strlen(msgs[i].content), &len);
		if (chat_append(t, c, len, lab) || chat_lit(t, "<end_of_turn>", lab) || chat_lit(t, "\n", P))
			goto fail;
	}
	if (add_generation_prompt && chat_lit(t, "<start_of_turn>model\n", P)) goto fail;
	return 0;
fail:
	chat_text_free(t);
	return -1;
}

int sk_chat_render_text(const sk_chat_msg *msgs, size_t n, int add_generation_prompt, char **out,
                        size_t *out_len)
{
	chat_text t = {0};
	if (chat_build(msgs, n, add_generation_prompt, &t)) return -1;
	free(t.runs);
	*out = t.buf;
	if (out_len) *out_len = t.len;
	return 0;
}

int sk_chat_render_spans(const sk_chat_msg *msgs, size_t n, int add_generation_prompt, char **out,
                         size_t *out_len, sk_chat_span **spans, size_t *nspans)
{
	chat_text t = {0};
	if (chat_build(msgs, n, add_generation_prompt, &t)) return -1;
	*out = t.buf;
	if (out_len) *out_len = t.len;
	*spans = t.runs;
	*nspans = t.nruns;
	return 0;
}
