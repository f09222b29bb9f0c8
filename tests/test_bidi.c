/* ui/bidi: the golden visual orders of rtl-terminal.md §5.6 (ICU 72, checked
 * there against FriBidi), widths, wrapping, the cell map and Arabic-script
 * shaping (table S of §5.6; other expected forms worked out by hand from the
 * Unicode joining types). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ubidi.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "engine/error.h"
#include "tests/test.h"
#include "ui/bidi.h"

/* Code points of a UTF-8 string, as "XXXX XXXX ..." (for comparisons and
 * messages). */
static void hex_cps(const char *s, char *buf, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	buf[0] = '\0';
	while (*p && o + 8 < cap) {
		uint32_t c;
		int n;
		if (*p < 0x80) { c = *p; n = 1; }
		else if (*p < 0xE0) { c = *p & 0x1F; n = 2; }
		else if (*p < 0xF0) { c = *p & 0x0F; n = 3; }
		else { c = *p & 0x07; n = 4; }
		for (int i = 1; i < n && p[i]; i++)
			c = (c << 6) | (p[i] & 0x3F);
		o += (size_t)snprintf(buf + o, cap - o, "%s%04X", o ? " " : "", c);
		p += n;
	}
}

typedef struct {
	const char *id;
	const char *text;
	int policy;      /* 0: first strong, falling back to RTL; 1: forced RTL; 2: forced LTR */
	int level;       /* expected paragraph level */
	const char *cells;
} golden;

#define LRI "\u2066"
#define FSI "\u2068"
#define PDI "\u2069"

static const golden goldens[] = {
	{ "T1", "سلام دنیا", 0, 1, "0627 06CC 0646 062F 0020 0645 0627 0644 0633" },
	{ "T2", "مدل GPT-4 آماده است.", 0, 1,
	  "002E 062A 0633 0627 0020 0647 062F 0627 0645 0622 0020 0047 0050 0054 002D 0034 0020 0644 062F 0645" },
	{ "T3", "دقت: 98.5% در epoch 12", 0, 1,
	  "0065 0070 006F 0063 0068 0020 0031 0032 0020 0631 062F 0020 0025 0039 0038 002E 0035 0020 003A 062A 0642 062F" },
	{ "T3b", "دقت: " LRI "98.5%" PDI " در epoch 12", 0, 1,
	  "0065 0070 006F 0063 0068 0020 0031 0032 0020 0631 062F 0020 0039 0038 002E 0035 0025 0020 003A 062A 0642 062F" },
	{ "T4", "خطا (error) در خط 42", 0, 1,
	  "0034 0032 0020 0637 062E 0020 0631 062F 0020 0028 0065 0072 0072 006F 0072 0029 0020 0627 0637 062E" },
	{ "T5", "loss = 0.123 (کاهش)", 0, 0,
	  "006C 006F 0073 0073 0020 003D 0020 0030 002E 0031 0032 0033 0020 0028 0634 0647 0627 06A9 0029" },
	{ "T6", "نسخه ۲.۱ منتشر شد", 0, 1,
	  "062F 0634 0020 0631 0634 062A 0646 0645 0020 06F2 002E 06F1 0020 0647 062E 0633 0646" },
	{ "T7", "کد `x = 1` را اجرا کن", 0, 1,
	  "0646 06A9 0020 0627 0631 062C 0627 0020 0627 0631 0020 0060 0078 0020 003D 0020 0031 0060 0020 062F 06A9" },
	{ "T8", "می\u200cخواهم", 0, 1, "0645 0647 0627 0648 062E 200C 06CC 0645" },
	{ "T9", "فایل config.yaml در مسیر /home/user ذخیره شد", 0, 1,
	  "062F 0634 0020 0647 0631 06CC 062E 0630 0020 0068 006F 006D 0065 002F 0075 0073 0065 0072 002F 0020 0631 "
	  "06CC 0633 0645 0020 0631 062F 0020 0063 006F 006E 0066 0069 0067 002E 0079 0061 006D 006C 0020 0644 06CC "
	  "0627 0641" },
	{ "T9b", "فایل config.yaml در مسیر " LRI "/home/user" PDI " ذخیره شد", 0, 1,
	  "062F 0634 0020 0647 0631 06CC 062E 0630 0020 002F 0068 006F 006D 0065 002F 0075 0073 0065 0072 0020 0631 "
	  "06CC 0633 0645 0020 0631 062F 0020 0063 006F 006E 0066 0069 0067 002E 0079 0061 006D 006C 0020 0644 06CC "
	  "0627 0641" },
	{ "T10", "epoch 3/10: خطا کاهش یافت", 0, 0,
	  "0065 0070 006F 0063 0068 0020 0033 002F 0031 0030 003A 0020 062A 0641 0627 06CC 0020 0634 0647 0627 06A9 "
	  "0020 0627 0637 062E" },
	{ "T11", "کاربر " FSI "john_doe" PDI " وارد شد", 0, 1,
	  "062F 0634 0020 062F 0631 0627 0648 0020 006A 006F 0068 006E 005F 0064 006F 0065 0020 0631 0628 0631 0627 06A9" },
	{ "T12", "12 پیام جدید", 0, 1, "062F 06CC 062F 062C 0020 0645 0627 06CC 067E 0020 0031 0032" },
	{ "T5r", "loss = 0.123 (کاهش)", 1, 1,
	  "0028 0634 0647 0627 06A9 0029 0020 006C 006F 0073 0073 0020 003D 0020 0030 002E 0031 0032 0033" },
	{ "T10r", "epoch 3/10: خطا کاهش یافت", 1, 1,
	  "062A 0641 0627 06CC 0020 0634 0647 0627 06A9 0020 0627 0637 062E 0020 003A 0065 0070 006F 0063 0068 0020 "
	  "0033 002F 0031 0030" },
	{ "T13", "GPT-4 آماده است.", 0, 0, "0047 0050 0054 002D 0034 0020 062A 0633 0627 0020 0647 062F 0627 0645 0622 002E" },
	{ "T13r", "GPT-4 آماده است.", 1, 1, "002E 062A 0633 0627 0020 0647 062F 0627 0645 0622 0020 0047 0050 0054 002D 0034" },
};

