/* Texts with cached layout, the scrollback list, and drawing of laid-out
 * lines into curses windows. */
#include <stdlib.h>
#include <string.h>

#include "ui/bidi.h"
#include "ui/tui_internal.h"
#include "ui/tui_text.h"

void tui_text_init(tui_text *x)
{
	memset(x, 0, sizeof *x);
	x->lines_width = -1;
}

int tui_text_append(tui_text *x, const char *s, size_t n)
{
	if (x->cap - x->len < n + 1) {
		size_t cap = x->cap ? x->cap : 256;
		while (cap - x->len < n + 1)
			cap *= 2;
		char *v = realloc(x->text, cap);
		if (!v)
			return -1;
		x->text = v;
		x->cap = cap;
	}
	memcpy(x->text + x->len, s, n);
	x->len += n;
	x->text[x->len] = '\0';
	x->lines_width = -1;
	return 0;
}

void tui_text_set(tui_text *x, const char *s)
{
	x->len = 0;
	if (x->text)
		x->text[0] = '\0';
	x->lines_width = -1;
	tui_text_append(x, s, strlen(s));
}

void tui_text_free(tui_text *x)
{
	free(x->text);
	sk_ui_lines_free(&x->lines);
	memset(x, 0, sizeof *x);
	x->lines_width = -1;
}

const sk_ui_lines *tui_text_lines(tui *t, tui_text *x, int width)
{
	if (width < 1)
		width = 1;
	if (x->lines_width != width || x->lines_len != x->len) {
		sk_ui_lines_free(&x->lines);
		if (sk_ui_layout(x->text ? x->text : "", x->len, width, t->o.bidi_app, t->o.rtl_ui, &x->lines) != 0)
			sk_ui_lines_free(&x->lines);
		x->lines_width = width;
		x->lines_len = x->len;
	}
	return &x->lines;
}

tui_text *tui_scroll_push(tui_scroll *s, int kind, const char *text)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		tui_text *v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return NULL;
		s->v = v;
		s->cap = cap;
	}
	tui_text *x = &s->v[s->n++];
	memset(x, 0, sizeof *x);
	x->kind = kind;
	x->lines_width = -1;
	tui_text_append(x, text, strlen(text));
	return x;
}

void tui_scroll_free(tui_scroll *s)
{
	for (size_t i = 0; i < s->n; i++)
		tui_text_free(&s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static int put_app, put_rtl, put_shape;

void tui_text_shaping(int on)
{
	put_shape = on;
}

void tui_text_mode(int bidi_app, int rtl_ui)
{
	put_app = bidi_app;
	put_rtl = rtl_ui;
}

void tui_put_visual(WINDOW *w, int y, int x, int width, const char *s, attr_t a)
{
	if (width <= 0 || !s)
		return;
	/* Clip by display width: cut at the last byte whose prefix fits. */
	size_t n = strlen(s);
	if (sk_text_width(s, n) > width) {
		/* Longest prefix that fits, at a code point boundary (prefix widths
		 * only grow). Lines are short: a linear walk is enough. */
		size_t fit = 0;
		for (size_t i = 1; i <= n; i++) {
			if (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
				continue;
			if (sk_text_width(s, i) > width)
				break;
			fit = i;
		}
		n = fit;
	}
	wattron(w, a);
	mvwaddnstr(w, y, x, s, (int)n);
	wattroff(w, a);
}

/* s in visual order (malloc'd into *vis when it had to be reordered);
 * *rtl says whether its paragraph is right-to-left. */
static const char *visual(const char *s, char **vis, int *rtl)
{
	*vis = NULL;
	*rtl = 0;
	if (!put_app || !s)
		return s;
	size_t n = strlen(s);
	int ascii = 1;
	for (size_t i = 0; i < n && ascii; i++)
		ascii = (unsigned char)s[i] < 0x80;
	if (ascii)
		return s;
	int dir = sk_bidi_message_dir(s, n, put_rtl);
	*rtl = dir == SK_BIDI_RTL;
	if (sk_bidi_visual_line_shaped(s, n, dir, put_shape, vis) != 0) {
		*vis = NULL;
		return s;
	}
	return *vis;
}

void tui_put(WINDOW *w, int y, int x, int width, const char *s, attr_t a)
{
	char *vis;
	int rtl;
	const char *v = visual(s, &vis, &rtl);
	/* A right-to-left line longer than its box keeps its start (the right end). */
	if (rtl && v && sk_text_width(v, strlen(v)) > width)
		tui_put_dir(w, y, x, width, s, a);
	else
		tui_put_visual(w, y, x, width, v, a);
	free(vis);
}

void tui_put_dir(WINDOW *w, int y, int x, int width, const char *s, attr_t a)
{
	char *vis;
	int rtl;
	const char *v = visual(s, &vis, &rtl);
	if (!v || width <= 0) {
		free(vis);
		return;
	}
	int tw = sk_text_width(v, strlen(v));
	if (rtl && put_rtl) {
		/* Right-aligned; when too wide, the cells on the left are cut. */
		const char *p = v;
		while (*p && tw > width) {
			const char *q = p + 1;
			while (*q && ((unsigned char)*q & 0xC0) == 0x80)
				q++;
			tw -= sk_text_width(p, (size_t)(q - p));
			p = q;
		}
		tui_put_visual(w, y, x + width - tw, tw, p, a);
	} else {
		tui_put_visual(w, y, x, width, v, a);
	}
	free(vis);
}

void tui_draw_lines(WINDOW *w, int y, int x, int h, int width, const sk_ui_lines *l, size_t first, attr_t a)
{
	for (int r = 0; r < h && first + (size_t)r < l->n; r++) {
		const sk_ui_line *ln = &l->v[first + r];
		int col = ln->col < width ? ln->col : 0;
		tui_put_visual(w, y + r, x + col, width - col, ln->text, a);
	}
}
