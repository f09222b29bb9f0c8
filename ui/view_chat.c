/* The Chat view: sends a message with the whole conversation, streams the
 * answer into the scrollback, and draws it (ui/tui_conversation.h holds
 * the conversation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_colors.h"
#include "ui/tui_internal.h"
#include "ui/tui_text.h"
#include "ui/tui_views.h"

typedef struct {
	int scroll;             /* lines scrolled up from the bottom */
	unsigned long seen;     /* entries of the scrollback when last drawn */
} chat_view;

static chat_view *self(const tui *t)
{
	return t->priv[V_CHAT];
}

static int init(tui *t)
{
	t->priv[V_CHAT] = calloc(1, sizeof(chat_view));
	return t->priv[V_CHAT] ? 0 : -1;
}

static void free_view(tui *t)
{
	free(t->priv[V_CHAT]);
	t->priv[V_CHAT] = NULL;
}

static void line(tui *t, const char *text)
{
	tui_conversation *c = &t->conv;
	if (c->busy) {
		tui_flash(t, SK_LOG_WARN, "%s", _("an answer is still coming: wait, or stop it with Ctrl-C"));
		return;
	}
	if (!t->ses.model_loaded) {
		tui_flash(t, SK_LOG_ERROR, "%s", _("no model is loaded (start with --model PATH, or /model PATH)"));
		return;
	}
	if (tui_conv_push(c, SK_CHAT_USER, text) != 0)
		return;
	int with_adapter = t->ses.adapter_on && t->ses.adapter_path;
	size_t n = 0;
	sk_chat_msg *m = tui_conv_messages(c, c->turns, c->n, &n);
	sk_engine_cmd cmd = { .type = SK_ECMD_GENERATE };
	cmd.gen.n_answers = 1;
	cmd.gen.answers[0] = (sk_engine_answer){ S_CHAT, m, n, with_adapter };
	cmd.gen.sampling = t->o.sampling;
	cmd.gen.max_new = t->o.max_new;
	int rc = m ? sk_engine_submit(t->eng, &cmd) : -1;
	free(m);
	if (rc != 0) {
		tui_conv_pop(c);
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
		return;
	}
	tui_conv_note(c, E_USER, text);
	tui_conv_note(c, E_MODEL, "");
	c->answer = c->shown.n - 1;
	c->shown.v[c->answer].adapter = t->ses.adapter_path ? t->ses.adapter_on : -1;
	c->busy = 1;
}

static void stats_text(char *buf, size_t cap, const sk_engine_gen_info *g)
{
	snprintf(buf, cap, _("%d tokens, %.1f tokens/s; prompt %d tokens, %.0f tokens/s%s"), g->n_generated,
	         g->decode_tps, g->n_prompt, g->prefill_tps, g->stopped_by == 2 ? _(" (stopped)") : "");
}

static void event(tui *t, const sk_engine_event *ev)
{
	tui_conversation *c = &t->conv;
	if (ev->session != S_CHAT || !c->busy)
		return;
	if (ev->type == SK_EV_TOKEN) {
		if (c->answer < c->shown.n && ev->text)
			tui_text_append(&c->shown.v[c->answer], ev->text, strlen(ev->text));
		return;
	}
	if (ev->type != SK_EV_GEN_DONE && ev->type != SK_EV_ERROR)
		return;
	c->busy = 0;
	if (ev->type == SK_EV_ERROR) {
		tui_conv_pop(c);
		tui_conv_note(c, E_ERROR, ev->text ? ev->text : "?");
		return;
	}
	tui_text *ans = &c->shown.v[c->answer];
	size_t tl;
	const char *tr = sk_chat_trim(ans->text ? ans->text : "", ans->len, &tl);
	char *copy = strndup(tr, tl);
	if (copy) {
		tui_conv_push(c, SK_CHAT_ASSISTANT, copy);
		free(copy);
	}
	char buf[256];
	stats_text(buf, sizeof buf, &ev->gen);
	tui_conv_note(c, E_STATS, buf);
}

