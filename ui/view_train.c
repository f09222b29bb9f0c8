/* Train view (loss chart in braille cells, raw and smoothed, eval points;
 * lr and grad-norm sparklines; progress, ETA, memory bars) and Log view. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_internal.h"

static void series_push(tui_series *s, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		double *p = realloc(s->v, cap * sizeof *p);
		if (!p)
			return;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = v;
}

static void series_free(tui_series *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

void tui_train_free(tui *t)
{
	tui_series *all[] = { &t->t_step, &t->t_loss, &t->t_lr, &t->t_gn, &t->t_tps, &t->e_step, &t->e_loss };
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		series_free(all[i]);
	free(t->train_note);
	free(t->run_dir);
	free(t->eval_file);
	for (size_t i = 0; i < t->nlog; i++)
		free(t->log[i].text);
	free(t->log);
}

void tui_train_event(tui *t, const sk_engine_event *ev)
{
	switch (ev->type) {
	case SK_EV_TRAIN_STEP:
		/* A new run (step numbers going back) starts a new chart. */
		if (t->t_step.n && ev->step.step < t->t_step.v[t->t_step.n - 1]) {
			t->t_step.n = t->t_loss.n = t->t_lr.n = t->t_gn.n = t->t_tps.n = 0;
			t->e_step.n = t->e_loss.n = 0;
		}
		series_push(&t->t_step, (double)ev->step.step);
		series_push(&t->t_loss, ev->step.loss);
		series_push(&t->t_lr, ev->step.lr);
		series_push(&t->t_gn, ev->step.grad_norm);
		series_push(&t->t_tps, ev->step.tokens_per_s);
		t->last_step = ev->step;
		t->have_step = 1;
		break;
	case SK_EV_EVAL:
		if (ev->text) {
			/* A dataset file, not the run's held-out split. */
			free(t->eval_file);
			t->eval_file = strdup(ev->text);
			t->eval_base = ev->step.loss;
			t->eval_adapter = ev->step.eval_loss;
			tui_flash(t, SK_LOG_INFO, _("evaluation of %s: loss %.4f"), ev->text, ev->step.eval_loss);
			break;
		}
		series_push(&t->e_step, (double)ev->step.step);
		series_push(&t->e_loss, ev->step.eval_loss);
		t->last_step.eval_loss = ev->step.eval_loss;
		break;
	case SK_EV_TRAIN_STATE:
		t->train_state = ev->state;
		free(t->train_note);
		t->train_note = ev->text ? strdup(ev->text) : NULL;
		if (ev->state == SK_TRAIN_RUNNING && ev->text) {
			free(t->run_dir);
			t->run_dir = strdup(ev->text);
		}
		break;
	case SK_EV_ADAPTER_LOADED:
		t->adapter_live = ev->info.adapter_live;
		break;
	case SK_EV_MEMORY:
		memcpy(t->mem, ev->mem, sizeof t->mem);
		t->have_mem = 1;
		break;
	default:
		break;
	}
}

static void send(tui *t, sk_engine_cmd_type type, const char *path)
{
	sk_engine_cmd c = { .type = type, .path = path };
	if (sk_engine_submit(t->eng, &c) != 0)
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
}

void tui_train_key(tui *t, int ch)
{
	int active = t->train_state == SK_TRAIN_RUNNING || t->train_state == SK_TRAIN_PAUSED;
	switch (ch) {
	case 's':
		if (active)
			tui_flash(t, SK_LOG_WARN, "%s", _("a run is going: x stops it"));
		else if (t->train_state == SK_TRAIN_UNAVAILABLE)
			tui_flash(t, SK_LOG_WARN, "%s", _("training is not available in this build yet"));
		else
			tui_form_start(t);
		break;
	case 'p':
		if (active)
			send(t, t->train_state == SK_TRAIN_PAUSED ? SK_ECMD_TRAIN_RESUME : SK_ECMD_TRAIN_PAUSE, NULL);
		break;
	case 'x':
		if (active)
			send(t, SK_ECMD_TRAIN_STOP, NULL);
		break;
	case 'e':
		/* During a run its held-out split; otherwise the form's dataset. */
		if (!active && !tui_form_data(t)) {
			tui_flash(t, SK_LOG_WARN, "%s", _("type a dataset path in the form to evaluate on it"));
			break;
		}
		send(t, SK_ECMD_EVAL, tui_form_data(t));
		tui_flash(t, SK_LOG_INFO, "%s", active ? _("evaluating the held-out split ...") : _("evaluating ..."));
		break;
	case 'a': {
		/* The run's final adapter into Chat and Compare. */
		const char *run = t->run_dir ? t->run_dir : t->o.train_opts.out_dir;
		if (!run) {
			tui_flash(t, SK_LOG_WARN, "%s", _("no run yet: start one with s"));
			break;
		}
		/* The run writes its final adapter to RUN_DIR/adapter. */
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/adapter", run);
		tui_load_adapter(t, dir);
		break;
	}
	case 'm': send(t, SK_ECMD_MEMORY, NULL); break;
	default: break;
	}
}

