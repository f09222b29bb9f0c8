/* Window layout, header, status line, help box. */
#include <stdio.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_colors.h"
#include "ui/tui_frame.h"
#include "ui/tui_internal.h"
#include "ui/tui_text.h"
#include "ui/tui_views.h"

void tui_frame_free(tui *t)
{
	for (int i = 0; i < V_N; i++) {
		if (t->pbody[i])
			del_panel(t->pbody[i]);
		if (t->body[i])
			delwin(t->body[i]);
		t->pbody[i] = NULL;
		t->body[i] = NULL;
	}
	if (t->phelp)
		del_panel(t->phelp);
	t->phelp = NULL;
	WINDOW **ws[] = { &t->hdr, &t->status, &t->input, &t->helpw };
	for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) {
		if (*ws[i])
			delwin(*ws[i]);
		*ws[i] = NULL;
	}
}

void tui_frame_layout(tui *t)
{
	tui_frame_free(t);
	getmaxyx(stdscr, t->rows, t->cols);
	t->too_small = t->rows < TUI_MIN_ROWS || t->cols < TUI_MIN_COLS;
	clearok(curscr, TRUE);
	if (t->too_small)
		return;
	/* row 0 header, body, input line, status line */
	t->hdr = newwin(1, t->cols, 0, 0);
	t->input = newwin(1, t->cols, t->rows - 2, 0);
	t->status = newwin(1, t->cols, t->rows - 1, 0);
	for (int i = 0; i < V_N; i++) {
		t->body[i] = newwin(t->rows - 3, t->cols, 1, 0);
		t->pbody[i] = t->body[i] ? new_panel(t->body[i]) : NULL;
	}
	int hh = t->rows - 2 < 22 ? t->rows - 2 : 22, hw = t->cols - 2 < 78 ? t->cols - 2 : 78;
	t->helpw = newwin(hh, hw, (t->rows - hh) / 2, (t->cols - hw) / 2);
	t->phelp = t->helpw ? new_panel(t->helpw) : NULL;
}

void tui_frame_header(tui *t)
{
	WINDOW *w = t->hdr;
	werase(w);
	attr_t bar = tui_attr(t, C_TAB, A_REVERSE);
	wbkgdset(w, ' ' | bar);
	werase(w);
	int x = 0;
	tui_put(w, 0, x, t->cols, " sokhan ", bar | A_BOLD);
	x += 9;
	for (int v = 0; v < V_N; v++) {
		char buf[64];
		snprintf(buf, sizeof buf, " %d %s ", v + 1, _(tui_views[v]->name));
		attr_t a = v == t->view ? (t->mono ? A_NORMAL | A_BOLD : (attr_t)A_BOLD) : bar;
		if (v == t->view && !t->mono)
			a = A_BOLD;
		tui_put(w, 0, x, t->cols - x, buf, a);
		x += sk_text_width(buf, strlen(buf)) + 1;
	}
	const char *h = _("F1 help  F10 quit ");
	int hw = sk_text_width(h, strlen(h));
	tui_put(w, 0, t->cols - hw, hw, h, bar);
	wbkgdset(w, ' ');
}

void tui_frame_status(tui *t)
{
	WINDOW *w = t->status;
	const tui_session *s = &t->ses;
	werase(w);
	/* tui_put_dir: in a right-to-left UI a Persian line is right-aligned. */
	int level;
	const char *flash = tui_flash_shown(t, &level);
	if (flash) {
		attr_t a = level >= SK_LOG_ERROR ? tui_attr(t, C_ERR, A_REVERSE | A_BOLD)
		           : level == SK_LOG_WARN ? tui_attr(t, C_WARN, A_BOLD)
		                                  : A_NORMAL;
		tui_put_dir(w, 0, 0, t->cols, flash, a);
		return;
	}
	char buf[512];
	const char *ad = !s->adapter_path ? _("no adapter")
	                 : !s->adapter_on ? _("adapter off")
	                 : s->adapter_live ? _("adapter on (live, training)")
	                                   : _("adapter on");
	const char *busy = tui_views_busy(t) ? _("  generating") : "";
	const char *tr = s->adapter_live && s->adapter_on ? ""
	                 : s->train_state == SK_TRAIN_RUNNING ? _("  │ training")
	                 : s->train_state == SK_TRAIN_PAUSED  ? _("  │ training paused")
	                                                      : "";
	/* The model's path stays left-to-right inside a right-to-left line
	 * (LRI ... PDI). */
	snprintf(buf, sizeof buf, t->o.rtl_ui && s->model_loaded ? "\u2066%s\u2069 │ %s%s%s" : "%s │ %s%s%s",
	         s->model_loaded ? s->model_desc : _("no model"), ad, busy, tr);
	tui_put_dir(w, 0, 0, t->cols, buf, tui_attr(t, C_DIM, A_DIM));
}

void tui_frame_help(tui *t)
{
	WINDOW *w = t->helpw;
	werase(w);
	box(w, 0, 0);
	const char *text =
	        _("Chat (F2): type a message, Enter sends; Ctrl-C stops the answer.\n"
	          "  /adapter on|off|DIR, /system TEXT, /reset, /save FILE, /model PATH.\n"
	          "Compare (F3): a prompt is answered by the base model and by the\n"
	          "  adapter side by side, in one batch with the same seed.\n"
	          "Train (F4): the form starts a run, no flags needed. Down enters it;\n"
	          "  Up/Down/Tab move, type to edit, Left/Right pick the recipe (quick:\n"
	          "  30 steps for a first look; seed; seed-run); Enter or s starts.\n"
	          "Watch: loss chart (raw, smoothed, eval), step, ETA, lr, grad norm,\n"
	          "  memory bars. p pause/resume, x stop (a checkpoint is kept),\n"
	          "  e evaluate (the held-out split, or the form's dataset), m memory.\n"
	          "While it trains, Chat and Compare use the run's live adapter;\n"
	          "  when it is done, a loads its final adapter.\n"
	          "Log (F5): engine messages; PgUp/PgDn scroll.\n"
	          "Views: Tab / Shift-Tab, F2-F5, Alt-1..4 (1..4 in Train and Log).\n"
	          "F1 (or ? in Train/Log) help, F10 or Ctrl-D quit, Ctrl-Z suspends.\n"
	          "\n"
	          "Any key closes this help.");
	int hh = getmaxy(w), hw = getmaxx(w);
	sk_ui_lines l = { 0 };
	if (sk_ui_layout(text, strlen(text), hw - 4, t->o.bidi_app, t->o.rtl_ui, &l) == 0)
		tui_draw_lines(w, 1, 2, hh - 2, hw - 4, &l, 0, A_NORMAL);
	sk_ui_lines_free(&l);
	tui_put(w, 0, 2, 60, _(" Help "), A_BOLD);
}

void tui_frame_too_small(tui *t)
{
	erase();
	const char *m = _("The terminal is too small: sokhan needs 80 x 24.");
	char buf[128];
	snprintf(buf, sizeof buf, _("Now %d x %d. Enlarge the window, or press F10 to quit."), t->cols, t->rows);
	mvaddnstr(t->rows / 2 - 1 > 0 ? t->rows / 2 - 1 : 0, 0, m, t->cols);
	mvaddnstr(t->rows / 2, 0, buf, t->cols);
	wnoutrefresh(stdscr);
}
