/* SVG training chart (svg_plot.h). Long series are thinned to the min and
 * max of each pixel column, which keeps spikes visible and the file small
 * (10,000 steps give about 2,000 path points). */
#include "engine/train/svg_plot.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/strbuf.h"

#define W 1000
#define PL 88.0          /* plot area left */
#define PR (W - 28.0)    /* plot area right */
#define FONT "DejaVu Sans, Vazirmatn, Noto Sans, sans-serif"

#define C_RAW "#6baed6"
#define C_EMA "#08519c"
#define C_EVAL "#e6550d"
#define C_LR "#31a354"
#define C_GRAD "#756bb1"

/* Length of a valid UTF-8 sequence at s (1-4), or 0. */
static int utf8_len(const unsigned char *s)
{
	int n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (n == 0 || (n == 2 && s[0] < 0xc2))
		return 0;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Text content or attribute value: escaped, invalid UTF-8 and control
 * characters replaced, so the document stays well-formed. */
static void sb_text(sk_strbuf *b, const char *t)
{
	const unsigned char *p = (const unsigned char *)t;
	while (*p) {
		int n = utf8_len(p);
		if (n == 0 || (n == 1 && *p < 0x20 && *p != '\t')) {
			sk_strbuf_add(b, "?", 1);
			p++;
			continue;
		}
		switch (*p) {
		case '&': sk_strbuf_add(b, "&amp;", 5); break;
		case '<': sk_strbuf_add(b, "&lt;", 4); break;
		case '>': sk_strbuf_add(b, "&gt;", 4); break;
		case '"': sk_strbuf_add(b, "&quot;", 6); break;
		default: sk_strbuf_add(b, (const char *)p, (size_t)n); break;
		}
		p += n;
	}
}

/* Rough rendered width of a label (the legend is laid out from it). */
static double text_width(const char *t, double px)
{
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)t; *p; p++)
		chars += (*p & 0xc0) != 0x80;
	return (double)chars * px * 0.55;
}

double sk_plot_ema_beta(size_t n)
{
	double beta = 1.0 - 20.0 / (double)(n ? n : 1);
	return beta < 0.6 ? 0.6 : beta > 0.98 ? 0.98 : beta;
}

/* ---- scales and ticks ---- */

typedef struct {
	double top, h;
	double y0, y1; /* value range */
	int empty;
} panel;

static double x0_, x1_;

static double px_x(double v)
{
	return PL + (v - x0_) / (x1_ - x0_) * (PR - PL);
}

static double px_y(const panel *p, double v)
{
	return p->top + p->h - (v - p->y0) / (p->y1 - p->y0) * p->h;
}

static double nice_step(double raw)
{
	double e = pow(10.0, floor(log10(raw))), f = raw / e;
	return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
}

static void fmt_tick(char *buf, size_t cap, double v, double step, int integer)
{
	if (fabs(v) < step * 1e-6)
		v = 0;
	double a = fabs(v);
	if (v == 0)
		snprintf(buf, cap, "0");
	else if (integer)
		snprintf(buf, cap, "%.0f", v);
	else if (a != 0 && (a >= 1e5 || a < 1e-3))
		snprintf(buf, cap, "%.3g", v);
	else {
		int dec = (int)-floor(log10(step) + 1e-9);
		snprintf(buf, cap, "%.*f", dec < 0 ? 0 : dec > 6 ? 6 : dec, v);
	}
}

/* Values beyond this are drawn as missing: they would flatten the chart
 * and overflow the range arithmetic. */
static int usable(double v)
{
	return isfinite(v) && fabs(v) < 1e30;
}

/* Ticks lo <= k*step <= hi, at most 40 (a guard against rounding where
 * v + step == v for huge v). */
static int tick_count(double lo, double hi, double step, double *first)
{
	if (!(step > 0) || !isfinite(lo) || !isfinite(hi))
		return 0;
	*first = ceil(lo / step) * step;
	double n = floor((hi - *first) / step + 1e-9) + 1;
	return n < 0 ? 0 : n > 40 ? 40 : (int)n;
}

/* Finite range of values; 0 when there is none. */
static int range_of(const double *v, size_t n, double *lo, double *hi)
{
	int any = 0;
	for (size_t i = 0; i < n; i++)
		if (usable(v[i])) {
			if (!any || v[i] < *lo)
				*lo = v[i];
			if (!any || v[i] > *hi)
				*hi = v[i];
			any = 1;
		}
	return any;
}

static void pad_range(panel *p, double lo, double hi)
{
	int nonneg = lo >= 0; /* losses, rates and norms: no axis below 0 */
	if (hi - lo <= fabs(hi) * 1e-9) {
		double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
		lo -= d;
		hi += d;
	} else {
		double d = (hi - lo) * 0.06;
		lo -= d;
		hi += d;
	}
	if (nonneg && lo < 0)
		lo = 0;
	p->y0 = lo;
	p->y1 = hi;
}