TEST(golden_visual_orders)
{
	for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
		const golden *g = &goldens[i];
		size_t len = strlen(g->text);
		int dir = g->policy == 1 ? sk_bidi_message_dir(g->text, len, 1) : sk_bidi_first_strong(g->text, len, 1);
		CHECK_MSG(dir == g->level, "%s: level %d, wanted %d", g->id, dir, g->level);
		char *vis = NULL;
		CHECK(sk_bidi_visual_line(g->text, len, g->level, &vis) == 0);
		char got[1024];
		hex_cps(vis ? vis : "", got, sizeof got);
		CHECK_MSG(!strcmp(got, g->cells), "%s:\n    got    %s\n    wanted %s", g->id, got, g->cells);
		free(vis);
	}
}

TEST(message_dir_rule)
{
	const char *t13 = "GPT-4 آماده است.";
	CHECK_EQ_INT(sk_bidi_message_dir(t13, strlen(t13), 0), SK_BIDI_LTR);
	CHECK_EQ_INT(sk_bidi_message_dir(t13, strlen(t13), 1), SK_BIDI_RTL);
	/* no strong character: the UI's direction */
	CHECK_EQ_INT(sk_bidi_message_dir("12 + 3", 6, 0), SK_BIDI_LTR);
	CHECK_EQ_INT(sk_bidi_message_dir("12 + 3", 6, 1), SK_BIDI_RTL);
	/* Persian digits alone are not letters */
	CHECK_EQ_INT(sk_bidi_message_dir("۱۲ ok", strlen("۱۲ ok"), 1), SK_BIDI_LTR);
	/* text inside an isolate does not decide */
	const char *iso = FSI "سلام" PDI " ok";
	CHECK_EQ_INT(sk_bidi_first_strong(iso, strlen(iso), 1), SK_BIDI_LTR);
	CHECK_EQ_INT(sk_bidi_first_strong("", 0, 1), SK_BIDI_RTL);
	CHECK_EQ_INT(sk_bidi_first_strong("", 0, 0), SK_BIDI_LTR);
}

TEST(locale_direction)
{
	CHECK(sk_bidi_locale_rtl("fa_IR.UTF-8"));
	CHECK(sk_bidi_locale_rtl("fa"));
	CHECK(sk_bidi_locale_rtl("ar_EG"));
	CHECK(sk_bidi_locale_rtl("he_IL.utf8@x"));
	CHECK(!sk_bidi_locale_rtl("en_US.UTF-8"));
	CHECK(!sk_bidi_locale_rtl("C.UTF-8"));
	CHECK(!sk_bidi_locale_rtl("far"));
	CHECK(!sk_bidi_locale_rtl(""));
	CHECK(!sk_bidi_locale_rtl(NULL));
}

TEST(widths)
{
	CHECK_EQ_INT(sk_char_width('a'), 1);
	CHECK_EQ_INT(sk_char_width(0x0633), 1);  /* seen */
	CHECK_EQ_INT(sk_char_width(0x064E), 0);  /* fatha */
	CHECK_EQ_INT(sk_char_width(0x0670), 0);  /* superscript alef */
	CHECK_EQ_INT(sk_char_width(0x200C), 0);  /* ZWNJ */
	CHECK_EQ_INT(sk_char_width(0x200F), 0);  /* RLM */
	CHECK_EQ_INT(sk_char_width(0x2066), 0);  /* LRI */
	CHECK_EQ_INT(sk_char_width(0x0640), 1);  /* tatweel */
	CHECK_EQ_INT(sk_char_width(0x06F1), 1);  /* Persian one */
	CHECK_EQ_INT(sk_char_width(0x4E2D), 2);  /* CJK */
	CHECK_EQ_INT(sk_char_width(0xFF21), 2);  /* fullwidth A */
	CHECK_EQ_INT(sk_char_width(0x1F600), 2); /* emoji */
	CHECK_EQ_INT(sk_char_width(0x1B), 0);
	const char *harakat = "سَلامٌ";  /* 4 letters, 2 marks */
	CHECK_EQ_INT(sk_text_width(harakat, strlen(harakat)), 4);
	const char *zwnj = "می\u200cخواهم";
	CHECK_EQ_INT(sk_text_width(zwnj, strlen(zwnj)), 7);
	CHECK_EQ_INT(sk_text_width("中文 ok", strlen("中文 ok")), 7);
	CHECK_EQ_INT(sk_text_width("", 0), 0);
	/* an invalid byte counts as U+FFFD */
	CHECK_EQ_INT(sk_text_width("a\xff" "b", 3), 3);
	/* a family emoji (ZWJ sequence) is one cluster of width 2 */
	const char *fam = "\U0001F468\u200D\U0001F469\u200D\U0001F467";
	CHECK_EQ_INT(sk_text_width(fam, strlen(fam)), 2);
}

