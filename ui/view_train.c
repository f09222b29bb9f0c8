/* The Train view: a run's loss chart in braille cells (raw, smoothed,
 * eval points), lr and grad-norm sparklines, progress, ETA and memory bars;
 * the form for a new run above the chart (ui/tui_train_form.c) and the
 * keys that start, pause, stop and evaluate a run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_colors.h"
#include "ui/tui_internal.h"
#include "ui/tui_text.h"
#include "ui/tui_train_form.h"
#include "ui/tui_views.h"

typedef struct {
	double *v;
	size_t n, cap;
} series;

typedef struct {
	series t_step, t_loss, t_lr, t_gn, t_tps, e_step, e_loss;
	sk_engine_step_info last_step;
	int have_step;
	char *train_note;
	uint64_t mem[SK_MEM_NCAT];
	int have_mem;
	tui_train_form form;
	char *run_dir;          /* the last run started (its adapter: RUN_DIR/adapter) */
	char *eval_file;        /* last evaluation of a dataset file */
	double eval_base, eval_adapter;
} train_view;

static train_view *self(const tui *t)
{
	return t->priv[V_TRAIN];
}

static void series_push(series *s, double v)
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

static int init(tui *t)
{
	train_view *v = calloc(1, sizeof *v);
	if (!v)
		return -1;
	tui_train_form_init(&v->form, &t->o.train_opts);
	t->priv[V_TRAIN] = v;
	return 0;
}

static void free_view(tui *t)
{
	train_view *v = self(t);
	if (!v)
		return;
	series *all[] = { &v->t_step, &v->t_loss, &v->t_lr, &v->t_gn, &v->t_tps, &v->e_step, &v->e_loss };
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		free(all[i]->v);
	free(v->train_note);
	free(v->run_dir);
	free(v->eval_file);
	free(v);
	t->priv[V_TRAIN] = NULL;
}

