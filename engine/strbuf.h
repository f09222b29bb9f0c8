/* A growable NUL-terminated string, for text built piece by piece (regular
 * expressions, model cards, SVG, decoded tokens). A failed allocation sets
 * `oom` and makes every later append a no-op, so a builder may check once
 * at the end. Start from { 0 }; s stays NULL until the first append. */
#ifndef SK_STRBUF_H
#define SK_STRBUF_H

#include <stddef.h>

#include "engine/error.h"

typedef struct {
	char *s;
	size_t len, cap;
	int oom;
} sk_strbuf;

/* Appends n bytes: 0, or -1 (sk_error() "out of memory", oom set). */
int sk_strbuf_add(sk_strbuf *b, const void *data, size_t n);
int sk_strbuf_puts(sk_strbuf *b, const char *s);
int sk_strbuf_putc(sk_strbuf *b, char c);
int sk_strbuf_printf(sk_strbuf *b, const char *fmt, ...) SK_PRINTF(2, 3);
/* Empties b, keeping its memory. */
void sk_strbuf_clear(sk_strbuf *b);
void sk_strbuf_free(sk_strbuf *b);

#endif