static void draw_frame(sk_strbuf *b, const panel *p, const char *label, int id, int x_labels)
{
	sk_strbuf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fbfbfc\" stroke=\"#c8c8d0\"/>\n",
		  PL, p->top, PR - PL, p->h);
	sk_strbuf_printf(b, "<clipPath id=\"clip%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n", id,
		  PL - 6, p->top - 6, PR - PL + 12, p->h + 12);
	/* x grid (and labels under the last panel) */
	double xs = nice_step((x1_ - x0_) / 8.0);
	if (xs < 1)
		xs = 1;
	char t[64];
	sk_strbuf_printf(b, "<g stroke=\"#e3e3ea\" stroke-width=\"1\">\n");
	double first;
	int nt = tick_count(x0_, x1_, xs, &first);
	for (int k = 0; k < nt; k++)
		sk_strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px_x(first + k * xs), p->top,
			  px_x(first + k * xs), p->top + p->h);
	sk_strbuf_printf(b, "</g>\n");
	if (x_labels) {
		sk_strbuf_printf(b, "<g font-size=\"12\" fill=\"#444\" text-anchor=\"middle\">\n");
		for (int k = 0; k < nt; k++) {
			double v = first + k * xs;
			fmt_tick(t, sizeof t, v, xs, 1);
			sk_strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>", px_x(v),
				  p->top + p->h, px_x(v), p->top + p->h + 5);
			sk_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", px_x(v), p->top + p->h + 19, t);
		}
		sk_strbuf_printf(b, "</g>\n");
	}
	/* y label, rotated */
	sk_strbuf_printf(b, "<text x=\"18\" y=\"%.1f\" font-size=\"13\" fill=\"#333\" text-anchor=\"middle\" "
		     "transform=\"rotate(-90 18 %.1f)\">", p->top + p->h / 2, p->top + p->h / 2);
	sb_text(b, label);
	sk_strbuf_printf(b, "</text>\n");
	if (p->empty) {
		sk_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" fill=\"#999\" text-anchor=\"middle\">",
			  (PL + PR) / 2, p->top + p->h / 2 + 4);
		sb_text(b, _("no data"));
		sk_strbuf_printf(b, "</text>\n");
		return;
	}
	double ys = nice_step((p->y1 - p->y0) / (p->h >= 200 ? 6.0 : 3.0));
	sk_strbuf_printf(b, "<g font-size=\"11\" fill=\"#444\" text-anchor=\"end\">\n");
	nt = tick_count(p->y0, p->y1, ys, &first);
	for (int k = 0; k < nt; k++) {
		double v = first + k * ys;
		double y = px_y(p, v);
		fmt_tick(t, sizeof t, v, ys, 0);
		sk_strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3ea\"/>", PL, y, PR, y);
		sk_strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>", PL - 5, y, PL, y);
		sk_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", PL - 8, y + 4, t);
	}
	sk_strbuf_printf(b, "</g>\n");
}

/* One polyline series: gaps at non-finite values, thinned to min/max per
 * pixel column, isolated points drawn as dots. Returns the non-finite count. */