TEST(zwnj_and_harakat_kept_in_their_cell)
{
	const char *t = "می\u200cخواهم";
	sk_bidi_cell *c;
	size_t n;
	CHECK(sk_bidi_line_cells(t, strlen(t), 0, strlen(t), SK_BIDI_RTL, &c, &n) == 0);
	CHECK_EQ_INT(n, 7);
	/* visual cell 5 (from the left) is ی with the ZWNJ: bytes 2..7 */
	if (n == 7) {
		CHECK_EQ_INT(c[5].start, 2);
		CHECK_EQ_INT(c[5].end, 7);
		CHECK_EQ_INT(c[5].width, 1);
		CHECK_EQ_INT(c[6].start, 0); /* م, first logically, is rightmost */
		for (size_t i = 0; i < n; i++)
			CHECK(c[i].rtl);
	}
	free(c);
	const char *h = "سَلام";  /* the fatha stays after its seen */
	char *v;
	CHECK(sk_bidi_visual_line(h, strlen(h), SK_BIDI_RTL, &v) == 0);
	char got[256];
	hex_cps(v, got, sizeof got);
	CHECK_MSG(!strcmp(got, "0645 0627 0644 0633 064E"), "%s", got);
	free(v);
}

TEST(direction_controls_get_no_cell)
{
	const char *t = "کاربر " FSI "john_doe" PDI " وارد شد";
	sk_bidi_cell *c;
	size_t n;
	CHECK(sk_bidi_line_cells(t, strlen(t), 0, strlen(t), SK_BIDI_RTL, &c, &n) == 0);
	CHECK_EQ_INT(n, 22);
	int w = 0;
	for (size_t i = 0; i < n; i++) {
		w += c[i].width;
		CHECK(!(c[i].end - c[i].start == 3 && (unsigned char)t[c[i].start] == 0xE2));
	}
	CHECK_EQ_INT(w, 22);
	free(c);
}

TEST(mirroring_in_rtl_runs)
{
	/* Brackets resolved to the RTL level are drawn mirrored, so that the
	 * visual "(" ... ")" still encloses the Persian word. */
	const char *t = "خطا (مهم) شد";
	char *v;
	CHECK(sk_bidi_visual_line(t, strlen(t), SK_BIDI_RTL, &v) == 0);
	char got[256];
	hex_cps(v, got, sizeof got);
	CHECK_MSG(!strcmp(got, "062F 0634 0020 0028 0645 0647 0645 0029 0020 0627 0637 062E"), "%s", got);
	free(v);
}

/* Checks the invariants of a wrap: lines in order, each at most width wide
 * (or one cluster), and nothing but spaces and newlines left out. */
static void check_wrap(const char *t, int width, const sk_wrap_line *l, size_t n)
{
	size_t len = strlen(t), p = 0;
	for (size_t i = 0; i < n; i++) {
		CHECK(l[i].start >= p && l[i].end >= l[i].start && l[i].end <= len);
		for (size_t k = p; k < l[i].start; k++)
			CHECK_MSG(t[k] == ' ' || t[k] == '\n', "byte %zu ('%c') dropped", k, t[k]);
		CHECK_EQ_INT(l[i].width, sk_text_width(t + l[i].start, l[i].end - l[i].start));
		CHECK_MSG(l[i].width <= width || sk_text_width(t + l[i].start, l[i].end - l[i].start) <= 2,
		          "line %zu is %d wide", i, l[i].width);
		p = l[i].end;
	}
	for (size_t k = p; k < len; k++)
		CHECK(t[k] == ' ' || t[k] == '\n');
}

static int line_is(const char *t, const sk_wrap_line *l, const char *want)
{
	return l->end - l->start == strlen(want) && !memcmp(t + l->start, want, strlen(want));
}

TEST(wrap_words)
{
	const char *t = "سلام دنیا، حال شما خوب است؟";
	sk_wrap_line *l;
	size_t n;
	CHECK(sk_wrap(t, strlen(t), 10, &l, &n) == 0);
	check_wrap(t, 10, l, n);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK(line_is(t, &l[0], "سلام دنیا،"));
		CHECK(line_is(t, &l[1], "حال شما"));
		CHECK(line_is(t, &l[2], "خوب است؟"));
		CHECK_EQ_INT(l[0].width, 10);
	}
	free(l);
	/* a line may end exactly at the width; spaces past it hang */
	const char *u = "abcd    efgh";
	CHECK(sk_wrap(u, strlen(u), 4, &l, &n) == 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK(line_is(u, &l[0], "abcd"));
		CHECK(line_is(u, &l[1], "efgh"));
	}
	free(l);
}

TEST(wrap_long_word_by_clusters)
{
	/* harakat and ZWNJ never start a line: the cut is between clusters */
	const char *t = "سَلَامِمی\u200cخواهمسَلَام";
	sk_wrap_line *l;
	size_t n;
	CHECK(sk_wrap(t, strlen(t), 3, &l, &n) == 0);
	check_wrap(t, 3, l, n);
	CHECK(n >= 5);
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ_INT(l[i].width, i + 1 < n ? 3 : l[i].width);
		/* the first code point of each line takes a cell */
		const unsigned char *s = (const unsigned char *)t + l[i].start;
		int32_t c = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
		if (s[0] == 0xE2)
			c = 0x200C;
		CHECK_MSG(c != 0x200C && !(c >= 0x064B && c <= 0x0652), "line %zu starts with U+%04X", i, c);
	}
	free(l);
	/* a word longer than the line after a short one: the short one stays alone */
	const char *u = "ab abcdefghij";
	CHECK(sk_wrap(u, strlen(u), 4, &l, &n) == 0);
	check_wrap(u, 4, l, n);
	CHECK_EQ_INT(n, 4);
	if (n == 4) {
		CHECK(line_is(u, &l[0], "ab"));
		CHECK(line_is(u, &l[1], "abcd"));
		CHECK(line_is(u, &l[3], "ij"));
	}
	free(l);
	/* a wide character wider than the line gets a line of its own */
	const char *w = "中文";
	CHECK(sk_wrap(w, strlen(w), 1, &l, &n) == 0);
	CHECK_EQ_INT(n, 2);
	free(l);
}