static const char *state_name(int s)
{
	switch (s) {
	case SK_TRAIN_RUNNING: return _("running");
	case SK_TRAIN_PAUSED: return _("paused");
	case SK_TRAIN_DONE: return _("done");
	case SK_TRAIN_UNAVAILABLE: return _("not available");
	default: return _("idle");
	}
}

static void chart(tui *t, WINDOW *w, int y, int x, int h, int cw)
{
	const int axis = 8;
	int pw = cw - axis;
	if (pw < 4 || h < 2)
		return;
	size_t n = t->t_loss.n;
	double lo = INFINITY, hi = -INFINITY;
	for (size_t i = 0; i < n; i++)
		if (isfinite(t->t_loss.v[i])) {
			lo = fmin(lo, t->t_loss.v[i]);
			hi = fmax(hi, t->t_loss.v[i]);
		}
	for (size_t i = 0; i < t->e_loss.n; i++)
		if (isfinite(t->e_loss.v[i])) {
			lo = fmin(lo, t->e_loss.v[i]);
			hi = fmax(hi, t->e_loss.v[i]);
		}
	if (!(hi >= lo)) {
		const char *msg = t->train_state == SK_TRAIN_UNAVAILABLE
		                          ? _("training is not available in this build yet")
		                          : _("no training steps yet: s or Enter starts a run (the form above)");
		tui_put(w, y + h / 2, x + 2, cw - 2, msg, tui_attr(t, C_WARN, A_BOLD));
		return;
	}
	if (hi - lo < 1e-9) {
		hi += 0.5;
		lo -= 0.5;
	}
	double pad = (hi - lo) * 0.05;
	lo -= pad;
	hi += pad;
	double x0 = t->t_step.n ? t->t_step.v[0] : 0, x1 = t->t_step.n ? t->t_step.v[t->t_step.n - 1] : 1;
	if (t->last_step.total_steps > x1)
		x1 = (double)t->last_step.total_steps;
	if (x1 <= x0)
		x1 = x0 + 1;
	sk_braille c;
	if (sk_braille_init(&c, pw, h) != 0)
		return;
	double *sm = malloc((n ? n : 1) * sizeof *sm);
	/* layer 1 raw, 2 smoothed, 3 eval */
	sk_braille_plot(&c, t->t_step.v, t->t_loss.v, n, x0, x1, lo, hi, 1, 1);
	if (sm) {
		sk_smooth(t->t_loss.v, n, 0.9, sm);
		sk_braille_plot(&c, t->t_step.v, sm, n, x0, x1, lo, hi, 2, 1);
	}
	sk_braille_plot(&c, t->e_step.v, t->e_loss.v, t->e_loss.n, x0, x1, lo, hi, 3, 0);
	char *row = malloc((size_t)pw * 3 + 1);
	for (int r = 0; row && r < h; r++) {
		char lab[32];
		if (r == 0 || r == h - 1 || r == h / 2) {
			double v = hi - (hi - lo) * (r + 0.5) / h;
			snprintf(lab, sizeof lab, "%7.3f", v);
			tui_put(w, y + r, x, axis, lab, tui_attr(t, C_DIM, A_DIM));
		}
		mvwaddstr(w, y + r, x + axis - 1, "┤");
		/* Cell by cell, coloured by the highest layer that drew there. */
		sk_braille_row(&c, r, 1, row);
		const char *p = row;
		for (int cx = 0; cx < pw; cx++) {
			int len = *p == ' ' ? 1 : 3;
			int layer = c.layer[(size_t)r * pw + cx];
			attr_t a = layer == 3 ? tui_attr(t, C_EVAL, A_BOLD)
			           : layer == 2 ? tui_attr(t, C_SMOOTH, A_BOLD)
			                        : tui_attr(t, C_RAW, A_DIM);
			wattron(w, a);
			mvwaddnstr(w, y + r, x + axis + cx, p, len);
			wattroff(w, a);
			p += len;
		}
	}
	free(row);
	free(sm);
	sk_braille_free(&c);
}

