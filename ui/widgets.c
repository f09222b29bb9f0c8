/* Pure drawing pieces of the TUI (see widgets.h). */
#include "ui/widgets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h" /* sk_fail (ui/ sees the engine only through engine.h) */
#include "ui/bidi.h"

/* ---- braille ---- */

int sk_braille_init(sk_braille *c, int w, int h)
{
	memset(c, 0, sizeof *c);
	if (w < 1 || h < 1 || w > 4096 || h > 4096)
		return sk_fail("braille: bad size %dx%d", w, h);
	c->dots = calloc((size_t)w * h, 1);
	c->layer = calloc((size_t)w * h, 1);
	if (!c->dots || !c->layer) {
		sk_braille_free(c);
		return sk_fail("braille: out of memory");
	}
	c->w = w;
	c->h = h;
	return 0;
}

void sk_braille_free(sk_braille *c)
{
	free(c->dots);
	free(c->layer);
	memset(c, 0, sizeof *c);
}

void sk_braille_clear(sk_braille *c)
{
	memset(c->dots, 0, (size_t)c->w * c->h);
	memset(c->layer, 0, (size_t)c->w * c->h);
}

void sk_braille_set(sk_braille *c, int x, int y, int layer)
{
	if (x < 0 || y < 0 || x >= 2 * c->w || y >= 4 * c->h)
		return;
	/* U+2800 bits: left column 0,1,2,6 top to bottom; right column 3,4,5,7. */
	static const uint8_t bit[2][4] = { { 0x01, 0x02, 0x04, 0x40 }, { 0x08, 0x10, 0x20, 0x80 } };
	size_t i = (size_t)(y / 4) * c->w + (size_t)(x / 2);
	c->dots[i] |= bit[x % 2][y % 4];
	if (layer > c->layer[i])
		c->layer[i] = (uint8_t)layer;
}

static void line(sk_braille *c, int x0, int y0, int x1, int y1, int layer)
{
	int dx = abs(x1 - x0), dy = -abs(y1 - y0);
	int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
	for (int guard = 0; guard < 100000; guard++) {
		sk_braille_set(c, x0, y0, layer);
		if (x0 == x1 && y0 == y1)
			break;
		int e2 = 2 * err;
		if (e2 >= dy) {
			err += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			err += dx;
			y0 += sy;
		}
	}
}

void sk_braille_plot(sk_braille *c, const double *xs, const double *ys, size_t n, double x0, double x1, double y0,
                     double y1, int layer, int lines)
{
	int W = 2 * c->w, H = 4 * c->h;
	double sx = x1 > x0 ? (W - 1) / (x1 - x0) : 0, sy = y1 > y0 ? (H - 1) / (y1 - y0) : 0;
	int have = 0, px = 0, py = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(xs[i]) || !isfinite(ys[i])) {
			have = 0;
			continue;
		}
		double fx = (xs[i] - x0) * sx, fy = (y1 - ys[i]) * sy;
		if (fx < -1e6 || fx > 1e6 || fy < -1e6 || fy > 1e6) {
			have = 0;
			continue;
		}
		int x = (int)lround(fx), y = (int)lround(fy);
		if (have && lines)
			line(c, px, py, x, y, layer);
		else
			sk_braille_set(c, x, y, layer);
		px = x;
		py = y;
		have = 1;
	}
}

void sk_braille_row(const sk_braille *c, int r, int blank_space, char *out)
{
	char *o = out;
	for (int x = 0; r >= 0 && r < c->h && x < c->w; x++) {
		uint8_t d = c->dots[(size_t)r * c->w + x];
		if (!d && blank_space) {
			*o++ = ' ';
			continue;
		}
		unsigned cp = 0x2800u + d;
		*o++ = (char)(0xE0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	}
	*o = '\0';
}

/* ---- sparkline, meter ---- */

static char *put_cp(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xC0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*o++ = (char)(0xE0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	}
	return o;
}

int sk_sparkline(const double *v, size_t n, int width, char *out)
{
	char *o = out;
	if (width < 1 || n == 0) {
		*o = '\0';
		return 0;
	}
	size_t first = n > (size_t)width ? n - (size_t)width : 0;
	double lo = INFINITY, hi = -INFINITY;
	for (size_t i = first; i < n; i++)
		if (isfinite(v[i])) {
			lo = v[i] < lo ? v[i] : lo;
			hi = v[i] > hi ? v[i] : hi;
		}
	int cells = 0;
	for (size_t i = first; i < n; i++, cells++) {
		if (!isfinite(v[i])) {
			*o++ = ' ';
			continue;
		}
		int k = hi > lo ? (int)lround((v[i] - lo) / (hi - lo) * 7) : 0;
		k = k < 0 ? 0 : k > 7 ? 7 : k;
		o = put_cp(o, 0x2581u + (unsigned)k);
	}
	*o = '\0';
	return cells;
}

void sk_meter(double frac, int width, char *out)
{
	char *o = out;
	if (!(frac >= 0))
		frac = 0;
	if (frac > 1)
		frac = 1;
	long eighths = lround(frac * width * 8);
	for (int i = 0; i < width; i++) {
		long e = eighths - (long)i * 8;
		if (e >= 8)
			o = put_cp(o, 0x2588u);               /* full block */
		else if (e > 0)
			o = put_cp(o, 0x2590u - (unsigned)e); /* U+258F one eighth .. U+2589 seven eighths */
		else
			*o++ = ' ';
	}
	*o = '\0';
}

void sk_smooth(const double *v, size_t n, double weight, double *out)
{
	double last = 0, num = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(v[i])) {
			out[i] = NAN;
			continue;
		}
		last = last * weight + (1 - weight) * v[i];
		k++;
		num = 1 - pow(weight, (double)k);
		out[i] = num > 0 ? last / num : v[i];
	}
}

