/* Pure pieces of the TUI's drawing, with no curses inside so they can be
 * unit-tested: braille line charts, sparklines, meter bars, exponential
 * smoothing, the layout of text paragraphs into screen lines (bidi through
 * ui/bidi.h), and the cursor column of an input line. Every string out is
 * UTF-8; widths are in terminal cells. */
#ifndef SK_UI_WIDGETS_H
#define SK_UI_WIDGETS_H

#include <stddef.h>
#include <stdint.h>

/* ---- braille canvas: each cell holds 2x4 dots ---- */
typedef struct {
	int w, h;          /* cells */
	uint8_t *dots;     /* w*h dot masks (bit layout of U+2800) */
	uint8_t *layer;    /* w*h: the highest layer index that drew in the cell */
} sk_braille;

int sk_braille_init(sk_braille *c, int w, int h);
void sk_braille_free(sk_braille *c);
void sk_braille_clear(sk_braille *c);
/* Sets dot (x, y), x in [0, 2w), y in [0, 4h) from the top; out of range
 * is ignored. */
void sk_braille_set(sk_braille *c, int x, int y, int layer);
/* Plots the series (xs[i], ys[i]) into the data window [x0, x1] x [y0, y1]
 * (y up), joining consecutive points with lines; non-finite points break
 * the line. With lines == 0, single dots only. */
void sk_braille_plot(sk_braille *c, const double *xs, const double *ys, size_t n, double x0, double x1, double y0,
                     double y1, int layer, int lines);
/* Row r as UTF-8 (3 bytes per cell; an empty cell is U+2800 unless
 * blank_space, then ' '). out needs 3*w+1 bytes. */
void sk_braille_row(const sk_braille *c, int r, int blank_space, char *out);

/* ---- sparkline: one of ▁▂▃▄▅▆▇█ per value ---- */
/* The last width values of v (fewer when n < width), scaled between their
 * min and max (all equal: the lowest bar); non-finite values are spaces.
 * Returns the number of cells written; out needs 3*width+1 bytes. */
int sk_sparkline(const double *v, size_t n, int width, char *out);

/* ---- meter bar: frac of width cells with eighth-block precision ---- */
/* frac is clamped to [0, 1]; the rest of the bar is spaces, so the result
 * is always width cells. out needs 3*width+1 bytes. */
void sk_meter(double frac, int width, char *out);

/* ---- exponential moving average (debiased like TensorBoard's) ---- */
/* out[i] = smoothed value of v[0..i]; non-finite inputs are skipped and
 * their out[] is NaN. 0 <= weight < 1. */
void sk_smooth(const double *v, size_t n, double weight, double *out);

/* Human units: "1.5 GiB", "512 B"; "12m05s", "1h02m". Return out. */
char *sk_fmt_bytes(uint64_t b, char *out, size_t cap);
char *sk_fmt_duration(double s, char *out, size_t cap);

/* ---- text layout ---- */
/* One screen line of a laid-out paragraph: text in the order to draw it
 * (visual in app mode), its width, and the column to draw it at inside a
 * panel of the width given (right-aligned for RTL paragraphs). */
typedef struct {
	char *text;
	int width;
	int col;
	int rtl;
} sk_ui_line;

typedef struct {
	sk_ui_line *v;
	size_t n, cap;
} sk_ui_lines;

void sk_ui_lines_free(sk_ui_lines *l);
/* Appends the lines of text (several paragraphs split on '\n') wrapped to
 * width cells. app: reorder for a terminal without bidi (2: also join
 * Arabic-script letters into presentation forms); rtl_ui: the
 * paragraph-direction rule of a right-to-left UI (sk_bidi_message_dir).
 * Control characters other than '\n' are shown as spaces. */
int sk_ui_layout(const char *text, size_t len, int width, int app, int rtl_ui, sk_ui_lines *out);

/* Cursor of an input line: the text laid out as one line of cells in
 * visual order (app) or logical order, and the cell column of byte offset
 * point inside it: the cell of the cluster holding point; at the end of
 * the text one past the last cell (LTR) or -1, one before the first
 * (RTL). *line_width gets the line's width, *rtl its direction. */
int sk_ui_cursor_col(const char *text, size_t len, size_t point, int app, int rtl_ui, int *col, int *line_width,
                     int *rtl);

#endif
