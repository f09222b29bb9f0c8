/* Texts with their layout cached for one width, the scrollback list, and
 * the drawing of text into curses windows: logical order in, visual order
 * on the screen in the app bidi mode (ui/bidi.h, ui/widgets.h). */
#ifndef SK_UI_TUI_TEXT_H
#define SK_UI_TUI_TEXT_H

#include <stddef.h>

#include "ui/tui_curses.h"
#include "ui/widgets.h"

typedef struct tui tui;

/* A growing text with its layout cached for one width. */
typedef struct {
	int kind;               /* what it is in a scrollback (tui_conversation.h) */
	int adapter;            /* an answer: 1 adapter on, 0 base, -1 no adapter loaded */
	char *text;
	size_t len, cap;
	sk_ui_lines lines;
	int lines_width;        /* -1: not laid out */
	size_t lines_len;
} tui_text;

typedef struct {
	tui_text *v;
	size_t n, cap;
} tui_scroll;

/* An empty text (not yet laid out). */
void tui_text_init(tui_text *x);
int tui_text_append(tui_text *x, const char *s, size_t n);
void tui_text_set(tui_text *x, const char *s);
void tui_text_free(tui_text *x);
const sk_ui_lines *tui_text_lines(tui *t, tui_text *x, int width);
tui_text *tui_scroll_push(tui_scroll *s, int kind, const char *text);
void tui_scroll_free(tui_scroll *s);
/* Draws lines [first, first+h) of a list at (y, x) in a box of w cells. */
void tui_draw_lines(WINDOW *w, int y, int x, int h, int width, const sk_ui_lines *l, size_t first, attr_t a);
/* Draws one string of UTF-8 (logical order: reordered to visual order in
 * the app bidi mode) clipped to width cells. */
void tui_put(WINDOW *w, int y, int x, int width, const char *s, attr_t a);
/* The same, right-aligned in its width when the text is right-to-left in
 * a right-to-left UI (a status line, a label of a Persian UI). */
void tui_put_dir(WINDOW *w, int y, int x, int width, const char *s, attr_t a);
/* Draws a string already in visual order. */
void tui_put_visual(WINDOW *w, int y, int x, int width, const char *s, attr_t a);
/* How tui_put lays out text: the bidi mode and the UI's direction. */
void tui_text_mode(int bidi_app, int rtl_ui);
/* Arabic-script presentation forms in the visual text (--shape). */
void tui_text_shaping(int on);

#endif
