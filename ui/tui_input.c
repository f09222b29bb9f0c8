/* GNU readline inside curses through its callback interface
 * (docs/rtl-terminal.md §4): bytes from wgetch are fed one at a time;
 * readline never touches the terminal; our redisplay draws the edit buffer
 * into the input window (bidi-reordered) and places the cursor by mapping
 * rl_point to a visual column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_colors.h"
#include "ui/tui_input.h"
#include "ui/tui_internal.h"
#include "ui/tui_text.h"

static tui *g_tui;
static void (*g_submit)(tui *t, const char *line);
static unsigned char pending[16];
static int npending, pos;

static int rl_getc_fn(FILE *f)
{
	(void)f;
	if (pos < npending)
		return pending[pos++];
	return EOF;
}

static int rl_avail_fn(void)
{
	return pos < npending;
}

static void rl_redisplay_fn(void)
{
	if (g_tui)
		g_tui->dirty = 1;
}

static void on_line(char *line)
{
	tui *t = g_tui;
	if (!line) {
		/* Ctrl-D on an empty line. */
		t->quit = 1;
		return;
	}
	if (*line)
		add_history(line);
	g_submit(t, line);
	free(line);
}

int tui_input_init(tui *t, void (*submit)(tui *t, const char *line))
{
	g_tui = t;
	g_submit = submit;
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_change_environment = 0;
	rl_prep_term_function = NULL;   /* curses owns the terminal modes */
	rl_deprep_term_function = NULL;
	rl_getc_function = rl_getc_fn;
	rl_input_available_hook = rl_avail_fn;
	rl_redisplay_function = rl_redisplay_fn;
	rl_outstream = fopen("/dev/null", "w");
	rl_variable_bind("bell-style", "none");
	rl_variable_bind("input-meta", "on");
	rl_variable_bind("output-meta", "on");
	rl_variable_bind("convert-meta", "off");
	rl_variable_bind("enable-bracketed-paste", "off");
	rl_bind_key('\t', rl_insert);  /* Tab never reaches readline (it switches views) */
	using_history();
	stifle_history(500);
	rl_callback_handler_install("", on_line);
	return 0;
}

void tui_input_end(void)
{
	rl_callback_handler_remove();
	if (rl_outstream && rl_outstream != stdout) {
		fclose(rl_outstream);
		rl_outstream = NULL;
	}
	clear_history();
	g_tui = NULL;
	g_submit = NULL;
}

static void feed(const char *bytes, int n)
{
	for (int i = 0; i < n; i++) {
		pending[0] = (unsigned char)bytes[i];
		npending = 1;
		pos = 0;
		while (pos < npending)
			rl_callback_read_char();
	}
}

void tui_input_key(int ch)
{
	const char *seq = NULL;
	switch (ch) {
	case KEY_LEFT: seq = "\033[D"; break;
	case KEY_RIGHT: seq = "\033[C"; break;
	case KEY_UP: seq = "\033[A"; break;
	case KEY_DOWN: seq = "\033[B"; break;
	case KEY_HOME: seq = "\033[H"; break;
	case KEY_END: seq = "\033[F"; break;
	case KEY_DC: seq = "\033[3~"; break;
	case KEY_BACKSPACE: seq = "\177"; break;
	case KEY_ENTER: seq = "\r"; break;
	default: break;
	}
	if (seq) {
		feed(seq, (int)strlen(seq));
	} else if (ch >= 0 && ch < 256) {
		char c = (char)ch;
		feed(&c, 1);
	}
}

void tui_input_clear(tui *t)
{
	rl_replace_line("", 0);
	rl_point = rl_end = 0;
	t->dirty = 1;
}

void tui_input_draw(tui *t, const char *prompt, int busy)
{
	WINDOW *w = t->input;
	werase(w);
	attr_t pa = tui_attr(t, C_USER, A_BOLD);
	tui_put(w, 0, 0, t->cols, prompt, pa);
	int x0 = sk_text_width(prompt, strlen(prompt));
	int avail = t->cols - x0 - 1;
	const char *buf = rl_line_buffer ? rl_line_buffer : "";
	size_t len = (size_t)rl_end;
	int col = 0, lw = 0, rtl = 0;
	if (len == 0 && busy) {
		tui_put(w, 0, x0, avail, _("(answering: Ctrl-C stops)"), tui_attr(t, C_DIM, A_DIM));
		wmove(w, 0, x0);
		return;
	}
	if (sk_ui_cursor_col(buf, len, (size_t)rl_point, t->o.bidi_app, t->o.rtl_ui, &col, &lw, &rtl) != 0) {
		tui_put(w, 0, x0, avail, buf, A_NORMAL);
		wmove(w, 0, x0);
		return;
	}
	sk_ui_lines l = { 0 };
	if (sk_ui_layout(buf, len, 100000, t->o.bidi_app, t->o.rtl_ui, &l) != 0 || l.n == 0) {
		sk_ui_lines_free(&l);
		return;
	}
	const char *vis = l.v[0].text;
	int start = 0; /* first cell of the line shown */
	int pad = 0;   /* RTL lines are right-aligned */
	if (lw + 1 <= avail) {
		if (rtl && t->o.bidi_app)
			pad = avail - lw;
	} else {
		/* Scroll horizontally so the cursor shows. */
		start = col - avail / 2;
		if (start < 0)
			start = 0;
		if (start > lw - avail + 1)
			start = lw - avail + 1;
	}
	/* Skip `start` cells of the visual text. */
	size_t off = 0, n = strlen(vis);
	while (off < n && start > 0 && sk_text_width(vis, off) < start) {
		off++;
		while (off < n && ((unsigned char)vis[off] & 0xC0) == 0x80)
			off++;
	}
	tui_put_visual(w, 0, x0 + pad, avail - pad, vis + off, A_NORMAL);
	int cx = x0 + pad + col - start;
	if (cx < x0)
		cx = x0;
	if (cx >= t->cols)
		cx = t->cols - 1;
	wmove(w, 0, cx);
	sk_ui_lines_free(&l);
}
