/* The TUI's pure drawing pieces: braille canvas, sparkline, meter,
 * smoothing, units, paragraph layout and the input cursor column. */
#include <locale.h>
#include <math.h>
#include <string.h>

#include "tests/test.h"
#include "ui/widgets.h"

/* UTF-8 of a list of code points (0-terminated). */
static const char *u8(const unsigned *cps)
{
	static char buf[1024];
	char *o = buf;
	for (; *cps; cps++) {
		unsigned c = *cps;
		if (c < 0x80)
			*o++ = (char)c;
		else if (c < 0x800) {
			*o++ = (char)(0xC0 | (c >> 6));
			*o++ = (char)(0x80 | (c & 0x3F));
		} else {
			*o++ = (char)(0xE0 | (c >> 12));
			*o++ = (char)(0x80 | ((c >> 6) & 0x3F));
			*o++ = (char)(0x80 | (c & 0x3F));
		}
	}
	*o = '\0';
	return buf;
}

TEST(braille_dots)
{
	sk_braille c;
	CHECK_EQ_INT(sk_braille_init(&c, 2, 1), 0);
	char row[64];
	sk_braille_row(&c, 0, 0, row);
	CHECK(!strcmp(row, u8((unsigned[]){ 0x2800, 0x2800, 0 })));
	sk_braille_row(&c, 0, 1, row);
	CHECK(!strcmp(row, "  "));
	sk_braille_set(&c, 0, 0, 1); /* dot 1 */
	sk_braille_set(&c, 1, 3, 1); /* dot 8 */
	sk_braille_set(&c, 3, 2, 2); /* second cell, dot 6 */
	sk_braille_set(&c, 9, 9, 1); /* outside: ignored */
	sk_braille_row(&c, 0, 0, row);
	CHECK(!strcmp(row, u8((unsigned[]){ 0x2881, 0x2820, 0 })));
	CHECK_EQ_INT(c.layer[1], 2);
	sk_braille_free(&c);
}

TEST(braille_plot_line)
{
	/* A rising line across a 2x1 canvas: 4x4 dots, from bottom-left to
	 * top-right, one dot per column. */
	sk_braille c;
	CHECK_EQ_INT(sk_braille_init(&c, 2, 1), 0);
	double xs[] = { 0, 3 }, ys[] = { 0, 3 };
	sk_braille_plot(&c, xs, ys, 2, 0, 3, 0, 3, 1, 1);
	char row[64];
	sk_braille_row(&c, 0, 0, row);
	/* dots (0,3) (1,2) (2,1) (3,0): cell 0 = bits 0x40|0x20, cell 1 = 0x02|0x08 */
	CHECK(!strcmp(row, u8((unsigned[]){ 0x2860, 0x280A, 0 })));
	/* A NaN breaks the line: two isolated dots. */
	sk_braille_clear(&c);
	double xs2[] = { 0, 1, 3 }, ys2[] = { 0, NAN, 3 };
	sk_braille_plot(&c, xs2, ys2, 3, 0, 3, 0, 3, 1, 1);
	sk_braille_row(&c, 0, 0, row);
	CHECK(!strcmp(row, u8((unsigned[]){ 0x2840, 0x2808, 0 })));
	sk_braille_free(&c);
	CHECK_EQ_INT(sk_braille_init(&c, 0, 3), -1);
}