void tui_train_draw(tui *t)
{
	WINDOW *w = t->body[V_TRAIN];
	werase(w);
	int h = getmaxy(w), width = getmaxx(w);
	const int side = 34;
	int cw = width - side - 1;
	char buf[256], b2[64];
	int top = 0;
	if (tui_form_shown(t))
		top = tui_form_draw(t, w, 0, 0, cw);
	snprintf(buf, sizeof buf, _("Loss  (%s raw, %s smoothed, %s eval)"), "·", "━", "●");
	tui_put(w, top, 0, cw, buf, tui_attr(t, C_MODEL, A_BOLD));
	chart(t, w, top + 1, 0, h - 3 - top, cw);
	snprintf(buf, sizeof buf, "%s", _("s start  p pause/resume  x stop  e evaluate  a load the run's adapter  m memory"));
	tui_put(w, h - 1, 0, width, buf, tui_attr(t, C_DIM, A_DIM));
	int sx = cw + 1, y = 0;
	for (int r = 0; r < h - 1; r++)
		mvwaddstr(w, r, cw, "│");
	const sk_engine_step_info *s = &t->last_step;
	snprintf(buf, sizeof buf, _("state     %s"), state_name(t->train_state));
	tui_put(w, y++, sx + 1, side - 1, buf, A_BOLD);
	if (t->have_step) {
		snprintf(buf, sizeof buf, _("step      %lld / %lld"), (long long)s->step, (long long)s->total_steps);
		tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		double frac = s->total_steps > 0 ? (double)s->step / (double)s->total_steps : 0;
		sk_meter(frac, side - 2, buf);
		tui_put_visual(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_BAR, A_REVERSE));
		if (isfinite(s->epoch)) {
			snprintf(buf, sizeof buf, _("epoch     %.2f"), s->epoch);
			tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		}
		snprintf(buf, sizeof buf, _("loss      %.4f"), s->loss);
		tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		if (isfinite(s->eval_loss) && t->e_loss.n) {
			snprintf(buf, sizeof buf, _("eval loss %.4f"), s->eval_loss);
			tui_put(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_EVAL, A_NORMAL));
		}
		snprintf(buf, sizeof buf, _("lr        %.3g"), s->lr);
		tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		sk_sparkline(t->t_lr.v, t->t_lr.n, side - 2, buf);
		tui_put_visual(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_SMOOTH, A_NORMAL));
		snprintf(buf, sizeof buf, _("grad norm %.3f"), s->grad_norm);
		tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		sk_sparkline(t->t_gn.v, t->t_gn.n, side - 2, buf);
		tui_put_visual(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_RAW, A_NORMAL));
		if (isfinite(s->tokens_per_s)) {
			snprintf(buf, sizeof buf, _("tokens/s  %.1f"), s->tokens_per_s);
			tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		}
		if (isfinite(s->elapsed_s)) {
			char b3[64];
			snprintf(buf, sizeof buf, _("elapsed   %s  ETA %s"), sk_fmt_duration(s->elapsed_s, b2, sizeof b2),
			         sk_fmt_duration(s->eta_s, b3, sizeof b3));
			tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		}
	} else if (t->train_note) {
		sk_ui_lines l = { 0 };
		if (sk_ui_layout(t->train_note, strlen(t->train_note), side - 2, t->o.bidi_app, t->o.rtl_ui, &l) == 0)
			tui_draw_lines(w, y, sx + 1, 4, side - 2, &l, 0, tui_attr(t, C_WARN, A_NORMAL));
		y += l.n < 4 ? (int)l.n : 4;
		sk_ui_lines_free(&l);
	}
	if (t->adapter_live && y < h - 2)
		tui_put(w, y++, sx + 1, side - 1, _("Chat uses the live adapter"), tui_attr(t, C_MODEL, A_NORMAL));
	if (t->eval_file && y < h - 3) {
		snprintf(buf, sizeof buf, _("eval %s"), t->eval_file);
		tui_put(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_EVAL, A_NORMAL));
		if (isfinite(t->eval_adapter) && t->eval_adapter != t->eval_base)
			snprintf(buf, sizeof buf, _("  adapter %.4f  base %.4f"), t->eval_adapter, t->eval_base);
		else
			snprintf(buf, sizeof buf, _("  loss %.4f"), t->eval_base);
		tui_put(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_EVAL, A_NORMAL));
	}
	y++;
	if (t->have_mem && y < h - 2) {
		tui_put(w, y++, sx + 1, side - 1, _("memory"), A_BOLD);
		static const int order[] = { SK_MEM_WEIGHTS, SK_MEM_ADAPTER, SK_MEM_OPTIMIZER, SK_MEM_ACTIVATIONS,
		                             SK_MEM_KV_CACHE, SK_MEM_PROCESS };
		const char *names[] = { _("weights"), _("adapter"), _("optimizer"), _("activations"), _("KV cache"),
		                        _("host RSS") };
		uint64_t mx = 1;
		for (int i = 0; i < SK_MEM_NCAT; i++)
			mx = t->mem[i] > mx ? t->mem[i] : mx;
		for (int k = 0; k < (int)(sizeof order / sizeof *order) && y < h - 1; k++) {
			int i = order[k];
			char bar[128];
			/* At least one eighth of a cell for anything above zero. */
			double frac = (double)t->mem[i] / (double)mx;
			if (t->mem[i] > 0 && frac < 1.0 / 80)
				frac = 1.0 / 80;
			sk_meter(frac, 9, bar);
			tui_put(w, y, sx + 1, 12, names[k], A_NORMAL);
			tui_put_visual(w, y, sx + 13, 9, bar, tui_attr(t, C_BAR, A_REVERSE));
			tui_put(w, y++, sx + 23, side - 23, sk_fmt_bytes(t->mem[i], b2, sizeof b2), A_NORMAL);
		}
	}
}