static int interrupt(tui *t)
{
	if (!t->conv.busy)
		return 0;
	sk_engine_cancel(t->eng, S_CHAT);
	return 1;
}

static int busy(const tui *t)
{
	return t->conv.busy;
}

static void page(tui *t, int lines)
{
	chat_view *v = self(t);
	v->scroll += lines;
	if (v->scroll < 0)
		v->scroll = 0;
}

/* ---- drawing ---- */

typedef struct {
	const sk_ui_line *line;
	attr_t a;
	int x;
} row_ref;

static void draw(tui *t, WINDOW *w)
{
	chat_view *v = self(t);
	const tui_scroll *sc = &t->conv.shown;
	werase(w);
	/* A new entry brings the view back to the bottom. */
	if (v->seen != t->conv.added) {
		v->seen = t->conv.added;
		v->scroll = 0;
	}
	int h = getmaxy(w), width = getmaxx(w);
	int tw = width - 4;
	/* Every line of the scrollback, then the window shows the last h. */
	size_t total = 0;
	for (size_t i = 0; i < sc->n; i++)
		total += tui_text_lines(t, &sc->v[i], tw)->n + (sc->v[i].kind == E_USER || sc->v[i].kind == E_MODEL);
	row_ref *rows = calloc(total ? total : 1, sizeof *rows);
	if (!rows)
		return;
	static const sk_ui_line you = { "", 0, 0, 0 };
	size_t k = 0;
	for (size_t i = 0; i < sc->n; i++) {
		tui_text *x = &sc->v[i];
		attr_t a = A_NORMAL;
		if (x->kind == E_USER || x->kind == E_MODEL)
			rows[k++] = (row_ref){ &you, x->kind == E_USER ? tui_attr(t, C_USER, A_BOLD) : tui_attr(t, C_MODEL, A_BOLD),
				               x->kind == E_USER ? E_USER : x->adapter < 0 ? E_MODEL : x->adapter ? 100 : 101 };
		if (x->kind == E_STATS || x->kind == E_NOTE)
			a = tui_attr(t, C_DIM, A_DIM);
		if (x->kind == E_ERROR)
			a = tui_attr(t, C_ERR, A_BOLD);
		const sk_ui_lines *l = &x->lines;
		for (size_t j = 0; j < l->n; j++)
			rows[k++] = (row_ref){ &l->v[j], a, -1 };
	}
	int maxscroll = total > (size_t)h ? (int)(total - (size_t)h) : 0;
	if (v->scroll > maxscroll)
		v->scroll = maxscroll;
	size_t first = total > (size_t)h ? total - (size_t)h - (size_t)v->scroll : 0;
	for (int r = 0; r < h && first + (size_t)r < total; r++) {
		row_ref *rr = &rows[first + r];
		if (rr->x >= 0) {
			const char *label = rr->x == E_USER ? _("You")
			                    : rr->x == 100  ? _("Model + adapter")
			                    : rr->x == 101  ? _("Model (base)")
			                                    : _("Model");
			tui_put_dir(w, r, 0, width, label, rr->a);
		} else {
			int col = rr->line->col < tw ? rr->line->col : 0;
			tui_put_visual(w, r, 2 + col, tw - col, rr->line->text, rr->a);
		}
	}
	if (sc->n == 0)
		tui_put(w, h / 2, 2, tw,
		        t->ses.model_loaded ? _("Type a message and press Enter. /help lists the commands.")
		                            : _("Loading the model ... (or start with --model PATH)"),
		        tui_attr(t, C_DIM, A_DIM));
	if (v->scroll > 0) {
		char buf[64];
		snprintf(buf, sizeof buf, _("[scrolled up %d lines: PgDn]"), v->scroll);
		tui_put(w, 0, width - sk_text_width(buf, strlen(buf)), width, buf, tui_attr(t, C_WARN, A_REVERSE));
	}
	free(rows);
}

const tui_view tui_view_chat = {
	.name = N_("Chat"),
	.prompt = N_("> "),
	.init = init,
	.free = free_view,
	.draw = draw,
	.event = event,
	.line = line,
	.interrupt = interrupt,
	.busy = busy,
	.page = page,
};