TEST(wrap_newlines_and_empty)
{
	sk_wrap_line *l;
	size_t n;
	CHECK(sk_wrap("", 0, 10, &l, &n) == 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1)
		CHECK(l[0].start == 0 && l[0].end == 0 && l[0].width == 0);
	free(l);
	const char *t = "a\n\nسلام\n";
	CHECK(sk_wrap(t, strlen(t), 10, &l, &n) == 0);
	CHECK_EQ_INT(n, 4);
	if (n == 4) {
		CHECK(line_is(t, &l[0], "a"));
		CHECK(line_is(t, &l[1], ""));
		CHECK(line_is(t, &l[2], "سلام"));
		CHECK(line_is(t, &l[3], ""));
		CHECK_EQ_INT(l[3].start, strlen(t));
	}
	free(l);
	CHECK(sk_wrap("x", 1, 0, &l, &n) == -1);
	CHECK(strstr(sk_error(), "width") != NULL);
}

TEST(reorder_per_wrapped_line)
{
	/* The paragraph is RTL; each line is reordered on its own, so the
	 * first logical words stay on the first screen line. */
	const char *t = "مدل GPT-4 آماده است و خوب کار می‌کند";
	sk_wrap_line *l;
	size_t n;
	CHECK(sk_wrap(t, strlen(t), 16, &l, &n) == 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK(line_is(t, &l[0], "مدل GPT-4 آماده"));
		char *v;
		CHECK(sk_bidi_visual_range(t, strlen(t), l[0].start, l[0].end, SK_BIDI_RTL, &v, NULL) == 0);
		char got[512];
		hex_cps(v, got, sizeof got);
		CHECK_MSG(!strcmp(got, "0647 062F 0627 0645 0622 0020 0047 0050 0054 002D 0034 0020 0644 062F 0645"),
		          "%s", got);
		free(v);
		CHECK(sk_bidi_visual_range(t, strlen(t), l[2].start, l[2].end, SK_BIDI_RTL, &v, NULL) == 0);
		hex_cps(v, got, sizeof got);
		CHECK_MSG(!strcmp(got, "062F 0646 06A9 200C 06CC 0645"), "%s", got);
		free(v);
		CHECK(line_is(t, &l[1], "است و خوب کار"));
	}
	free(l);
}

TEST(ltr_text_unchanged_and_bad_input)
{
	const char *t = "plain ASCII text, 1 2 3 (ok)";
	char *v;
	size_t vl;
	CHECK(sk_bidi_visual_range(t, strlen(t), 0, strlen(t), SK_BIDI_LTR, &v, &vl) == 0);
	CHECK(vl == strlen(t) && !strcmp(v, t));
	free(v);
	CHECK(sk_bidi_visual_line("", 0, SK_BIDI_RTL, &v) == 0);
	CHECK(v && v[0] == '\0');
	free(v);
	/* invalid UTF-8 comes out as U+FFFD, in place */
	CHECK(sk_bidi_visual_line("a\xc3(", 3, SK_BIDI_LTR, &v) == 0);
	CHECK(!strcmp(v, "a\xef\xbf\xbd("));
	free(v);
	sk_bidi_cell *c;
	size_t n;
	CHECK(sk_bidi_line_cells("abc", 3, 2, 1, SK_BIDI_LTR, &c, &n) == -1);
	CHECK(sk_bidi_line_cells("abc", 3, 0, 4, SK_BIDI_LTR, &c, &n) == -1);
	CHECK(sk_bidi_line_cells("abc", 3, 1, 1, SK_BIDI_LTR, &c, &n) == 0 && n == 0 && c == NULL);
}


/* Code points of a UTF-8 string into cps; returns the count. */
static size_t cps_of(const char *s, size_t len, uint32_t *cps, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + len;
	size_t n = 0;
	while (p < e && n < cap) {
		uint32_t c;
		int k;
		if (*p < 0x80) { c = *p; k = 1; }
		else if (*p < 0xE0) { c = *p & 0x1F; k = 2; }
		else if (*p < 0xF0) { c = *p & 0x0F; k = 3; }
		else { c = *p & 0x07; k = 4; }
		for (int i = 1; i < k && p + i < e; i++)
			c = (c << 6) | (p[i] & 0x3F);
		cps[n++] = c;
		p += k;
	}
	return n;
}

/* ICU's own visual string of a paragraph (ubidi_writeReordered, marks kept
 * after their letter, mirroring), without the pure direction controls,
 * which sk_bidi leaves out; as "XXXX XXXX ...". */