static void event(tui *t, const sk_engine_event *ev)
{
	train_view *v = self(t);
	switch (ev->type) {
	case SK_EV_TRAIN_STEP:
		/* A new run (step numbers going back) starts a new chart. */
		if (v->t_step.n && ev->step.step < v->t_step.v[v->t_step.n - 1]) {
			v->t_step.n = v->t_loss.n = v->t_lr.n = v->t_gn.n = v->t_tps.n = 0;
			v->e_step.n = v->e_loss.n = 0;
		}
		series_push(&v->t_step, (double)ev->step.step);
		series_push(&v->t_loss, ev->step.loss);
		series_push(&v->t_lr, ev->step.lr);
		series_push(&v->t_gn, ev->step.grad_norm);
		series_push(&v->t_tps, ev->step.tokens_per_s);
		v->last_step = ev->step;
		v->have_step = 1;
		break;
	case SK_EV_EVAL:
		if (ev->text) {
			/* A dataset file, not the run's held-out split. */
			free(v->eval_file);
			v->eval_file = strdup(ev->text);
			v->eval_base = ev->step.loss;
			v->eval_adapter = ev->step.eval_loss;
			tui_flash(t, SK_LOG_INFO, _("evaluation of %s: loss %.4f"), ev->text, ev->step.eval_loss);
			break;
		}
		series_push(&v->e_step, (double)ev->step.step);
		series_push(&v->e_loss, ev->step.eval_loss);
		v->last_step.eval_loss = ev->step.eval_loss;
		break;
	case SK_EV_TRAIN_STATE:
		free(v->train_note);
		v->train_note = ev->text ? strdup(ev->text) : NULL;
		if (ev->state == SK_TRAIN_RUNNING && ev->text) {
			free(v->run_dir);
			v->run_dir = strdup(ev->text);
		}
		break;
	case SK_EV_MEMORY:
		memcpy(v->mem, ev->mem, sizeof v->mem);
		v->have_mem = 1;
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

static void start(tui *t, train_view *v)
{
	char *run = tui_train_form_start(t, &v->form);
	if (run) {
		free(v->run_dir);
		v->run_dir = run;
	}
}

/* The form takes its keys first (Tab too, while in it), then the run's. */
static int key(tui *t, int ch)
{
	train_view *v = self(t);
	int state = t->ses.train_state;
	if (tui_train_form_shown(state)) {
		int k = tui_train_form_key(&v->form, ch);
		if (k == 2)
			start(t, v);
		if (k)
			return 1;
	}
	int active = state == SK_TRAIN_RUNNING || state == SK_TRAIN_PAUSED;
	const char *data = tui_train_form_data(&v->form);
	switch (ch) {
	case 's':
		if (active)
			tui_flash(t, SK_LOG_WARN, "%s", _("a run is going: x stops it"));
		else if (state == SK_TRAIN_UNAVAILABLE)
			tui_flash(t, SK_LOG_WARN, "%s", _("training is not available in this build yet"));
		else
			start(t, v);
		return 1;
	case 'p':
		if (active)
			send(t, state == SK_TRAIN_PAUSED ? SK_ECMD_TRAIN_RESUME : SK_ECMD_TRAIN_PAUSE, NULL);
		return 1;
	case 'x':
		if (active)
			send(t, SK_ECMD_TRAIN_STOP, NULL);
		return 1;
	case 'e':
		/* During a run its held-out split; otherwise the form's dataset. */
		if (!active && !data) {
			tui_flash(t, SK_LOG_WARN, "%s", _("type a dataset path in the form to evaluate on it"));
			return 1;
		}
		send(t, SK_ECMD_EVAL, data);
		tui_flash(t, SK_LOG_INFO, "%s", active ? _("evaluating the held-out split ...") : _("evaluating ..."));
		return 1;
	case 'a': {
		/* The run's final adapter into Chat and Compare. */
		const char *run = v->run_dir ? v->run_dir : t->o.train_opts.out_dir;
		if (!run) {
			tui_flash(t, SK_LOG_WARN, "%s", _("no run yet: start one with s"));
			return 1;
		}
		/* The run writes its final adapter to RUN_DIR/adapter. */
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/adapter", run);
		tui_session_load_adapter(t, dir);
		return 1;
	}
	case 'm': send(t, SK_ECMD_MEMORY, NULL); return 1;
	default: return 0;
	}
}

/* A lone Esc leaves the form. */
static void esc(tui *t)
{
	self(t)->form.field = -1;
}

/* The memory bars are fresh when the view shows. */
static void focus(tui *t)
{
	sk_engine_cmd c = { .type = SK_ECMD_MEMORY };
	sk_engine_submit(t->eng, &c);
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

static void chart(tui *t, const train_view *v, WINDOW *w, int y, int x, int h, int cw)
{
	const int axis = 8;
	int pw = cw - axis;
	if (pw < 4 || h < 2)
		return;
	size_t n = v->t_loss.n;
	double lo = INFINITY, hi = -INFINITY;
	for (size_t i = 0; i < n; i++)
		if (isfinite(v->t_loss.v[i])) {
			lo = fmin(lo, v->t_loss.v[i]);
			hi = fmax(hi, v->t_loss.v[i]);
		}
	for (size_t i = 0; i < v->e_loss.n; i++)
		if (isfinite(v->e_loss.v[i])) {
			lo = fmin(lo, v->e_loss.v[i]);
			hi = fmax(hi, v->e_loss.v[i]);
		}
	if (!(hi >= lo)) {
		const char *msg = t->ses.train_state == SK_TRAIN_UNAVAILABLE
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
	double x0 = v->t_step.n ? v->t_step.v[0] : 0, x1 = v->t_step.n ? v->t_step.v[v->t_step.n - 1] : 1;
	if (v->last_step.total_steps > x1)
		x1 = (double)v->last_step.total_steps;
	if (x1 <= x0)
		x1 = x0 + 1;
	sk_braille c;
	if (sk_braille_init(&c, pw, h) != 0)
		return;
	double *sm = malloc((n ? n : 1) * sizeof *sm);
	/* layer 1 raw, 2 smoothed, 3 eval */
	sk_braille_plot(&c, v->t_step.v, v->t_loss.v, n, x0, x1, lo, hi, 1, 1);
	if (sm) {
		sk_smooth(v->t_loss.v, n, 0.9, sm);
		sk_braille_plot(&c, v->t_step.v, sm, n, x0, x1, lo, hi, 2, 1);
	}
	sk_braille_plot(&c, v->e_step.v, v->e_loss.v, v->e_loss.n, x0, x1, lo, hi, 3, 0);
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

static void draw(tui *t, WINDOW *w)
{
	const train_view *v = self(t);
	werase(w);
	int h = getmaxy(w), width = getmaxx(w);
	const int side = 34;
	int cw = width - side - 1;
	char buf[256], b2[64];
	int top = 0;
	if (tui_train_form_shown(t->ses.train_state))
		top = tui_train_form_draw(t, &v->form, w, 0, 0, cw);
	snprintf(buf, sizeof buf, _("Loss  (%s raw, %s smoothed, %s eval)"), "·", "━", "●");
	tui_put(w, top, 0, cw, buf, tui_attr(t, C_MODEL, A_BOLD));
	chart(t, v, w, top + 1, 0, h - 3 - top, cw);
	snprintf(buf, sizeof buf, "%s", _("s start  p pause/resume  x stop  e evaluate  a load the run's adapter  m memory"));
	tui_put(w, h - 1, 0, width, buf, tui_attr(t, C_DIM, A_DIM));
	int sx = cw + 1, y = 0;
	for (int r = 0; r < h - 1; r++)
		mvwaddstr(w, r, cw, "│");
	const sk_engine_step_info *s = &v->last_step;
	snprintf(buf, sizeof buf, _("state     %s"), state_name(t->ses.train_state));
	tui_put(w, y++, sx + 1, side - 1, buf, A_BOLD);
	if (v->have_step) {
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
		if (isfinite(s->eval_loss) && v->e_loss.n) {
			snprintf(buf, sizeof buf, _("eval loss %.4f"), s->eval_loss);
			tui_put(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_EVAL, A_NORMAL));
		}
		snprintf(buf, sizeof buf, _("lr        %.3g"), s->lr);
		tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		sk_sparkline(v->t_lr.v, v->t_lr.n, side - 2, buf);
		tui_put_visual(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_SMOOTH, A_NORMAL));
		snprintf(buf, sizeof buf, _("grad norm %.3f"), s->grad_norm);
		tui_put(w, y++, sx + 1, side - 1, buf, A_NORMAL);
		sk_sparkline(v->t_gn.v, v->t_gn.n, side - 2, buf);
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
	} else if (v->train_note) {
		sk_ui_lines l = { 0 };
		if (sk_ui_layout(v->train_note, strlen(v->train_note), side - 2, t->o.bidi_app, t->o.rtl_ui, &l) == 0)
			tui_draw_lines(w, y, sx + 1, 4, side - 2, &l, 0, tui_attr(t, C_WARN, A_NORMAL));
		y += l.n < 4 ? (int)l.n : 4;
		sk_ui_lines_free(&l);
	}
	if (t->ses.adapter_live && y < h - 2)
		tui_put(w, y++, sx + 1, side - 1, _("Chat uses the live adapter"), tui_attr(t, C_MODEL, A_NORMAL));
	if (v->eval_file && y < h - 3) {
		snprintf(buf, sizeof buf, _("eval %s"), v->eval_file);
		tui_put(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_EVAL, A_NORMAL));
		if (isfinite(v->eval_adapter) && v->eval_adapter != v->eval_base)
			snprintf(buf, sizeof buf, _("  adapter %.4f  base %.4f"), v->eval_adapter, v->eval_base);
		else
			snprintf(buf, sizeof buf, _("  loss %.4f"), v->eval_base);
		tui_put(w, y++, sx + 1, side - 1, buf, tui_attr(t, C_EVAL, A_NORMAL));
	}
	y++;
	if (v->have_mem && y < h - 2) {
		tui_put(w, y++, sx + 1, side - 1, _("memory"), A_BOLD);
		static const int order[] = { SK_MEM_WEIGHTS, SK_MEM_ADAPTER, SK_MEM_OPTIMIZER, SK_MEM_ACTIVATIONS,
		                             SK_MEM_KV_CACHE, SK_MEM_HOST_TABLE, SK_MEM_PROCESS };
		const char *names[] = { _("weights"), _("adapter"), _("optimizer"), _("activations"), _("KV cache"),
		                        _("host table"), _("host RSS") };
		/* on the GPU the bars are fractions of the device's memory, and one
		 * line says how much of it is in use */
		uint64_t mx = 1;
		for (int i = 0; i < SK_MEM_NCAT; i++)
			if (i != SK_MEM_DEVICE_USED && i != SK_MEM_DEVICE_TOTAL)
				mx = v->mem[i] > mx ? v->mem[i] : mx;
		if (v->mem[SK_MEM_DEVICE_TOTAL] > 0 && y < h - 1) {
			mx = v->mem[SK_MEM_DEVICE_TOTAL];
			char bar[128], b3[32];
			sk_meter((double)v->mem[SK_MEM_DEVICE_USED] / (double)mx, 9, bar);
			tui_put(w, y, sx + 1, 12, _("GPU in use"), A_NORMAL);
			tui_put_visual(w, y, sx + 13, 9, bar, tui_attr(t, C_BAR, A_REVERSE));
			snprintf(buf, sizeof buf, "%s / %s", sk_fmt_bytes(v->mem[SK_MEM_DEVICE_USED], b2, sizeof b2),
			         sk_fmt_bytes(mx, b3, sizeof b3));
			tui_put(w, y++, sx + 23, side - 23, buf, A_NORMAL);
		}
		for (int k = 0; k < (int)(sizeof order / sizeof *order) && y < h - 1; k++) {
			int i = order[k];
			if (i == SK_MEM_HOST_TABLE && !v->mem[i])
				continue; /* only a GPU backend keeps one */
			char bar[128];
			/* At least one eighth of a cell for anything above zero. */
			double frac = (double)v->mem[i] / (double)mx;
			if (v->mem[i] > 0 && frac < 1.0 / 80)
				frac = 1.0 / 80;
			sk_meter(frac, 9, bar);
			tui_put(w, y, sx + 1, 12, names[k], A_NORMAL);
			tui_put_visual(w, y, sx + 13, 9, bar, tui_attr(t, C_BAR, A_REVERSE));
			tui_put(w, y++, sx + 23, side - 23, sk_fmt_bytes(v->mem[i], b2, sizeof b2), A_NORMAL);
		}
	}
}

const tui_view tui_view_train = {
	.name = N_("Train"),
	.init = init,
	.free = free_view,
	.draw = draw,
	.event = event,
	.key = key,
	.esc = esc,
	.focus = focus,
};