static size_t draw_series(sk_strbuf *b, const panel *p, int clip, const int64_t *xs, const double *ys, size_t n,
			  const char *color, double width, double opacity)
{
	sk_strbuf dots = { 0 };
	size_t skipped = 0, in_path = 0;
	double lastx = 0, lasty = 0;
	int col = INT32_MIN;
	size_t imin = 0, imax = 0, have = 0;
	sk_strbuf_printf(b, "<path clip-path=\"url(#clip%d)\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
		     "stroke-opacity=\"%.2f\" stroke-linejoin=\"round\" stroke-linecap=\"round\" d=\"", clip, color, width,
		  opacity);
	/* emits the buffered column (min and max in step order) */
#define FLUSH()                                                                                      \
	do {                                                                                         \
		if (have) {                                                                          \
			size_t a = imin < imax ? imin : imax, c = imin < imax ? imax : imin;        \
			for (int k = 0; k < (a == c ? 1 : 2); k++) {                                \
				size_t i = k ? c : a;                                                \
				double x = px_x((double)xs[i]), y = px_y(p, ys[i]);                  \
				if (in_path && fabs(x - lastx) < 0.05 && fabs(y - lasty) < 0.05)    \
					continue;                                                    \
				sk_strbuf_printf(b, "%s%.1f %.1f", in_path ? " L" : " M", x, y);            \
				in_path++;                                                           \
				lastx = x;                                                           \
				lasty = y;                                                           \
			}                                                                            \
			have = 0;                                                                    \
		}                                                                                    \
	} while (0)
#define PEN_UP()                                                                                     \
	do {                                                                                         \
		FLUSH();                                                                             \
		if (in_path == 1)                                                                    \
			sk_strbuf_printf(&dots, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n",  \
				  lastx, lasty, width + 1.5, color);                                 \
		in_path = 0;                                                                         \
	} while (0)
	for (size_t i = 0; i < n; i++) {
		if (!usable(ys[i])) {
			skipped++;
			PEN_UP();
			continue;
		}
		int c = (int)floor(px_x((double)xs[i]));
		if (c != col) {
			FLUSH();
			col = c;
		}
		if (!have) {
			imin = imax = i;
			have = 1;
		} else {
			if (ys[i] < ys[imin])
				imin = i;
			if (ys[i] > ys[imax])
				imax = i;
		}
	}
	PEN_UP();
#undef PEN_UP
#undef FLUSH
	sk_strbuf_printf(b, "\"/>\n");
	if (dots.s)
		sk_strbuf_add(b, dots.s, dots.len);
	b->oom |= dots.oom;
	free(dots.s);
	return skipped;
}

static double legend_item(sk_strbuf *b, double x, double y, const char *label, const char *color, double width, int dot)
{
	if (dot)
		sk_strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#fff\" stroke=\"%s\" stroke-width=\"2\"/>", x + 11,
			  y - 4, color);
	else
		sk_strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\" "
			     "stroke-linecap=\"round\"/>", x, y - 4, x + 22, y - 4, color, width);
	sk_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 28, y);
	sb_text(b, label);
	sk_strbuf_printf(b, "</text>\n");
	return x + 28 + text_width(label, 12) + 18;
}