static void icu_visual(const char *t, int level, char *buf, size_t cap)
{
	UChar u[512], o[512];
	int32_t n = 0, m = 0;
	UErrorCode st = U_ZERO_ERROR;
	buf[0] = '\0';
	u_strFromUTF8(u, 512, &n, t, -1, &st);
	UBiDi *b = ubidi_open();
	if (U_SUCCESS(st))
		ubidi_setPara(b, u, n, (UBiDiLevel)level, NULL, &st);
	if (U_SUCCESS(st))
		m = ubidi_writeReordered(b, o, 512, UBIDI_DO_MIRRORING | UBIDI_KEEP_BASE_COMBINING, &st);
	ubidi_close(b);
	size_t k = 0;
	for (int32_t i = 0; U_SUCCESS(st) && i < m && k + 8 < cap;) {
		UChar32 c;
		U16_NEXT(o, i, m, c);
		if (c == 0x200E || c == 0x200F || c == 0x061C || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069))
			continue;
		k += (size_t)snprintf(buf + k, cap - k, "%s%04X", k ? " " : "", (unsigned)c);
	}
}

TEST(format_characters_where_icu_puts_them)
{
	/* The ZWNJ of «پوشه‌ی» between ی and ه (not right of ه): a terminal
	 * that joins the letters it is given then keeps ه and ی apart and ش
	 * joined to ه. With shaping: ی isolated, ه final, ش initial. */
	const char *t = "پوشه\u200cی";
	char *v = NULL;
	char got[512];
	CHECK(sk_bidi_visual_line(t, strlen(t), SK_BIDI_RTL, &v) == 0);
	hex_cps(v ? v : "", got, sizeof got);
	CHECK_MSG(!strcmp(got, "06CC 200C 0647 0634 0648 067E"), "unshaped: %s", got);
	free(v);
	CHECK(sk_bidi_visual_line_shaped(t, strlen(t), SK_BIDI_RTL, 0, &v) == 0);
	hex_cps(v ? v : "", got, sizeof got);
	CHECK_MSG(!strcmp(got, "06CC 200C 0647 0634 0648 067E"), "shape off: %s", got);
	free(v);
	CHECK(sk_bidi_visual_line_shaped(t, strlen(t), SK_BIDI_RTL, 1, &v) == 0);
	hex_cps(v ? v : "", got, sizeof got);
	CHECK_MSG(!strcmp(got, "FBFC 200C FEEA FEB7 FEEE FB58"), "shaped: %s", got);
	free(v);

	/* The cells are still the clusters: ه with its ZWNJ, 5 cells of width
	 * 1; the ZWNJ is drawn first in the cell of ه, so on the left of ه. */
	sk_bidi_cell *c = NULL;
	size_t n = 0;
	CHECK(sk_bidi_line_cells(t, strlen(t), 0, strlen(t), SK_BIDI_RTL, &c, &n) == 0);
	CHECK_EQ_INT(n, 5);
	if (n == 5) {
		CHECK_EQ_INT(c[1].start, 6);  /* ه */
		CHECK_EQ_INT(c[1].end, 11);   /* and the ZWNJ */
		CHECK_EQ_INT(c[1].width, 1);
		CHECK_EQ_INT(c[1].vstart, 2);
		CHECK_EQ_INT(c[1].vend, 7);
	}
	free(c);

	/* Against ICU itself, shaping off and on (the shaped string keeps one
	 * code point per code point, so its order is the unshaped one's):
	 * ZWNJ, ZWJ, harakat before a ZWNJ, a ZWNJ after a space or before an
	 * LRM, a word joiner, ZWSP and BOM, in RTL and LTR paragraphs, and the
	 * §5.6 rows. */
	static const struct {
		const char *text;
		int level;
	} rows[] = {
		{ "پوشه\u200cی", 1 },
		{ "می\u200cخواهم", 1 },
		{ "ب\u200dا", 1 },
		{ "سَ\u200cلام", 1 },
		{ "ab \u200cسلام", 1 },
		{ "سلام\u200c ab", 1 },
		{ "a\u200cb سلام", 1 },
		{ "نامه\u200cها و پوشه\u200cی من", 0 },
		{ "فایل‌های config\u200c.yaml", 1 },
		{ "س\u200e\u200cل", 1 },
		{ "س\u2060ل\u200bم\ufeffا", 1 },
		{ "ok: پوشه\u200cی (نو)", 0 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0] + sizeof goldens / sizeof goldens[0]; i++) {
		int row = i < sizeof rows / sizeof rows[0];
		const char *x = row ? rows[i].text : goldens[i - sizeof rows / sizeof rows[0]].text;
		int level = row ? rows[i].level : goldens[i - sizeof rows / sizeof rows[0]].level;
		char want[1024];
		icu_visual(x, level, want, sizeof want);
		for (int shape = 0; shape < 2; shape++) {
			v = NULL;
			CHECK(sk_bidi_visual_line_shaped(x, strlen(x), level, shape, &v) == 0);
			if (!v)
				continue;
			char *plain = NULL;
			if (shape) {
				/* the order of the shaped string is that of the unshaped one */
				CHECK(sk_bidi_visual_line(x, strlen(x), level, &plain) == 0);
				uint32_t a[256], b[256];
				size_t na = cps_of(plain ? plain : "", plain ? strlen(plain) : 0, a, 256);
				size_t nb = cps_of(v, strlen(v), b, 256);
				CHECK_EQ_INT(na, nb);
				for (size_t k = 0; k < na && k < nb; k++)
					CHECK_MSG((a[k] == 0x200C || a[k] == 0x200D) == (b[k] == 0x200C || b[k] == 0x200D),
					          "%s: code point %zu is U+%04X shaped, U+%04X not", x, k, b[k], a[k]);
				free(plain);
			} else {
				hex_cps(v, got, sizeof got);
				CHECK_MSG(!strcmp(got, want), "%s:\n    got    %s\n    ICU    %s", x, got, want);
			}
			free(v);
		}
	}

	/* Not ICU's way: an emoji ZWJ sequence in an RTL run stays one picture
	 * in its own order (ICU would turn the family around). */
	const char *fam = "سلام \U0001F468\u200D\U0001F469\u200D\U0001F467";
	CHECK(sk_bidi_visual_line(fam, strlen(fam), SK_BIDI_RTL, &v) == 0);
	hex_cps(v ? v : "", got, sizeof got);
	CHECK_MSG(!strcmp(got, "1F468 200D 1F469 200D 1F467 0020 0645 0627 0644 0633"), "%s", got);
	free(v);
}

