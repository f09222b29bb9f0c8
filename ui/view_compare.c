/* The Compare view: one prompt answered by the base model and by the
 * adapter side by side, from one batched generation with the same
 * sampling and seed. */
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
	tui_text prompt;
	tui_text col[2];        /* base, adapter */
	int busy[2];
	sk_engine_gen_info info[2];
	int has_info[2];
} compare_view;

static compare_view *self(const tui *t)
{
	return t->priv[V_COMPARE];
}

static int init(tui *t)
{
	compare_view *v = calloc(1, sizeof *v);
	if (!v)
		return -1;
	tui_text_init(&v->prompt);
	tui_text_init(&v->col[0]);
	tui_text_init(&v->col[1]);
	t->priv[V_COMPARE] = v;
	return 0;
}

static void free_view(tui *t)
{
	compare_view *v = self(t);
	if (!v)
		return;
	tui_text_free(&v->prompt);
	tui_text_free(&v->col[0]);
	tui_text_free(&v->col[1]);
	free(v);
	t->priv[V_COMPARE] = NULL;
}

static int busy(const tui *t)
{
	const compare_view *v = self(t);
	return v->busy[0] || v->busy[1];
}

static void line(tui *t, const char *text)
{
	compare_view *v = self(t);
	if (busy(t)) {
		tui_flash(t, SK_LOG_WARN, "%s", _("the comparison is still running: wait, or stop it with Ctrl-C"));
		return;
	}
	if (!t->ses.model_loaded) {
		tui_flash(t, SK_LOG_ERROR, "%s", _("no model is loaded (start with --model PATH, or /model PATH)"));
		return;
	}
	if (!t->ses.adapter_path) {
		tui_flash(t, SK_LOG_ERROR, "%s", _("no adapter to compare with: /adapter DIR loads one"));
		return;
	}
	sk_chat_msg user = { SK_CHAT_USER, text };
	size_t n = 0;
	sk_chat_msg *m = tui_conv_messages(&t->conv, &user, 1, &n);
	sk_engine_cmd c = { .type = SK_ECMD_GENERATE };
	/* One batched generation, the same sampling (and seed) on both sides. */
	c.gen.n_answers = 2;
	c.gen.answers[0] = (sk_engine_answer){ S_CMP_BASE, m, n, 0 };
	c.gen.answers[1] = (sk_engine_answer){ S_CMP_ADAPTER, m, n, 1 };
	c.gen.sampling = t->o.sampling;
	c.gen.max_new = t->o.max_new;
	int rc = m ? sk_engine_submit(t->eng, &c) : -1;
	free(m);
	if (rc != 0) {
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
		return;
	}
	tui_text_set(&v->prompt, text);
	for (int i = 0; i < 2; i++) {
		tui_text_set(&v->col[i], "");
		v->busy[i] = 1;
		v->has_info[i] = 0;
	}
}

static void event(tui *t, const sk_engine_event *ev)
{
	compare_view *v = self(t);
	if (ev->session != S_CMP_BASE && ev->session != S_CMP_ADAPTER)
		return;
	int i = ev->session - S_CMP_BASE;
	switch (ev->type) {
	case SK_EV_TOKEN:
		if (ev->text)
			tui_text_append(&v->col[i], ev->text, strlen(ev->text));
		break;
	case SK_EV_GEN_DONE:
		v->busy[i] = 0;
		v->info[i] = ev->gen;
		v->has_info[i] = 1;
		break;
	case SK_EV_ERROR:
		v->busy[i] = 0;
		tui_text_set(&v->col[i], ev->text ? ev->text : "?");
		break;
	default: break;
	}
}

static int interrupt(tui *t)
{
	if (!busy(t))
		return 0;
	sk_engine_cancel(t->eng, S_CMP_BASE);
	sk_engine_cancel(t->eng, S_CMP_ADAPTER);
	return 1;
}

static void draw(tui *t, WINDOW *w)
{
	compare_view *v = self(t);
	werase(w);
	int h = getmaxy(w), width = getmaxx(w);
	const sk_ui_lines *pl = tui_text_lines(t, &v->prompt, width - 2);
	int ph = pl->n > 3 ? 3 : (int)pl->n;
	tui_put(w, 0, 0, width, _("Prompt"), tui_attr(t, C_USER, A_BOLD));
	if (v->prompt.len == 0)
		tui_put(w, 1, 2, width - 2,
		        t->ses.adapter_path ? _("Type a prompt: the base model and the adapter answer it side by side.")
		                            : _("Load an adapter to compare with: /adapter DIR"),
		        tui_attr(t, C_DIM, A_DIM));
	else
		tui_draw_lines(w, 1, 2, ph, width - 2, pl, pl->n > 3 ? pl->n - 3 : 0, A_NORMAL);
	int top = 1 + (ph > 0 ? ph : 1) + 1;
	int colw = (width - 3) / 2;
	int ch = h - top - 2;
	for (int i = 0; i < 2; i++) {
		int x = i == 0 ? 0 : colw + 3;
		char head[256];
		if (i == 0)
			snprintf(head, sizeof head, "%s", _("base"));
		else
			snprintf(head, sizeof head, _("adapter %s"), t->ses.adapter_path ? t->ses.adapter_path : _("(none)"));
		tui_put(w, top - 1, x, colw, head, tui_attr(t, C_MODEL, A_BOLD));
		const sk_ui_lines *l = tui_text_lines(t, &v->col[i], colw);
		size_t first = l->n > (size_t)ch ? l->n - (size_t)ch : 0;
		tui_draw_lines(w, top, x, ch, colw, l, first, A_NORMAL);
		char foot[160];
		if (v->has_info[i])
			snprintf(foot, sizeof foot, _("%d tokens, %.1f tokens/s%s"), v->info[i].n_generated,
			         v->info[i].decode_tps, v->info[i].stopped_by == 2 ? _(" (stopped)") : "");
		else
			snprintf(foot, sizeof foot, "%s", v->busy[i] ? _("generating ...") : "");
		tui_put(w, h - 1, x, colw, foot, tui_attr(t, C_DIM, A_DIM));
	}
	for (int y = top - 1; y < h; y++)
		mvwaddstr(w, y, colw + 1, "│");
}

const tui_view tui_view_compare = {
	.name = N_("Compare"),
	.prompt = N_("compare> "),
	.init = init,
	.free = free_view,
	.draw = draw,
	.event = event,
	.line = line,
	.interrupt = interrupt,
	.busy = busy,
};
