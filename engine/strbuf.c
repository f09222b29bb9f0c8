#include "engine/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"

static int sk_strbuf_oom(sk_strbuf *b)
{
	b->oom = 1;
	return sk_fail("%s", _("out of memory"));
}

int sk_strbuf_add(sk_strbuf *b, const void *data, size_t n)
{
	if (b->oom)
		return -1;
	if (n + 1 > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n + 1) {
			if (cap > ((size_t)-1) / 2)
				return sk_strbuf_oom(b);
			cap *= 2;
		}
		char *s = realloc(b->s, cap);
		if (!s)
			return sk_strbuf_oom(b);
		b->s = s;
		b->cap = cap;
	}
	if (n)
		memcpy(b->s + b->len, data, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

int sk_strbuf_puts(sk_strbuf *b, const char *s)
{
	return sk_strbuf_add(b, s, strlen(s));
}

int sk_strbuf_putc(sk_strbuf *b, char c)
{
	return sk_strbuf_add(b, &c, 1);
}

int sk_strbuf_printf(sk_strbuf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return sk_strbuf_oom(b);
	if ((size_t)n < sizeof tmp)
		return sk_strbuf_add(b, tmp, (size_t)n);
	char *big = malloc((size_t)n + 1); /* longer than the stack buffer */
	if (!big)
		return sk_strbuf_oom(b);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = sk_strbuf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

void sk_strbuf_clear(sk_strbuf *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

void sk_strbuf_free(sk_strbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}