static int by_start(const void *a, const void *b)
{
	const sk_bidi_cell *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

/* The shaped glyphs of a text in logical order, "XXXX XXXX+XXXX ...", '+'
 * joining code points of one cell: the cells sorted by their logical start,
 * each drawn from its bytes in the visual string. */
static void shaped_logical(const char *t, char *buf, size_t cap)
{
	sk_bidi_cell *c = NULL;
	size_t n = 0;
	char *v = NULL;
	buf[0] = '\0';
	size_t len = strlen(t);
	if (sk_bidi_line_cells_shaped(t, len, 0, len, SK_BIDI_RTL, 1, &c, &n) != 0 ||
	    sk_bidi_visual_range_shaped(t, len, 0, len, SK_BIDI_RTL, 1, &v, NULL) != 0) {
		free(c);
		free(v);
		snprintf(buf, cap, "error: %s", sk_error());
		return;
	}
	qsort(c, n, sizeof *c, by_start);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t cps[16];
		size_t k = cps_of(v + c[i].vstart, c[i].vend - c[i].vstart, cps, 16);
		for (size_t j = 0; j < k && o + 8 < cap; j++)
			o += (size_t)snprintf(buf + o, cap - o, "%s%04X", !o ? "" : j ? "+" : " ", cps[j]);
	}
	free(c);
	free(v);
}