TEST(sparkline)
{
	char out[128];
	double v[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	CHECK_EQ_INT(sk_sparkline(v, 8, 20, out), 8);
	CHECK(!strcmp(out, "▁▂▃▄▅▆▇█"));
	/* Only the last 3 values, rescaled to their own range. */
	CHECK_EQ_INT(sk_sparkline(v, 8, 3, out), 3);
	CHECK(!strcmp(out, "▁▅█"));
	double f[] = { 2, 2, NAN };
	sk_sparkline(f, 3, 10, out);
	CHECK(!strcmp(out, "▁▁ "));
	CHECK_EQ_INT(sk_sparkline(v, 0, 5, out), 0);
	CHECK(!strcmp(out, ""));
}

TEST(meter)
{
	char out[128];
	sk_meter(0.5, 4, out);
	CHECK(!strcmp(out, "██  "));
	sk_meter(1.0 / 16, 2, out); /* one eighth of a cell */
	CHECK(!strcmp(out, "▏ "));
	sk_meter(7.0 / 8, 1, out);
	CHECK(!strcmp(out, "▉"));
	sk_meter(3, 2, out);
	CHECK(!strcmp(out, "██"));
	sk_meter(NAN, 2, out);
	CHECK(!strcmp(out, "  "));
}

TEST(smoothing)
{
	/* Debiased EMA, weight 0.5: 4, (0.5*2+0.5*8)/0.75 = ... computed by hand:
	 * step1 last=2 num=.5 -> 4; step2 last=1+4=5 num=.75 -> 6.6667;
	 * NaN skipped; step3 last=2.5+2=4.5 num=.875 -> 5.142857 */
	double v[] = { 4, 8, NAN, 4 }, o[4];
	sk_smooth(v, 4, 0.5, o);
	CHECK_NEAR(o[0], 4, 1e-12);
	CHECK_NEAR(o[1], 20.0 / 3, 1e-12);
	CHECK(isnan(o[2]));
	CHECK_NEAR(o[3], 4.5 / 0.875, 1e-12);
}

TEST(units)
{
	char b[32];
	CHECK(!strcmp(sk_fmt_bytes(512, b, sizeof b), "512 B"));
	CHECK(!strcmp(sk_fmt_bytes(1536, b, sizeof b), "1.50 KiB"));
	CHECK(!strcmp(sk_fmt_bytes(300ull << 20, b, sizeof b), "300 MiB"));
	CHECK(!strcmp(sk_fmt_duration(59.6, b, sizeof b), "1m00s"));
	CHECK(!strcmp(sk_fmt_duration(3725, b, sizeof b), "1h02m"));
	CHECK(!strcmp(sk_fmt_duration(-1, b, sizeof b), "--"));
}

TEST(layout_rtl_paragraph)
{
	/* T1 of docs/rtl-terminal.md §5.6: right-aligned, visual order. */
	const char *t1 = "سلام دنیا";
	sk_ui_lines l = { 0 };
	CHECK_EQ_INT(sk_ui_layout(t1, strlen(t1), 20, 1, 1, &l), 0);
	CHECK_EQ_INT(l.n, 1);
	if (l.n == 1) {
		CHECK(!strcmp(l.v[0].text,
		              u8((unsigned[]){ 0x0627, 0x06CC, 0x0646, 0x062F, 0x20, 0x0645, 0x0627, 0x0644, 0x0633, 0 })));
		CHECK_EQ_INT(l.v[0].width, 9);
		CHECK_EQ_INT(l.v[0].col, 11);
		CHECK(l.v[0].rtl);
	}
	sk_ui_lines_free(&l);
	/* Terminal mode: logical order, left column. */
	CHECK_EQ_INT(sk_ui_layout(t1, strlen(t1), 20, 0, 1, &l), 0);
	CHECK(l.n == 1 && !strcmp(l.v[0].text, t1) && l.v[0].col == 0);
	sk_ui_lines_free(&l);
}

TEST(layout_wrap_and_controls)
{
	sk_ui_lines l = { 0 };
	const char *t = "hello world\tfoo\n\nbar";
	CHECK_EQ_INT(sk_ui_layout(t, strlen(t), 8, 1, 0, &l), 0);
	CHECK_EQ_INT(l.n, 5);
	if (l.n == 5) {
		CHECK(!strcmp(l.v[0].text, "hello"));
		CHECK(!strcmp(l.v[1].text, "world"));
		CHECK(!strcmp(l.v[2].text, "foo")); /* the tab became a space, the break dropped it */
		CHECK(!strcmp(l.v[3].text, ""));
		CHECK(!strcmp(l.v[4].text, "bar"));
		CHECK_EQ_INT(l.v[4].col, 0);
	}
	sk_ui_lines_free(&l);
	CHECK_EQ_INT(sk_ui_layout("x", 1, 0, 1, 0, &l), -1);
	sk_ui_lines_free(&l);
}

TEST(cursor_columns)
{
	int col, w, rtl;
	CHECK_EQ_INT(sk_ui_cursor_col("abc", 3, 1, 1, 1, &col, &w, &rtl), 0);
	CHECK_EQ_INT(col, 1);
	CHECK_EQ_INT(w, 3);
	CHECK_EQ_INT(rtl, 0);
	sk_ui_cursor_col("abc", 3, 3, 1, 1, &col, &w, &rtl);
	CHECK_EQ_INT(col, 3);
	/* RTL: the first logical letter is the rightmost cell; the end is
	 * left of the leftmost cell. */
	const char *t1 = "سلام دنیا";
	size_t n = strlen(t1);
	sk_ui_cursor_col(t1, n, 0, 1, 1, &col, &w, &rtl);
	CHECK_EQ_INT(rtl, 1);
	CHECK_EQ_INT(w, 9);
	CHECK_EQ_INT(col, 8);
	sk_ui_cursor_col(t1, n, 2, 1, 1, &col, &w, &rtl); /* second letter (ل), bytes 2..4 */
	CHECK_EQ_INT(col, 7);
	sk_ui_cursor_col(t1, n, n, 1, 1, &col, &w, &rtl);
	CHECK_EQ_INT(col, -1);
	/* Mixed: "ab سل": LTR paragraph in an LTR UI; the Persian run is
	 * reversed: cells a b ' ' ل س; س (byte 3) is at column 4. */
	const char *m = "ab سل";
	sk_ui_cursor_col(m, strlen(m), 3, 1, 0, &col, &w, &rtl);
	CHECK_EQ_INT(rtl, 0);
	CHECK_EQ_INT(col, 4);
	/* Terminal mode: logical columns. */
	sk_ui_cursor_col(t1, n, 2, 0, 1, &col, &w, &rtl);
	CHECK_EQ_INT(col, 1);
}

int main(void)
{
	setlocale(LC_ALL, "C.UTF-8");
	RUN(braille_dots);
	RUN(braille_plot_line);
	RUN(sparkline);
	RUN(meter);
	RUN(smoothing);
	RUN(units);
	RUN(layout_rtl_paragraph);
	RUN(layout_wrap_and_controls);
	RUN(cursor_columns);
	TEST_EXIT();
}
