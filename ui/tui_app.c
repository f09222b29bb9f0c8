/* The TUI's application loop: terminal setup and restore (bidi mode
 * escapes, suspend, signals, every exit path), window layout and resize,
 * header, status line, help, screen dump, and the poll() loop over the
 * terminal, the engine's event fd and a signal self-pipe. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_internal.h"

static int sig_pipe[2] = { -1, -1 };
static int curses_on, bidi_sent;

double tui_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

attr_t tui_attr(const tui *t, int pair, attr_t mono)
{
	return t->mono ? mono : (attr_t)COLOR_PAIR(pair) | (mono & A_BOLD);
}

void tui_log(tui *t, int level, const char *text)
{
	if (t->nlog == t->caplog) {
		size_t cap = t->caplog ? t->caplog * 2 : 64;
		tui_log_line *v = realloc(t->log, cap * sizeof *v);
		if (!v)
			return;
		t->log = v;
		t->caplog = cap;
	}
	/* One screen line per message. */
	char *s = strdup(text ? text : "");
	if (!s)
		return;
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	t->log[t->nlog++] = (tui_log_line){ level, s };
}

void tui_flash(tui *t, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	free(t->flash);
	t->flash = strdup(buf);
	t->flash_level = level;
	t->flash_until = tui_now() + (level >= SK_LOG_WARN ? 6 : 3);
	/* Warnings and errors stay in the Log view; confirmations only flash. */
	if (level >= SK_LOG_WARN)
		tui_log(t, level, buf);
	t->dirty = 1;
}

/* ---- terminal modes (docs/rtl-terminal.md §0, §1.4) ---- */

static void raw_write(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Explicit bidi mode, LTR paragraphs, no arrow swapping; block cursor. */
static void bidi_enter(const tui *t)
{
	if (t->o.bidi_app) {
		raw_write("\033[8l\033[1 k\033[?1243l");
		bidi_sent = 1;
	}
}

static void bidi_leave(void)
{
	if (bidi_sent) {
		raw_write("\033[8h\033[0 k\033[?1243h");
		bidi_sent = 0;
	}
}

static void restore_terminal(void)
{
	if (curses_on) {
		endwin();
		curses_on = 0;
	}
	bidi_leave();
}

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	if (sig_pipe[1] >= 0 && write(sig_pipe[1], &c, 1) < 0) {
		/* nothing to do: the pipe is full, a signal is already waiting */
	}
	errno = saved;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGTSTP, &sa, NULL);
	sigaction(SIGCONT, &sa, NULL);
}

static void init_colors(tui *t)
{
	const char *nc = getenv("NO_COLOR");
	t->mono = (nc && *nc) || !has_colors();
	if (t->mono)
		return;
	start_color();
	use_default_colors();
	init_pair(C_TAB, COLOR_BLACK, COLOR_CYAN);
	init_pair(C_USER, COLOR_CYAN, -1);
	init_pair(C_MODEL, COLOR_GREEN, -1);
	init_pair(C_DIM, COLOR_WHITE, -1);
	init_pair(C_ERR, COLOR_RED, -1);
	init_pair(C_WARN, COLOR_YELLOW, -1);
	init_pair(C_RAW, COLOR_BLUE, -1);
	init_pair(C_SMOOTH, COLOR_CYAN, -1);
	init_pair(C_EVAL, COLOR_MAGENTA, -1);
	init_pair(C_BAR, COLOR_GREEN, -1);
}

/* ---- layout ---- */

static void free_windows(tui *t)
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