TEST(shaping_table_s)
{
	static const char *const rows[][2] = {
		{ "سلام", "FEB3 FEE0 FE8E FEE1" },  /* lam-alef as lam medial + alef final */
		{ "لازم", "FEDF FE8E FEAF FEE1" },  /* lam initial + alef final */
		{ "می\u200cخواهم", "FEE3 200C+FBFD FEA7 FEEE FE8D FEEB FEE2" }, /* yeh final, ZWNJ on its left */
		{ "سَلام", "FEB3+064E FEE0 FE8E FEE1" }, /* fatha stays a combining mark */
		{ "پیام", "FB58 FBFF FE8E FEE1" },
		{ "کی", "FB90 FBFD" },
		{ "بـــه", "FE91 0640 0640 0640 FEEA" }, /* tatweel joins */
		{ "آلاء", "FE81 FEDF FE8E 0621" },
		{ "الآن", "FE8D FEDF FE82 FEE5" },
		{ "لا", "FEDF FE8E" },
		{ "لأ لإ", "FEDF FE84 0020 FEDF FE88" },
		{ "بلا", "FE91 FEE0 FE8E" },
		{ "ل\u200cا", "200C+FEDD FE8D" },   /* ZWNJ: no lam-alef at all */
		{ "لَا", "FEDF+064E FE8E" },        /* a haraka between is transparent */
		{ "ب\u200dا", "200D+FE91 FE8E" },   /* ZWJ forces the join */
		{ "ab 12 ۱۲ ١٢ سلام!", "0061 0062 0020 0031 0032 0020 06F1 06F2 0020 0661 0662 0020 FEB3 FEE0 FE8E FEE1 0021" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char got[512];
		shaped_logical(rows[i][0], got, sizeof got);
		CHECK_MSG(!strcmp(got, rows[i][1]), "%s:\n    got    %s\n    wanted %s", rows[i][0], got, rows[i][1]);
	}
}

/* Visual orders of some §5.6 rows with shaping on, forms worked out by hand
 * from the joining types (D dual, R right-joining: ا د ر و آ). */
static const struct {
	const char *id, *text;
	int level;
	const char *cells;
} shaped_goldens[] = {
	{ "T1", "سلام دنیا", 1, "FE8E FBFF FEE7 FEA9 0020 FEE1 FE8E FEE0 FEB3" },
	{ "T2", "مدل GPT-4 آماده است.", 1,
	  "002E FE96 FEB3 FE8D 0020 FEE9 FEA9 FE8E FEE3 FE81 0020 0047 0050 0054 002D 0034 0020 FEDD FEAA FEE3" },
	{ "T5", "loss = 0.123 (کاهش)", 0,
	  "006C 006F 0073 0073 0020 003D 0020 0030 002E 0031 0032 0033 0020 0028 FEB6 FEEB FE8E FB90 0029" },
	{ "T6", "نسخه ۲.۱ منتشر شد", 1,
	  "FEAA FEB7 0020 FEAE FEB8 FE98 FEE8 FEE3 0020 06F2 002E 06F1 0020 FEEA FEA8 FEB4 FEE7" },
	{ "T8", "می\u200cخواهم", 1, "FEE2 FEEB FE8D FEEE FEA7 200C FBFD FEE3" },
	{ "T12", "12 پیام جدید", 1, "FEAA FBFE FEAA FE9F 0020 FEE1 FE8E FBFF FB58 0020 0031 0032" },
};

TEST(shaped_golden_visual_orders)
{
	for (size_t i = 0; i < sizeof shaped_goldens / sizeof shaped_goldens[0]; i++) {
		const char *t = shaped_goldens[i].text;
		char *v = NULL;
		CHECK(sk_bidi_visual_line_shaped(t, strlen(t), shaped_goldens[i].level, 1, &v) == 0);
		char got[1024];
		hex_cps(v ? v : "", got, sizeof got);
		CHECK_MSG(!strcmp(got, shaped_goldens[i].cells), "%s:\n    got    %s\n    wanted %s", shaped_goldens[i].id,
		          got, shaped_goldens[i].cells);
		free(v);
	}
}

/* Every §5.6 row: shaping off gives the golden output unchanged; shaping on
 * gives the same number of code points and cells, each code point either
 * unchanged or a presentation form whose compatibility decomposition is the
 * unshaped letter (independent of the shaper: ICU's NFKC data), and every
 * Arabic letter of the row in a joined form. */
TEST(shaping_keeps_the_layout)
{
	UErrorCode st = U_ZERO_ERROR;
	const UNormalizer2 *nfkc = unorm2_getNFKCInstance(&st);
	CHECK(U_SUCCESS(st));
	if (U_FAILURE(st))
		return;
	for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
		const golden *g = &goldens[i];
		size_t len = strlen(g->text);
		char *plain = NULL, *off = NULL, *on = NULL;
		CHECK(sk_bidi_visual_line(g->text, len, g->level, &plain) == 0);
		CHECK(sk_bidi_visual_line_shaped(g->text, len, g->level, 0, &off) == 0);
		CHECK(sk_bidi_visual_line_shaped(g->text, len, g->level, 1, &on) == 0);
		if (!plain || !off || !on) {
			free(plain);
			free(off);
			free(on);
			continue;
		}
		CHECK_MSG(!strcmp(plain, off), "%s: shaping off changed the output", g->id);
		uint32_t a[256], b[256];
		size_t na = cps_of(plain, strlen(plain), a, 256), nb = cps_of(on, strlen(on), b, 256);
		CHECK_EQ_INT(na, nb);
		int changed = 0;
		for (size_t k = 0; k < na && k < nb; k++) {
			if (a[k] == b[k]) {
				CHECK_MSG(!(a[k] >= 0x0620 && a[k] <= 0x064A) && !(a[k] >= 0x067E && a[k] <= 0x06CC),
				          "%s: U+%04X not shaped", g->id, a[k]);
				continue;
			}
			UChar d[8];
			int32_t nd = unorm2_getRawDecomposition(nfkc, (UChar32)b[k], d, 8, &st);
			CHECK_MSG(nd == 1 && d[0] == a[k], "%s: U+%04X shaped as U+%04X", g->id, a[k], b[k]);
			changed++;
		}
		CHECK_MSG(changed > 0, "%s: nothing shaped", g->id);
		sk_bidi_cell *c0, *c1;
		size_t n0, n1;
		CHECK(sk_bidi_line_cells(g->text, len, 0, len, g->level, &c0, &n0) == 0);
		CHECK(sk_bidi_line_cells_shaped(g->text, len, 0, len, g->level, 1, &c1, &n1) == 0);
		CHECK_EQ_INT(n0, n1);
		for (size_t k = 0; k < n0 && k < n1; k++) {
			CHECK(c0[k].start == c1[k].start && c0[k].end == c1[k].end);
			CHECK_EQ_INT(c0[k].width, c1[k].width);
			CHECK_EQ_INT(c0[k].rtl, c1[k].rtl);
		}
		free(c0);
		free(c1);
		free(plain);
		free(off);
		free(on);
	}
}