static char *render(const sk_metrics_series *s, const char *title, sk_plot_info *info, size_t *len)
{
	double beta = sk_plot_ema_beta(s->n);
	double *ema = malloc(s->n * sizeof *ema);
	if (!ema) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	/* debiased EMA, as TensorBoard draws it */
	double acc = 0, wsum = 0;
	info->last_loss = info->last_ema = NAN;
	for (size_t i = 0; i < s->n; i++) {
		if (!usable(s->loss[i])) {
			ema[i] = wsum > 0 ? acc / wsum : NAN; /* carried over: the smoothed line has no gap */
			continue;
		}
		acc = beta * acc + (1 - beta) * s->loss[i];
		wsum = beta * wsum + (1 - beta);
		ema[i] = acc / wsum;
		info->last_loss = s->loss[i];
		info->last_ema = ema[i];
	}
	info->ema_beta = beta;

	/* shared step range */
	int64_t smin = s->step[0], smax = s->step[0];
	for (size_t i = 0; i < s->n; i++) {
		smin = s->step[i] < smin ? s->step[i] : smin;
		smax = s->step[i] > smax ? s->step[i] : smax;
	}
	for (size_t i = 0; i < s->neval; i++) {
		smin = s->eval_step[i] < smin ? s->eval_step[i] : smin;
		smax = s->eval_step[i] > smax ? s->eval_step[i] : smax;
	}
	x0_ = (double)smin;
	x1_ = (double)smax;
	if (x1_ <= x0_) {
		x0_ -= 1;
		x1_ += 1;
	}

	panel pl = { 100, 300, 0, 1, 0 }, plr = { 436, 120, 0, 1, 0 }, pg = { 586, 120, 0, 1, 0 };
	double lo = 0, hi = 0, elo = 0, ehi = 0;
	int any = range_of(s->loss, s->n, &lo, &hi);
	if (range_of(s->eval_loss, s->neval, &elo, &ehi)) {
		lo = any && lo < elo ? lo : elo;
		hi = any && hi > ehi ? hi : ehi;
		any = 1;
	}
	pl.empty = !any;
	pad_range(&pl, lo, hi);
	plr.empty = !range_of(s->lr, s->n, &lo, &hi);
	pad_range(&plr, lo, hi);
	pg.empty = !range_of(s->grad_norm, s->n, &lo, &hi);
	pad_range(&pg, lo, hi);
	int H = 586 + 120 + 52;

	sk_strbuf b = { 0 };
	sk_strbuf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	sk_strbuf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		      "font-family=\"%s\">\n", W, H, W, H, FONT);
	sk_strbuf_printf(&b, "<title>");
	sb_text(&b, title);
	sk_strbuf_printf(&b, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
	sk_strbuf_printf(&b, "<text x=\"%.1f\" y=\"32\" font-size=\"19\" font-weight=\"bold\" fill=\"#222\">", PL);
	sb_text(&b, title);
	sk_strbuf_printf(&b, "</text>\n");

	size_t skipped = 0;
	/* series (the subtitle is written after, once skips are counted) */
	sk_strbuf body = { 0 };
	draw_frame(&body, &pl, _("loss"), 0, 0);
	draw_frame(&body, &plr, _("learning rate"), 1, 0);
	draw_frame(&body, &pg, _("gradient norm"), 2, 1);
	skipped += draw_series(&body, &pl, 0, s->step, s->loss, s->n, C_RAW, 1.0, 0.75);
	draw_series(&body, &pl, 0, s->step, ema, s->n, C_EMA, 2.5, 1.0);
	if (s->neval) {
		skipped += draw_series(&body, &pl, 0, s->eval_step, s->eval_loss, s->neval, C_EVAL, 1.2, 0.6);
		sk_strbuf_printf(&body, "<g clip-path=\"url(#clip0)\" fill=\"#fff\" stroke=\"%s\" stroke-width=\"2\">\n", C_EVAL);
		for (size_t i = 0; i < s->neval; i++)
			if (usable(s->eval_loss[i]))
				sk_strbuf_printf(&body, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\"/>\n", px_x((double)s->eval_step[i]),
					  px_y(&pl, s->eval_loss[i]));
		sk_strbuf_printf(&body, "</g>\n");
	}
	skipped += draw_series(&body, &plr, 1, s->step, s->lr, s->n, C_LR, 1.8, 1.0);
	skipped += draw_series(&body, &pg, 2, s->step, s->grad_norm, s->n, C_GRAD, 1.2, 0.9);
	sk_strbuf_printf(&body, "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" fill=\"#333\" text-anchor=\"middle\">",
		  (PL + PR) / 2, H - 10);
	sb_text(&body, _("step"));
	sk_strbuf_printf(&body, "</text>\n");
	info->skipped = skipped;

	/* subtitle */
	char sub[512], part[256];
	snprintf(sub, sizeof sub, ngettext("%zu step (%lld to %lld)", "%zu steps (%lld to %lld)", s->n), s->n,
		 (long long)smin, (long long)smax);
	if (s->neval) {
		snprintf(part, sizeof part, ngettext(", %zu evaluation", ", %zu evaluations", s->neval), s->neval);
		strncat(sub, part, sizeof sub - strlen(sub) - 1);
	}
	if (isfinite(info->last_loss)) {
		snprintf(part, sizeof part, _(", last loss %.4g (smoothed %.4g)"), info->last_loss, info->last_ema);
		strncat(sub, part, sizeof sub - strlen(sub) - 1);
	}
	if (skipped) {
		snprintf(part, sizeof part,
			 ngettext(", %zu non-finite value skipped", ", %zu non-finite values skipped", skipped), skipped);
		strncat(sub, part, sizeof sub - strlen(sub) - 1);
	}
	sk_strbuf_printf(&b, "<text x=\"%.1f\" y=\"54\" font-size=\"13\" fill=\"%s\">", PL, skipped ? "#b04000" : "#666");
	sb_text(&b, sub);
	sk_strbuf_printf(&b, "</text>\n");

	/* legend */
	char ema_label[128];
	snprintf(ema_label, sizeof ema_label, _("loss, smoothed (EMA %.2f)"), beta);
	sk_strbuf_printf(&b, "<g font-size=\"12\" fill=\"#333\">\n");
	double x = PL;
	x = legend_item(&b, x, 82, _("loss"), C_RAW, 1.5, 0);
	x = legend_item(&b, x, 82, ema_label, C_EMA, 3, 0);
	if (s->neval)
		x = legend_item(&b, x, 82, _("eval loss"), C_EVAL, 2, 1);
	x = legend_item(&b, x, 82, _("learning rate"), C_LR, 2, 0);
	legend_item(&b, x, 82, _("gradient norm"), C_GRAD, 2, 0);
	sk_strbuf_printf(&b, "</g>\n");

	if (body.s)
		sk_strbuf_add(&b, body.s, body.len);
	b.oom |= body.oom;
	free(body.s);
	sk_strbuf_printf(&b, "</svg>\n");
	free(ema);
	if (b.oom) {
		free(b.s);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	*len = b.len;
	return b.s;
}

char *sk_svg_plot_training(const sk_metrics_series *s, const char *title, sk_plot_info *info, size_t *len)
{
	sk_plot_info dummy;
	if (!info)
		info = &dummy;
	memset(info, 0, sizeof *info);
	*len = 0;
	if (s->n == 0) {
		sk_fail("%s", _("no training records to plot"));
		return NULL;
	}
	/* SVG numbers need '.' whatever LC_NUMERIC the user has */
	locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	locale_t old = c ? uselocale(c) : (locale_t)0;
	char *svg = render(s, title ? title : "", info, len);
	if (c) {
		uselocale(old);
		freelocale(c);
	}
	return svg;
}