void tui_log_draw(tui *t)
{
	WINDOW *w = t->body[V_LOG];
	werase(w);
	int h = getmaxy(w), width = getmaxx(w);
	static const char *tags[] = { "debug", "info ", "warn ", "error" };
	int maxs = t->nlog > (size_t)h ? (int)(t->nlog - (size_t)h) : 0;
	if (t->log_scroll > maxs)
		t->log_scroll = maxs;
	size_t first = t->nlog > (size_t)h ? t->nlog - (size_t)h - (size_t)t->log_scroll : 0;
	for (int r = 0; r < h && first + (size_t)r < t->nlog; r++) {
		const tui_log_line *l = &t->log[first + r];
		int lv = l->level < 0 ? 0 : l->level > 3 ? 3 : l->level;
		attr_t a = lv == SK_LOG_ERROR ? tui_attr(t, C_ERR, A_BOLD) : lv == SK_LOG_WARN ? tui_attr(t, C_WARN, A_BOLD)
		                                                                      : tui_attr(t, C_DIM, A_DIM);
		tui_put(w, r, 0, 6, tags[lv], a);
		/* One line per message; a Persian message in visual order. */
		char *vis = NULL;
		const char *s = l->text;
		size_t n = strlen(s);
		if (t->o.bidi_app && sk_bidi_message_dir(s, n, t->o.rtl_ui) == SK_BIDI_RTL &&
		    sk_bidi_visual_line(s, n, SK_BIDI_RTL, &vis) == 0)
			s = vis;
		tui_put_visual(w, r, 6, width - 6, s, A_NORMAL);
		free(vis);
	}
	if (t->nlog == 0)
		tui_put(w, 0, 0, width, _("(no log messages yet)"), tui_attr(t, C_DIM, A_DIM));
}