TEST(shaped_cells_stay_aligned)
{
	/* lam-alef: two cells of width 1, one per letter, each with its glyph */
	const char *t = "سلام";
	sk_bidi_cell *c;
	size_t n;
	char *v;
	CHECK(sk_bidi_line_cells_shaped(t, strlen(t), 0, strlen(t), SK_BIDI_RTL, 1, &c, &n) == 0);
	CHECK(sk_bidi_visual_line_shaped(t, strlen(t), SK_BIDI_RTL, 1, &v) == 0);
	CHECK_EQ_INT(n, 4);
	if (n == 4) {
		static const size_t starts[] = { 6, 4, 2, 0 };                        /* م ا ل س */
		static const char *const glyphs[] = { "\uFEE1", "\uFE8E", "\uFEE0", "\uFEB3" };
		for (size_t i = 0; i < 4; i++) {
			CHECK_EQ_INT(c[i].start, starts[i]);
			CHECK_EQ_INT(c[i].end, starts[i] + 2);
			CHECK_EQ_INT(c[i].width, 1);
			CHECK(c[i].vend - c[i].vstart == 3 && !memcmp(v + c[i].vstart, glyphs[i], 3));
		}
	}
	free(c);
	free(v);
	/* harakat keep the width: 4 cells for 4 letters, marks in their cells */
	const char *h = "سَلامٌ";
	CHECK(sk_bidi_line_cells_shaped(h, strlen(h), 0, strlen(h), SK_BIDI_RTL, 1, &c, &n) == 0);
	CHECK(sk_bidi_visual_line_shaped(h, strlen(h), SK_BIDI_RTL, 1, &v) == 0);
	CHECK_EQ_INT(n, 4);
	int w = 0;
	for (size_t i = 0; i < n; i++)
		w += c[i].width;
	CHECK_EQ_INT(w, 4);
	char got[256];
	hex_cps(v, got, sizeof got);
	CHECK_MSG(!strcmp(got, "FEE1 064C FE8E FEE0 FEB3 064E"), "%s", got);
	CHECK_EQ_INT(sk_text_width(v, strlen(v)), 4);
	free(c);
	free(v);
	/* the line is shaped within its paragraph: a line "سل" cut from "سلام"
	 * keeps the lam that joins the alef on the next line */
	CHECK(sk_bidi_visual_range_shaped(t, strlen(t), 0, 4, SK_BIDI_RTL, 1, &v, NULL) == 0);
	hex_cps(v, got, sizeof got);
	CHECK_MSG(!strcmp(got, "FEE0 FEB3"), "%s", got);
	free(v);
	/* paragraphs given separately never join across; Latin is untouched */
	const char *lat = "plain text 123 (ok)";
	CHECK(sk_bidi_visual_line_shaped(lat, strlen(lat), SK_BIDI_LTR, 1, &v) == 0);
	CHECK(!strcmp(v, lat));
	free(v);
	/* mirroring still applies in shaped RTL runs */
	const char *m = "خطا (مهم) شد";
	CHECK(sk_bidi_visual_line_shaped(m, strlen(m), SK_BIDI_RTL, 1, &v) == 0);
	hex_cps(v, got, sizeof got);
	CHECK_MSG(!strcmp(got, "FEAA FEB7 0020 0028 FEE2 FEEC FEE3 0029 0020 FE8E FEC4 FEA7"), "%s", got);
	free(v);
}

/* Sets or clears an environment variable (value NULL: unset). */
static void env(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

TEST(shape_mode_parse_and_resolve)
{
	sk_shape_mode m = SK_SHAPE_OFF;
	CHECK(sk_shape_mode_parse("auto", &m) == 0 && m == SK_SHAPE_AUTO);
	CHECK(sk_shape_mode_parse("on", &m) == 0 && m == SK_SHAPE_ON);
	CHECK(sk_shape_mode_parse("off", &m) == 0 && m == SK_SHAPE_OFF);
	CHECK(sk_shape_mode_parse("yes", &m) == -1 && m == SK_SHAPE_OFF);
	CHECK(strstr(sk_error(), "yes") != NULL);
	CHECK(sk_shape_mode_parse("", &m) == -1);
	CHECK(sk_shape_mode_parse(NULL, &m) == -1);

	static const char *const names[] = { "VTE_VERSION", "TMUX", "STY", "TERM" };
	char *saved[4];
	for (size_t i = 0; i < 4; i++) {
		const char *v = getenv(names[i]);
		saved[i] = v ? strdup(v) : NULL;
	}
	static const struct {
		const char *vte, *tmux, *sty, *term;
		int shape;
	} cases[] = {
		{ "7200", NULL, NULL, "xterm-256color", 0 },  /* GNOME Terminal, VTE 0.72 */
		{ "5800", NULL, NULL, "xterm-256color", 0 },  /* 0.58: shapes itself */
		{ "5603", NULL, NULL, "xterm-256color", 1 },  /* older VTE: no shaping */
		{ NULL, NULL, NULL, "xterm-256color", 1 },    /* xterm */
		{ "", NULL, NULL, "xterm", 1 },
		{ "junk", NULL, NULL, "xterm", 1 },
		{ "7200", "/tmp/tmux-1000/default,1,0", NULL, "tmux-256color", 1 },
		{ "7200", "/tmp/tmux-1000/default,1,0", NULL, "xterm", 1 },
		{ "7200", NULL, "1234.pts-0", "xterm", 1 },
		{ "7200", NULL, NULL, "screen-256color", 1 },
		{ "7200", NULL, NULL, "tmux", 1 },
		{ "7200", "", "", NULL, 0 },                   /* empty markers do not count */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		env("VTE_VERSION", cases[i].vte);
		env("TMUX", cases[i].tmux);
		env("STY", cases[i].sty);
		env("TERM", cases[i].term);
		CHECK_MSG(sk_shape_resolve(SK_SHAPE_AUTO) == cases[i].shape, "case %zu", i);
		CHECK_EQ_INT(sk_shape_resolve(SK_SHAPE_ON), 1);
		CHECK_EQ_INT(sk_shape_resolve(SK_SHAPE_OFF), 0);
	}
	for (size_t i = 0; i < 4; i++) {
		env(names[i], saved[i]);
		free(saved[i]);
	}
}

int main(void)
{
	RUN(golden_visual_orders);
	RUN(message_dir_rule);
	RUN(locale_direction);
	RUN(widths);
	RUN(zwnj_and_harakat_kept_in_their_cell);
	RUN(format_characters_where_icu_puts_them);
	RUN(direction_controls_get_no_cell);
	RUN(mirroring_in_rtl_runs);
	RUN(wrap_words);
	RUN(wrap_long_word_by_clusters);
	RUN(wrap_newlines_and_empty);
	RUN(reorder_per_wrapped_line);
	RUN(ltr_text_unchanged_and_bad_input);
	RUN(shaping_table_s);
	RUN(shaped_golden_visual_orders);
	RUN(shaping_keeps_the_layout);
	RUN(shaped_cells_stay_aligned);
	RUN(shape_mode_parse_and_resolve);
	TEST_EXIT();
}