char *sk_fmt_bytes(uint64_t b, char *out, size_t cap)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int k = 0;
	while (v >= 1024 && k < 4) {
		v /= 1024;
		k++;
	}
	if (k == 0)
		snprintf(out, cap, "%llu B", (unsigned long long)b);
	else
		snprintf(out, cap, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, u[k]);
	return out;
}

char *sk_fmt_duration(double s, char *out, size_t cap)
{
	if (!isfinite(s) || s < 0) {
		snprintf(out, cap, "--");
		return out;
	}
	long t = lround(s);
	if (t >= 3600)
		snprintf(out, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
	else if (t >= 60)
		snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(out, cap, "%lds", t);
	return out;
}

/* ---- text layout ---- */

void sk_ui_lines_free(sk_ui_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int push_line(sk_ui_lines *l, char *text, int width, int col, int rtl)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		sk_ui_line *v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			free(text);
			return sk_fail("layout: out of memory");
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (sk_ui_line){ text, width, col, rtl };
	return 0;
}

/* A copy of s[0, n) with control characters (but not '\n') as spaces. */
static char *sanitized(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		d[i] = (c < 0x20 && c != '\n') || c == 0x7f ? ' ' : (char)c;
	}
	d[n] = '\0';
	return d;
}

int sk_ui_layout(const char *text, size_t len, int width, int app, int rtl_ui, sk_ui_lines *out)
{
	if (width < 1)
		return sk_fail("layout: width %d", width);
	char *t = sanitized(text, len);
	if (!t)
		return sk_fail("layout: out of memory");
	int rc = 0;
	for (size_t p = 0; p <= len && rc == 0;) {
		size_t e = p;
		while (e < len && t[e] != '\n')
			e++;
		const char *para = t + p;
		size_t plen = e - p;
		int dir = sk_bidi_message_dir(para, plen, rtl_ui);
		sk_wrap_line *wl = NULL;
		size_t nw = 0;
		if (sk_wrap(para, plen, width, &wl, &nw) != 0) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < nw && rc == 0; i++) {
			char *s = NULL;
			if (app && dir == SK_BIDI_RTL) {
				if (sk_bidi_visual_range_shaped(para, plen, wl[i].start, wl[i].end, dir, app >= 2, &s, NULL) != 0) {
					rc = -1;
					break;
				}
			} else {
				s = strndup(para + wl[i].start, wl[i].end - wl[i].start);
				if (!s) {
					rc = sk_fail("layout: out of memory");
					break;
				}
			}
			int col = dir == SK_BIDI_RTL && app ? width - wl[i].width : 0;
			rc = push_line(out, s, wl[i].width, col < 0 ? 0 : col, dir == SK_BIDI_RTL);
		}
		free(wl);
		p = e + 1;
	}
	free(t);
	return rc;
}

int sk_ui_cursor_col(const char *text, size_t len, size_t point, int app, int rtl_ui, int *col, int *line_width,
                     int *rtl)
{
	int dir = sk_bidi_message_dir(text, len, rtl_ui);
	*rtl = dir == SK_BIDI_RTL;
	if (point > len)
		point = len;
	if (!app) {
		*rtl = 0;
		*line_width = sk_text_width(text, len);
		*col = sk_text_width(text, point);
		return 0;
	}
	sk_bidi_cell *cells = NULL;
	size_t n = 0;
	if (sk_bidi_line_cells(text, len, 0, len, dir, &cells, &n) != 0)
		return -1;
	int x = 0, found = 0;
	*col = dir == SK_BIDI_RTL ? -1 : 0;
	for (size_t i = 0; i < n; i++) {
		if (!found && point < len && point >= cells[i].start && point < cells[i].end) {
			*col = x;
			found = 1;
		}
		x += cells[i].width;
	}
	*line_width = x;
	if (!found && dir == SK_BIDI_LTR)
		*col = point >= len ? x : 0;
	if (!found && point < len && dir == SK_BIDI_RTL) {
		/* point inside a direction control (no cell): the next cluster's cell. */
		size_t best = (size_t)-1;
		int bx = -1;
		x = 0;
		for (size_t i = 0; i < n; i++) {
			if (cells[i].start >= point && cells[i].start < best) {
				best = cells[i].start;
				bx = x;
			}
			x += cells[i].width;
		}
		*col = bx;
	}
	free(cells);
	return 0;
}