static void layout(tui *t)
{
	free_windows(t);
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

/* ---- drawing ---- */

static const char *view_name(int v)
{
	switch (v) {
	case V_CHAT: return _("Chat");
	case V_COMPARE: return _("Compare");
	case V_TRAIN: return _("Train");
	default: return _("Log");
	}
}

static void draw_header(tui *t)
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
		snprintf(buf, sizeof buf, " %d %s ", v + 1, view_name(v));
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

static void draw_status(tui *t)
{
	WINDOW *w = t->status;
	werase(w);
	/* tui_put_dir: in a right-to-left UI a Persian line is right-aligned. */
	if (t->flash && tui_now() < t->flash_until) {
		attr_t a = t->flash_level >= SK_LOG_ERROR ? tui_attr(t, C_ERR, A_REVERSE | A_BOLD)
		           : t->flash_level == SK_LOG_WARN ? tui_attr(t, C_WARN, A_BOLD)
		                                           : A_NORMAL;
		tui_put_dir(w, 0, 0, t->cols, t->flash, a);
		return;
	}
	char buf[512];
	const char *ad = !t->adapter_path ? _("no adapter")
	                 : !t->adapter_on ? _("adapter off")
	                 : t->adapter_live ? _("adapter on (live, training)")
	                                   : _("adapter on");
	const char *busy = t->chat_busy || t->cmp_busy[0] || t->cmp_busy[1] ? _("  generating") : "";
	const char *tr = t->adapter_live && t->adapter_on ? ""
	                 : t->train_state == SK_TRAIN_RUNNING ? _("  │ training")
	                 : t->train_state == SK_TRAIN_PAUSED  ? _("  │ training paused")
	                                                      : "";
	/* The model's path stays left-to-right inside a right-to-left line
	 * (LRI ... PDI). */
	snprintf(buf, sizeof buf, t->o.rtl_ui && t->model_loaded ? "\u2066%s\u2069 │ %s%s%s" : "%s │ %s%s%s",
	         t->model_loaded ? t->model_desc : _("no model"), ad, busy, tr);
	tui_put_dir(w, 0, 0, t->cols, buf, tui_attr(t, C_DIM, A_DIM));
}

static void draw_help(tui *t)
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

int tui_dump(tui *t, const char *path)
{
	(void)t;
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return -1;
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	int rows, cols;
	getmaxyx(curscr, rows, cols);
	if (rows <= 0 || cols <= 0 || cols > 4096) {
		fclose(f);
		remove(tmp);
		return -1;
	}
	char *line = malloc((size_t)cols * 32 + 1);
	for (int y = 0; line && y < rows; y++) {
		size_t n = 0, keep = 0;
		mbstate_t st;
		memset(&st, 0, sizeof st);
		for (int x = 0; x < cols; x++) {
			cchar_t cc;
			wchar_t wc[CCHARW_MAX + 1];
			attr_t a;
			short pair;
			if (mvwin_wch(curscr, y, x, &cc) == ERR || getcchar(&cc, wc, &a, &pair, NULL) == ERR)
				continue;
			for (int k = 0; wc[k] && k < CCHARW_MAX; k++) {
				char mb[MB_LEN_MAX];
				size_t m = wcrtomb(mb, wc[k], &st);
				if (m == (size_t)-1)
					continue;
				memcpy(line + n, mb, m);
				n += m;
			}
			if (!(wc[0] == L' ' && wc[1] == 0))
				keep = n;
		}
		fprintf(f, "%.*s\n", (int)keep, line);
	}
	free(line);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

static void redraw(tui *t)
{
	if (t->too_small) {
		erase();
		const char *m = _("The terminal is too small: sokhan needs 80 x 24.");
		char buf[128];
		snprintf(buf, sizeof buf, _("Now %d x %d. Enlarge the window, or press F10 to quit."), t->cols, t->rows);
		mvaddnstr(t->rows / 2 - 1 > 0 ? t->rows / 2 - 1 : 0, 0, m, t->cols);
		mvaddnstr(t->rows / 2, 0, buf, t->cols);
		wnoutrefresh(stdscr);
		doupdate();
	} else {
		for (int i = 0; i < V_N; i++)
			if (t->pbody[i])
				(i == t->view ? show_panel : hide_panel)(t->pbody[i]);
		switch (t->view) {
		case V_CHAT: tui_chat_draw(t); break;
		case V_COMPARE: tui_compare_draw(t); break;
		case V_TRAIN: tui_train_draw(t); break;
		default: tui_log_draw(t); break;
		}
		if (t->pbody[t->view])
			top_panel(t->pbody[t->view]);
		if (t->help_on && t->phelp) {
			draw_help(t);
			show_panel(t->phelp);
			top_panel(t->phelp);
		} else if (t->phelp) {
			hide_panel(t->phelp);
		}
		draw_header(t);
		draw_status(t);
		if (t->view == V_CHAT || t->view == V_COMPARE) {
			tui_input_draw(t);
			curs_set(t->help_on ? 0 : 1);
		} else {
			werase(t->input);
			curs_set(0);
		}
		wnoutrefresh(t->hdr);
		wnoutrefresh(t->status);
		update_panels();
		/* The input line last, so the cursor ends there. */
		wnoutrefresh(t->input);
		doupdate();
	}
	if (t->o.dump_path)
		tui_dump(t, t->o.dump_path);
	t->dirty = 0;
}

/* ---- events and keys ---- */

static void engine_events(tui *t)
{
	sk_engine_event ev;
	while (sk_engine_poll(t->eng, &ev)) {
		switch (ev.type) {
		case SK_EV_MODEL_LOADED:
			t->model_loaded = 1;
			{
				/* the file or folder name only: a long path would push the
				 * adapter state off the status line */
				const char *path = ev.text ? ev.text : "?";
				size_t len = strlen(path);
				while (len > 1 && path[len - 1] == '/')
					len--;
				size_t start = len;
				while (start > 0 && path[start - 1] != '/')
					start--;
				char name[256];
				snprintf(name, sizeof name, "%.*s", (int)(len - start), path + start);
				snprintf(t->model_desc, sizeof t->model_desc, _("%s (%s, %d layers)"), name, ev.info.arch,
				         ev.info.n_layers);
			}
			{
				sk_engine_cmd c = { .type = SK_ECMD_MEMORY };
				sk_engine_submit(t->eng, &c);
			}
			break;
		case SK_EV_LOG: tui_log(t, ev.level, ev.text); break;
		case SK_EV_ERROR: tui_flash(t, SK_LOG_ERROR, "%s", ev.text ? ev.text : "?"); break;
		case SK_EV_ADAPTER_LOADED:
			if (ev.info.adapter_live)
				tui_flash(t, SK_LOG_INFO, _("Chat and Compare now use the adapter of the run %s as it trains"),
				          ev.text ? ev.text : "");
			else
				tui_flash(t, SK_LOG_INFO, ev.text ? _("adapter %s loaded") : _("adapter unloaded%s"),
				          ev.text ? ev.text : "");
			{
				sk_engine_cmd c = { .type = SK_ECMD_MEMORY };
				sk_engine_submit(t->eng, &c);
			}
			break;
		default: break;
		}
		tui_chat_event(t, &ev);
		tui_train_event(t, &ev);
		sk_engine_event_free(&ev);
		t->dirty = 1;
	}
}

static void suspend(tui *t)
{
	restore_terminal();
	/* SIGSTOP, not SIGTSTP: the kernel drops SIGTSTP for an orphaned
	 * process group (a TUI started by a script), SIGSTOP always stops. */
	raise(SIGSTOP);
	/* Continued. */
	install_signals();
	bidi_enter(t);
	refresh();
	curses_on = 1;
	layout(t);
	t->dirty = 1;
}

static void set_view(tui *t, int v)
{
	t->view = ((v % V_N) + V_N) % V_N;
	if (t->view == V_TRAIN) {
		sk_engine_cmd c = { .type = SK_ECMD_MEMORY };
		sk_engine_submit(t->eng, &c);
	}
	t->dirty = 1;
}

static void key(tui *t, int ch)
{
	t->dirty = 1;
	if (ch == KEY_RESIZE) {
		layout(t);
		return;
	}
	if (ch == KEY_F(10)) {
		t->quit = 1;
		return;
	}
	if (ch == 26) { /* Ctrl-Z */
		suspend(t);
		return;
	}
	if (t->too_small) {
		if (ch == 'q' || ch == 4 || ch == 3)
			t->quit = 1;
		return;
	}
	if (t->help_on) {
		t->help_on = 0;
		return;
	}
	int typing = t->view == V_CHAT || t->view == V_COMPARE;
	if (t->esc_pending) {
		t->esc_pending = 0;
		if (ch >= '1' && ch <= '4') {
			set_view(t, ch - '1');
			return;
		}
		if (typing) {
			tui_input_key(t, 27);
			tui_input_key(t, ch);
		}
		return;
	}
	/* The Train view's form takes its keys first (Tab too, while in it). */
	if (t->view == V_TRAIN && tui_form_key(t, ch))
		return;
	switch (ch) {
	case '\t': set_view(t, t->view + 1); return;
	case KEY_BTAB: set_view(t, t->view - 1); return;
	case KEY_F(1): t->help_on = 1; return;
	case KEY_F(2): case KEY_F(3): case KEY_F(4): case KEY_F(5): set_view(t, ch - KEY_F(2)); return;
	case KEY_PPAGE:
	case KEY_NPAGE: {
		int d = (t->rows - 5) * (ch == KEY_PPAGE ? 1 : -1);
		if (t->view == V_LOG) {
			t->log_scroll += d;
			if (t->log_scroll < 0)
				t->log_scroll = 0;
		} else {
			tui_chat_scroll(t, d);
		}
		return;
	}
	case 27:
		t->esc_pending = 1;
		return;
	default: break;
	}
	if (typing) {
		if (ch == 3)
			tui_chat_interrupt(t);
		else
			tui_input_key(t, ch);
		return;
	}
	if (ch >= '1' && ch <= '4')
		set_view(t, ch - '1');
	else if (ch == '?')
		t->help_on = 1;
	else if (ch == 'q' || ch == 4)
		t->quit = 1;
	else if (t->view == V_TRAIN)
		tui_train_key(t, ch);
}

static void on_sig(tui *t)
{
	unsigned char s[16];
	ssize_t n = read(sig_pipe[0], s, sizeof s);
	for (ssize_t i = 0; i < n; i++) {
		if (s[i] == SIGTSTP)
			suspend(t);
		else if (s[i] == SIGCONT)
			t->dirty = 1;
		else if (s[i] == SIGINT)
			tui_chat_interrupt(t);
		else
			t->quit = 1;
	}
}

static void start_engine_work(tui *t)
{
	if (t->o.model) {
		sk_engine_cmd c = { .type = SK_ECMD_LOAD_MODEL, .path = t->o.model };
		sk_engine_submit(t->eng, &c);
	}
	if (t->o.adapter) {
		sk_engine_cmd c = { .type = SK_ECMD_LOAD_ADAPTER, .path = t->o.adapter };
		sk_engine_submit(t->eng, &c);
	}
	if (t->o.metrics) {
		sk_engine_cmd c = { .type = SK_ECMD_REPLAY_METRICS, .path = t->o.metrics };
		sk_engine_submit(t->eng, &c);
	}
	if (t->o.train) {
		sk_engine_cmd c = { .type = SK_ECMD_TRAIN_START };
		c.train = t->o.train_opts;
		sk_engine_submit(t->eng, &c);
	}
}

int sk_tui_run(const sk_tui_opts *o)
{
	tui *t = calloc(1, sizeof *t);
	if (!t) {
		fprintf(stderr, "%s\n", _("sokhan: error: out of memory"));
		return 1;
	}
	t->o = *o;
	t->train_state = sk_engine_can_train() ? SK_TRAIN_IDLE : SK_TRAIN_UNAVAILABLE;
	t->view = o->start_view >= 0 && o->start_view < V_N ? o->start_view : V_CHAT;
	t->system = o->system ? strdup(o->system) : NULL;
	t->cmp_prompt.lines_width = t->cmp_col[0].lines_width = t->cmp_col[1].lines_width = -1;
	tui_form_init(t);
	tui_text_mode(o->bidi_app, o->rtl_ui);
	tui_text_shaping(o->bidi_app && o->shape);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "%s\n", _("sokhan: error: the TUI needs a terminal (try `sokhan chat` for pipes)"));
		free(t->system);
		free(t);
		return 1;
	}
	sk_engine_opts eo = { .threads = o->threads, .quant_nf4 = o->quant_nf4, .token_delay_us = o->token_delay_us };
	t->eng = sk_engine_start(&eo);
	if (!t->eng || pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		fprintf(stderr, _("sokhan: error: %s\n"), sk_error());
		sk_engine_stop(t->eng);
		free(t->system);
		free(t);
		return 1;
	}
	atexit(restore_terminal);
	install_signals();
	/* The mode switch goes before curses' first clear (rtl-terminal.md §1.1). */
	bidi_enter(t);
	if (!getenv("ESCDELAY"))
		set_escdelay(25);
	if (!initscr()) {
		bidi_leave();
		sk_engine_stop(t->eng);
		free(t->system);
		free(t);
		return 1;
	}
	curses_on = 1;
	raw();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	init_colors(t);
	layout(t);
	tui_input_init(t);
	start_engine_work(t);
	t->dirty = 1;
	double last_flash_check = 0;
	while (!t->quit) {
		if (t->dirty)
			redraw(t);
		struct pollfd p[3] = {
			{ STDIN_FILENO, POLLIN, 0 }, { sk_engine_fd(t->eng), POLLIN, 0 }, { sig_pipe[0], POLLIN, 0 }
		};
		int timeout = t->flash ? 250 : 1000;
		int r = poll(p, 3, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (p[2].revents & POLLIN)
			on_sig(t);
		if (p[1].revents & POLLIN)
			engine_events(t);
		if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
			t->quit = 1;
		int ch;
		while (!t->quit && (ch = getch()) != ERR)
			key(t, ch);
		/* A lone Esc (nothing followed it): leaves the Train view's form. */
		if (t->esc_pending && t->view == V_TRAIN) {
			t->esc_pending = 0;
			t->form.field = -1;
			t->dirty = 1;
		}
		double now = tui_now();
		if (t->flash && now >= t->flash_until) {
			free(t->flash);
			t->flash = NULL;
			t->dirty = 1;
		}
		if (now - last_flash_check > 1)
			last_flash_check = now;
	}
	tui_input_end();
	free_windows(t);
	restore_terminal();
	sk_engine_stop(t->eng);
	tui_chat_free(t);
	tui_train_free(t);
	free(t->flash);
	free(t);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	return 0;
}
