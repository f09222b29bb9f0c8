/* The TUI's application loop: sets the TUI up and tears it down on every
 * exit path, polls the terminal, the engine's event fd and the signal
 * self-pipe together, routes keys and engine events to the views through
 * their hooks (ui/tui_views.h), and redraws. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/i18n.h"
#include "ui/tui_colors.h"
#include "ui/tui_commands.h"
#include "ui/tui_dump.h"
#include "ui/tui_frame.h"
#include "ui/tui_input.h"
#include "ui/tui_internal.h"
#include "ui/tui_term.h"
#include "ui/tui_text.h"
#include "ui/tui_views.h"

static void redraw(tui *t)
{
	if (t->too_small) {
		tui_frame_too_small(t);
		doupdate();
	} else {
		const tui_view *v = tui_views[t->view];
		for (int i = 0; i < V_N; i++)
			if (t->pbody[i])
				(i == t->view ? show_panel : hide_panel)(t->pbody[i]);
		v->draw(t, t->body[t->view]);
		if (t->pbody[t->view])
			top_panel(t->pbody[t->view]);
		if (t->help_on && t->phelp) {
			tui_frame_help(t);
			show_panel(t->phelp);
			top_panel(t->phelp);
		} else if (t->phelp) {
			hide_panel(t->phelp);
		}
		tui_frame_header(t);
		tui_frame_status(t);
		if (v->prompt) {
			tui_input_draw(t, _(v->prompt), v->busy && v->busy(t));
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
		tui_dump(t->o.dump_path);
	t->dirty = 0;
}

/* ---- the input line's submit path ---- */

/* A line sent with Enter: a /command, or the shown view's message. */
static void submit(tui *t, const char *line)
{
	const char *text;
	if (tui_command(t, line, &text) || !text)
		return;
	const tui_view *v = tui_views[t->view];
	if (v->line)
		v->line(t, text);
}

/* Ctrl-C (and SIGINT): stops the shown view's generation, else the
 * conversation's (it streams on while other views are shown), else clears
 * the input line. */
static void interrupt(tui *t)
{
	const tui_view *v = tui_views[t->view];
	if (v->interrupt && v->interrupt(t))
		return;
	if (t->view != V_CHAT && tui_views[V_CHAT]->interrupt(t))
		return;
	tui_input_clear(t);
}

/* ---- events and keys ---- */

static void engine_events(tui *t)
{
	sk_engine_event ev;
	while (sk_engine_poll(t->eng, &ev)) {
		tui_session_event(t, &ev);
		tui_views_event(t, &ev);
		sk_engine_event_free(&ev);
		t->dirty = 1;
	}
}

static void suspend(tui *t)
{
	tui_term_suspend(t->o.bidi_app);
	tui_frame_layout(t);
	t->dirty = 1;
}

static void key(tui *t, int ch)
{
	t->dirty = 1;
	if (ch == KEY_RESIZE) {
		tui_frame_layout(t);
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
	const tui_view *v = tui_views[t->view];
	int typing = v->prompt != NULL;
	if (t->esc_pending) {
		t->esc_pending = 0;
		if (ch >= '1' && ch <= '4') {
			tui_show_view(t, ch - '1');
			return;
		}
		if (typing) {
			tui_input_key(27);
			tui_input_key(ch);
		}
		return;
	}
	if (v->key && v->key(t, ch))
		return;
	switch (ch) {
	case '\t': tui_show_view(t, t->view + 1); return;
	case KEY_BTAB: tui_show_view(t, t->view - 1); return;
	case KEY_F(1): t->help_on = 1; return;
	case KEY_F(2): case KEY_F(3): case KEY_F(4): case KEY_F(5): tui_show_view(t, ch - KEY_F(2)); return;
	case KEY_PPAGE:
	case KEY_NPAGE:
		if (v->page)
			v->page(t, (t->rows - 5) * (ch == KEY_PPAGE ? 1 : -1));
		return;
	case 27:
		t->esc_pending = 1;
		return;
	default: break;
	}
	if (typing) {
		if (ch == 3)
			interrupt(t);
		else
			tui_input_key(ch);
		return;
	}
	if (ch >= '1' && ch <= '4')
		tui_show_view(t, ch - '1');
	else if (ch == '?')
		t->help_on = 1;
	else if (ch == 'q' || ch == 4)
		t->quit = 1;
}

static void on_signals(tui *t)
{
	unsigned char s[16];
	int n = tui_term_caught(s, (int)sizeof s);
	for (int i = 0; i < n; i++) {
		if (s[i] == SIGTSTP)
			suspend(t);
		else if (s[i] == SIGCONT)
			t->dirty = 1;
		else if (s[i] == SIGINT)
			interrupt(t);
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

/* Everything the TUI holds but the engine; safe at any stage of set-up. */
static void free_state(tui *t)
{
	tui_views_free(t);
	tui_conv_free(&t->conv);
	tui_session_free(t);
	tui_log_free(&t->log);
	tui_flash_free(t);
	free(t);
}

static void loop(tui *t, int sig_fd)
{
	while (!t->quit) {
		if (t->dirty)
			redraw(t);
		struct pollfd p[3] = {
			{ STDIN_FILENO, POLLIN, 0 }, { sk_engine_fd(t->eng), POLLIN, 0 }, { sig_fd, POLLIN, 0 }
		};
		int timeout = t->flash.text ? 250 : 1000;
		int r = poll(p, 3, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (p[2].revents & POLLIN)
			on_signals(t);
		if (p[1].revents & POLLIN)
			engine_events(t);
		if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
			t->quit = 1;
		int ch;
		while (!t->quit && (ch = getch()) != ERR)
			key(t, ch);
		/* A lone Esc (nothing followed it), for the views that use one. */
		const tui_view *v = tui_views[t->view];
		if (t->esc_pending && v->esc) {
			t->esc_pending = 0;
			v->esc(t);
			t->dirty = 1;
		}
		if (tui_flash_expire(t))
			t->dirty = 1;
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
	tui_session_init(t);
	t->view = o->start_view >= 0 && o->start_view < V_N ? o->start_view : V_CHAT;
	t->conv.system = o->system ? strdup(o->system) : NULL;
	if (tui_views_init(t) != 0) {
		fprintf(stderr, "%s\n", _("sokhan: error: out of memory"));
		free_state(t);
		return 1;
	}
	tui_text_mode(o->bidi_app, o->rtl_ui);
	tui_text_shaping(o->bidi_app && o->shape);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "%s\n", _("sokhan: error: the TUI needs a terminal (try `sokhan chat` for pipes)"));
		free_state(t);
		return 1;
	}
	sk_engine_opts eo = { .device = o->device, .threads = o->threads, .quant_nf4 = o->quant_nf4,
	                      .token_delay_us = o->token_delay_us };
	t->eng = sk_engine_start(&eo);
	int sig_fd = t->eng ? tui_term_signals() : -1;
	if (sig_fd < 0) {
		fprintf(stderr, _("sokhan: error: %s\n"), sk_error());
		sk_engine_stop(t->eng);
		free_state(t);
		return 1;
	}
	if (tui_term_start(o->bidi_app) != 0) {
		tui_term_close();
		sk_engine_stop(t->eng);
		free_state(t);
		return 1;
	}
	tui_colors_init(t);
	tui_frame_layout(t);
	tui_input_init(t, submit);
	start_engine_work(t);
	t->dirty = 1;
	loop(t, sig_fd);
	tui_input_end();
	tui_frame_free(t);
	tui_term_restore();
	sk_engine_stop(t->eng);
	tui_term_close();
	free_state(t);
	return 0;
}
