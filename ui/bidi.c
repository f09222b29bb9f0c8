/* Bidi layout with ICU: wrap in logical order, then reorder each line from
 * grapheme clusters (rtl-terminal.md §2.3–§2.4). */
#include "ui/bidi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ubidi.h>
#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/ushape.h>
#include <unicode/utext.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include "engine/error.h"

/* Lengths are handed to ICU as int32_t. */
#define SK_BIDI_MAX_LEN ((size_t)INT32_MAX / 4)

static UChar32 next_cp(const char *s, int32_t *i, int32_t len)
{
	UChar32 c;
	U8_NEXT((const uint8_t *)s, *i, len, c);
	return c < 0 ? 0xFFFD : c;
}

int sk_bidi_first_strong(const char *utf8, size_t len, int fallback)
{
	if (len > SK_BIDI_MAX_LEN)
		len = SK_BIDI_MAX_LEN;
	int depth = 0;
	for (int32_t i = 0; i < (int32_t)len;) {
		UChar32 c = next_cp(utf8, &i, (int32_t)len);
		switch (u_charDirection(c)) {
		case U_LEFT_TO_RIGHT_ISOLATE:
		case U_RIGHT_TO_LEFT_ISOLATE:
		case U_FIRST_STRONG_ISOLATE:
			depth++;
			break;
		case U_POP_DIRECTIONAL_ISOLATE:
			if (depth > 0)
				depth--;
			break;
		case U_LEFT_TO_RIGHT:
			if (!depth)
				return SK_BIDI_LTR;
			break;
		case U_RIGHT_TO_LEFT:
		case U_RIGHT_TO_LEFT_ARABIC:
			if (!depth)
				return SK_BIDI_RTL;
			break;
		default:
			break;
		}
	}
	return fallback ? SK_BIDI_RTL : SK_BIDI_LTR;
}

int sk_bidi_message_dir(const char *utf8, size_t len, int rtl_ui)
{
	if (len > SK_BIDI_MAX_LEN)
		len = SK_BIDI_MAX_LEN;
	if (rtl_ui) {
		for (int32_t i = 0; i < (int32_t)len;) {
			UChar32 c = next_cp(utf8, &i, (int32_t)len);
			UCharDirection d = u_charDirection(c);
			if ((d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC) && u_isalpha(c))
				return SK_BIDI_RTL;
		}
	}
	return sk_bidi_first_strong(utf8, len, rtl_ui);
}

int sk_bidi_locale_rtl(const char *locale)
{
	static const char *const rtl[] = { "fa", "ar", "he", "ur", "ps", "ckb", "sd", "ug", "yi", "dv", "iw" };
	if (!locale)
		return 0;
	size_t n = strcspn(locale, "_.@-");
	for (size_t i = 0; i < sizeof rtl / sizeof rtl[0]; i++)
		if (strlen(rtl[i]) == n && !strncmp(locale, rtl[i], n))
			return 1;
	return 0;
}

int sk_char_width(int32_t c)
{
	if (c < 0 || c > 0x10FFFF)
		return 1; /* shown as U+FFFD */
	if (c < 0x20 || (c >= 0x7F && c < 0xA0))
		return 0;
	int8_t t = u_charType(c);
	if (t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_FORMAT_CHAR)
		return 0;
	if (u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
		return 0;
	int ea = u_getIntPropertyValue(c, UCHAR_EAST_ASIAN_WIDTH);
	return ea == U_EA_WIDE || ea == U_EA_FULLWIDTH ? 2 : 1;
}

/* Width of one cluster: that of its first code point that takes space. */
static int cluster_width(const char *s, int32_t a, int32_t b)
{
	for (int32_t i = a; i < b;) {
		int w = sk_char_width(next_cp(s, &i, b));
		if (w)
			return w;
	}
	return 0;
}

/* Grapheme cluster and line-break iterators over UTF-8 (UText gives byte
 * offsets back directly). */
typedef struct {
	UText *ut;
	UBreakIterator *chars, *lines;
} sk_breaks;

static void breaks_close(sk_breaks *b)
{
	if (b->chars)
		ubrk_close(b->chars);
	if (b->lines)
		ubrk_close(b->lines);
	if (b->ut)
		utext_close(b->ut);
	memset(b, 0, sizeof *b);
}

static int breaks_open(sk_breaks *b, const char *s, int32_t len, int want_lines)
{
	UErrorCode st = U_ZERO_ERROR;
	memset(b, 0, sizeof *b);
	b->ut = utext_openUTF8(NULL, s, len, &st);
	if (U_SUCCESS(st))
		b->chars = ubrk_open(UBRK_CHARACTER, NULL, NULL, 0, &st);
	if (U_SUCCESS(st))
		ubrk_setUText(b->chars, b->ut, &st);
	if (want_lines && U_SUCCESS(st))
		b->lines = ubrk_open(UBRK_LINE, "fa", NULL, 0, &st);
	if (want_lines && U_SUCCESS(st))
		ubrk_setUText(b->lines, b->ut, &st);
	if (U_FAILURE(st)) {
		breaks_close(b);
		return sk_fail("bidi: ICU break iterator: %s", u_errorName(st));
	}
	return 0;
}

int sk_text_width(const char *utf8, size_t len)
{
	if (len == 0)
		return 0;
	if (len > SK_BIDI_MAX_LEN)
		len = SK_BIDI_MAX_LEN;
	sk_breaks b;
	if (breaks_open(&b, utf8, (int32_t)len, 0) != 0) {
		/* no iterator: count code points, which is right but for clusters */
		int w = 0;
		for (int32_t i = 0; i < (int32_t)len;)
			w += sk_char_width(next_cp(utf8, &i, (int32_t)len));
		return w;
	}
	int w = 0;
	int32_t a = ubrk_first(b.chars);
	for (int32_t e = ubrk_next(b.chars); e != UBRK_DONE; a = e, e = ubrk_next(b.chars))
		w += cluster_width(utf8, a, e);
	breaks_close(&b);
	return w;
}

typedef struct {
	sk_wrap_line *v;
	size_t n, cap;
} sk_lines;

typedef struct {
	int32_t start, end;
	int width;
	int space;
} sk_cluster;

static int lines_push(sk_lines *l, size_t start, size_t end, int width)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		sk_wrap_line *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return sk_fail("bidi: out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (sk_wrap_line){ start, end, width };
	return 0;
}

/* Emits clusters [a, b) as a line, leaving out trailing spaces. */
static int emit(sk_lines *l, size_t base, const sk_cluster *cl, size_t a, size_t b)
{
	size_t k = b;
	while (k > a && cl[k - 1].space)
		k--;
	int w = 0;
	for (size_t i = a; i < k; i++)
		w += cl[i].width;
	int32_t s = a < b ? cl[a].start : (b > 0 ? cl[b - 1].end : 0);
	int32_t e = k > a ? cl[k - 1].end : s;
	return lines_push(l, base + (size_t)s, base + (size_t)e, w);
}

/* Wraps one segment without '\n'. */
static int wrap_segment(const char *s, int32_t n, size_t base, int width, sk_lines *out)
{
	if (n == 0)
		return lines_push(out, base, base, 0);
	sk_breaks b;
	if (breaks_open(&b, s, n, 1) != 0)
		return -1;
	sk_cluster *cl = NULL;
	size_t ncl = 0, cap = 0;
	int rc = 0;
	int32_t a = ubrk_first(b.chars);
	for (int32_t e = ubrk_next(b.chars); e != UBRK_DONE; a = e, e = ubrk_next(b.chars)) {
		if (ncl == cap) {
			cap = cap ? cap * 2 : 64;
			sk_cluster *v = realloc(cl, cap * sizeof *v);
			if (!v) {
				rc = sk_fail("bidi: out of memory");
				goto done;
			}
			cl = v;
		}
		cl[ncl++] = (sk_cluster){ a, e, cluster_width(s, a, e), e - a == 1 && s[a] == ' ' };
	}
	size_t line = 0;      /* first cluster of the current line */
	size_t opp = 0;       /* last break opportunity after line, 0 = none */
	int w = 0;            /* width of clusters [line, k) */
	for (size_t k = 0; k < ncl; k++) {
		if (k > line && ubrk_isBoundary(b.lines, cl[k].start))
			opp = k;
		if (cl[k].space) {
			w += cl[k].width; /* spaces hang past the edge */
			continue;
		}
		if (w + cl[k].width > width && w > 0) {
			if (opp > line) {
				if ((rc = emit(out, base, cl, line, opp)) != 0)
					goto done;
				line = opp;
				opp = 0;
				w = 0;
				for (size_t i = line; i < k; i++)
					w += cl[i].width;
			}
			if (w + cl[k].width > width && w > 0) {
				/* a word wider than the line: cut between clusters */
				if ((rc = emit(out, base, cl, line, k)) != 0)
					goto done;
				line = k;
				opp = 0;
				w = 0;
			}
		}
		w += cl[k].width;
	}
	rc = emit(out, base, cl, line, ncl);
done:
	free(cl);
	breaks_close(&b);
	return rc;
}

int sk_wrap(const char *utf8, size_t len, int width, sk_wrap_line **lines, size_t *nlines)
{
	*lines = NULL;
	*nlines = 0;
	if (width < 1)
		return sk_fail("bidi: line width %d is less than 1", width);
	if (len > SK_BIDI_MAX_LEN)
		return sk_fail("bidi: text of %zu bytes is too long", len);
	sk_lines l = { 0 };
	size_t p = 0;
	for (;;) {
		const char *nl = memchr(utf8 + p, '\n', len - p);
		size_t e = nl ? (size_t)(nl - utf8) : len;
		if (wrap_segment(utf8 + p, (int32_t)(e - p), p, width, &l) != 0) {
			free(l.v);
			return -1;
		}
		if (!nl)
			break;
		p = e + 1;
	}
	*lines = l.v;
	*nlines = l.n;
	return 0;
}

/* Pure direction controls: not drawn (ZWNJ/ZWJ are not among them). */
static int is_dir_control(UChar32 c)
{
	return c == 0x200E || c == 0x200F || c == 0x061C || (c >= 0x202A && c <= 0x202E) ||
	       (c >= 0x2066 && c <= 0x2069);
}

/* A paragraph in UTF-16 with, for every code unit, the byte offset of its
 * code point in the UTF-8 text (and len at index n16). */
typedef struct {
	UChar *u;
	UChar *glyphs; /* what to draw for each unit: u, or u shaped */
	int32_t *byte_of;
	int32_t n16, s16, e16;
} sk_para16;

static void para16_free(sk_para16 *p)
{
	if (p->glyphs != p->u)
		free(p->glyphs);
	free(p->u);
	free(p->byte_of);
}

static int para16_make(sk_para16 *p, const char *s, size_t len, size_t start, size_t end)
{
	memset(p, 0, sizeof *p);
	p->u = malloc((len + 1) * sizeof *p->u);
	p->byte_of = malloc((len + 1) * sizeof *p->byte_of);
	if (!p->u || !p->byte_of) {
		para16_free(p);
		return sk_fail("bidi: out of memory");
	}
	int32_t j = 0;
	p->s16 = p->e16 = -1;
	for (int32_t i = 0; i < (int32_t)len;) {
		int32_t at = i;
		if (p->s16 < 0 && (size_t)at >= start)
			p->s16 = j;
		if (p->e16 < 0 && (size_t)at >= end)
			p->e16 = j;
		UChar32 c = next_cp(s, &i, (int32_t)len);
		if (c == '\n')
			c = ' '; /* one paragraph: a stray newline must not split it */
		U16_APPEND_UNSAFE(p->u, j, c);
		p->byte_of[j - 1] = at;
		if (U16_LENGTH(c) == 2)
			p->byte_of[j - 2] = at;
	}
	p->n16 = j;
	p->glyphs = p->u;
	p->byte_of[j] = (int32_t)len;
	if (p->s16 < 0)
		p->s16 = j;
	if (p->e16 < 0)
		p->e16 = j;
	return 0;
}

/* Alef forms by letter: isolated, final (the alefs ICU would fuse with a
 * preceding lam). */
static int alef_forms(UChar c, UChar *iso, UChar *fin)
{
	switch (c) {
	case 0x0622: *iso = 0xFE81; *fin = 0xFE82; return 1; /* madda */
	case 0x0623: *iso = 0xFE83; *fin = 0xFE84; return 1; /* hamza above */
	case 0x0625: *iso = 0xFE87; *fin = 0xFE88; return 1; /* hamza below */
	case 0x0627: *iso = 0xFE8D; *fin = 0xFE8E; return 1;
	default: return 0;
	}
}

static int is_presentation_form(UChar c)
{
	return (c >= 0xFB50 && c <= 0xFDFF) || (c >= 0xFE70 && c <= 0xFEFF);
}

/* Shapes the whole paragraph in logical order into p->glyphs, one unit per
 * unit (rtl-terminal.md §2.5). ICU fuses lam + alef into one ligature whatever
 * the options, which would leave a slot without a glyph (a gap in the word),
 * so every alef is shaped as waw — the same joining type (right-joining) —
 * and waw's isolated/final form is then turned into the alef's. Only
 * Arabic-script letters take ICU's result: harakat (which ICU makes spacing),
 * ZWNJ/ZWJ, digits and everything else stay as they were. */
static int para16_shape(sk_para16 *p)
{
	int32_t n = p->n16;
	if (n == 0)
		return 0;
	UChar *src = malloc((size_t)n * sizeof *src);
	UChar *dst = malloc((size_t)n * sizeof *dst);
	if (!src || !dst) {
		free(src);
		free(dst);
		return sk_fail("bidi: out of memory");
	}
	UChar iso, fin;
	for (int32_t i = 0; i < n; i++)
		src[i] = alef_forms(p->u[i], &iso, &fin) ? 0x0648 : p->u[i];
	UErrorCode st = U_ZERO_ERROR;
	int32_t got = u_shapeArabic(src, n, dst, n,
	                            U_SHAPE_LETTERS_SHAPE | U_SHAPE_TEXT_DIRECTION_LOGICAL |
	                                U_SHAPE_LENGTH_FIXED_SPACES_NEAR,
	                            &st);
	free(src);
	if (U_FAILURE(st) || got != n) {
		free(dst);
		return sk_fail("bidi: ICU shaping: %s", U_FAILURE(st) ? u_errorName(st) : "length changed");
	}
	for (int32_t i = 0; i < n; i++) {
		UChar c = p->u[i];
		if (alef_forms(c, &iso, &fin))
			dst[i] = dst[i] == 0xFEEE ? fin : dst[i] == 0xFEED ? iso : c;
		else if (!(c >= 0x0620 && c <= 0x06FF && u_charType(c) == U_OTHER_LETTER && is_presentation_form(dst[i])))
			dst[i] = c;
	}
	p->glyphs = dst;
	return 0;
}

/* Cells of the line with their UTF-16 ranges (for the visual string). */
typedef struct {
	sk_bidi_cell cell;
	int32_t s16, e16;
} sk_cell16;

static int line_cells16(const sk_para16 *p, int dir, sk_cell16 **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	int32_t n = p->e16 - p->s16;
	if (n <= 0)
		return 0;
	UErrorCode st = U_ZERO_ERROR;
	UBiDi *para = ubidi_openSized(p->n16, 0, &st);
	UBiDi *line = U_SUCCESS(st) ? ubidi_openSized(n, 0, &st) : NULL;
	UBreakIterator *chars = NULL;
	sk_cell16 *cells = NULL;
	int32_t *cstart = NULL;
	int rc = -1;
	if (U_SUCCESS(st))
		ubidi_setPara(para, p->u, p->n16, dir ? 1 : 0, NULL, &st);
	if (U_SUCCESS(st))
		ubidi_setLine(para, p->s16, p->e16, line, &st);
	if (U_SUCCESS(st))
		chars = ubrk_open(UBRK_CHARACTER, NULL, p->u + p->s16, n, &st);
	if (U_FAILURE(st)) {
		sk_fail("bidi: ICU: %s", u_errorName(st));
		goto done;
	}
	/* cluster starts, relative to the line, in logical order */
	cstart = malloc(((size_t)n + 1) * sizeof *cstart);
	cells = malloc(((size_t)n + 1) * sizeof *cells);
	if (!cstart || !cells) {
		sk_fail("bidi: out of memory");
		goto done;
	}
	int32_t ncl = 0;
	for (int32_t b = ubrk_first(chars); b != UBRK_DONE; b = ubrk_next(chars))
		cstart[ncl++] = b;
	ncl--; /* the last boundary is the end */
	int32_t nruns = ubidi_countRuns(line, &st);
	if (U_FAILURE(st)) {
		sk_fail("bidi: ICU: %s", u_errorName(st));
		goto done;
	}
	size_t nc = 0;
	for (int32_t r = 0; r < nruns; r++) {
		int32_t ls, rl;
		UBiDiDirection d = ubidi_getVisualRun(line, r, &ls, &rl);
		/* clusters whose first unit lies in [ls, ls + rl) */
		int32_t first = 0;
		while (first < ncl && cstart[first] < ls)
			first++;
		int32_t last = first;
		while (last < ncl && cstart[last] < ls + rl)
			last++;
		for (int32_t k = 0; k < last - first; k++) {
			int32_t ci = d == UBIDI_RTL ? last - 1 - k : first + k;
			int32_t a = cstart[ci], b = cstart[ci + 1];
			UChar32 c;
			int32_t i = a;
			U16_NEXT(p->u + p->s16, i, n, c);
			if (i == b && is_dir_control(c))
				continue;
			sk_cell16 *cc = &cells[nc++];
			cc->s16 = p->s16 + a;
			cc->e16 = p->s16 + b;
			cc->cell.start = (size_t)p->byte_of[cc->s16];
			cc->cell.end = (size_t)p->byte_of[cc->e16];
			cc->cell.rtl = ubidi_getLevelAt(line, a) & 1;
			int w = 0;
			for (int32_t j = a; j < b && !w;) {
				U16_NEXT(p->u + p->s16, j, b, c);
				w = sk_char_width(c);
			}
			cc->cell.width = w;
		}
	}
	*out = cells;
	*nout = nc;
	cells = NULL;
	rc = 0;
done:
	free(cells);
	free(cstart);
	if (chars)
		ubrk_close(chars);
	if (line)
		ubidi_close(line);
	if (para)
		ubidi_close(para);
	if (rc == 0 && *nout == 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* Writes the glyphs of units [a, b) of the paragraph to s at *o, in logical
 * order, leaving out direction controls; mirror: the first code point is
 * the base of a cluster at an odd level. */
static void put_units(const sk_para16 *p, int32_t a, int32_t b, int mirror, char *s, int32_t *o)
{
	for (int32_t j = a; j < b;) {
		UChar32 c, g;
		int32_t k = j;
		U16_NEXT(p->u, j, b, c);
		U16_NEXT(p->glyphs, k, b, g);
		if (k != j) /* shaping never touches surrogates; be safe anyway */
			g = c;
		if (mirror && u_isMirrored(c))
			g = u_charMirror(c);
		mirror = 0;
		if (is_dir_control(c))
			continue;
		U8_APPEND_UNSAFE((uint8_t *)s, *o, g);
	}
}

static int is_mark(UChar32 c)
{
	return (U_GET_GC_MASK(c) & U_GC_M_MASK) != 0;
}

/* Zero-width format characters that travel with the reordering (ZWNJ, ZWJ
 * and the like); tag characters are left out: they spell an emoji flag. */
static int is_moving_format(UChar32 c)
{
	return u_charType(c) == U_FORMAT_CHAR && !(c >= 0xE0000 && c <= 0xE007F);
}

/* A cluster at an odd level, in the order ICU's reordering gives
 * (ubidi_writeReordered with UBIDI_KEEP_BASE_COMBINING): its units (a code
 * point and the marks after it) right to left, so the ZWNJ of «پوشه‌ی» comes
 * out between ی and ه, where a terminal that joins the letters it is given
 * must see it; marks stay after their letter. A cluster of several spacing
 * characters (an emoji ZWJ sequence) is kept whole, as one picture. */
static void put_rtl_cluster(const sk_para16 *p, int32_t a, int32_t b, char *s, int32_t *o)
{
	int32_t j = a;
	UChar32 c;
	U16_NEXT(p->u, j, b, c);
	while (j < b) {
		U16_NEXT(p->u, j, b, c);
		if (!is_mark(c) && !is_moving_format(c)) {
			put_units(p, a, b, 1, s, o);
			return;
		}
	}
	for (int32_t end = b; end > a;) {
		int32_t k = end;
		do
			U16_PREV(p->u, a, k, c);
		while (k > a && is_mark(c));
		put_units(p, k, end, k == a, s, o);
		end = k;
	}
}

static int check_range(size_t len, size_t start, size_t end)
{
	if (len > SK_BIDI_MAX_LEN)
		return sk_fail("bidi: text of %zu bytes is too long", len);
	if (start > end || end > len)
		return sk_fail("bidi: line [%zu, %zu) is outside the text of %zu bytes", start, end, len);
	return 0;
}

/* The line's cells (with their bytes in the visual string) and, when out
 * is not NULL, the visual string itself. */
static int layout(const char *para, size_t len, size_t start, size_t end, int dir, int shape,
                  sk_bidi_cell **cells, size_t *ncells, char **out, size_t *out_len)
{
	if (cells) {
		*cells = NULL;
		*ncells = 0;
	}
	if (out) {
		*out = NULL;
		if (out_len)
			*out_len = 0;
	}
	if (check_range(len, start, end) != 0)
		return -1;
	sk_para16 p;
	if (para16_make(&p, para, len, start, end) != 0)
		return -1;
	sk_cell16 *c16 = NULL;
	size_t n = 0;
	char *s = NULL;
	int rc = -1;
	if (shape && para16_shape(&p) != 0)
		goto done;
	if (line_cells16(&p, dir, &c16, &n) != 0)
		goto done;
	/* each UTF-16 unit becomes at most 3 bytes (a pair: 4 bytes for 2) */
	s = malloc(3 * (size_t)(p.e16 - p.s16) + 1);
	if (!s) {
		sk_fail("bidi: out of memory");
		goto done;
	}
	int32_t o = 0;
	for (size_t i = 0; i < n; i++) {
		c16[i].cell.vstart = (size_t)o;
		if (c16[i].cell.rtl)
			put_rtl_cluster(&p, c16[i].s16, c16[i].e16, s, &o);
		else
			put_units(&p, c16[i].s16, c16[i].e16, 0, s, &o);
		c16[i].cell.vend = (size_t)o;
	}
	s[o] = '\0';
	if (cells && n > 0) {
		sk_bidi_cell *c = malloc(n * sizeof *c);
		if (!c) {
			sk_fail("bidi: out of memory");
			goto done;
		}
		for (size_t i = 0; i < n; i++)
			c[i] = c16[i].cell;
		*cells = c;
		*ncells = n;
	}
	if (out) {
		*out = s;
		s = NULL;
		if (out_len)
			*out_len = (size_t)o;
	}
	rc = 0;
done:
	free(s);
	free(c16);
	para16_free(&p);
	return rc;
}

int sk_bidi_line_cells(const char *para, size_t len, size_t start, size_t end, int dir,
                       sk_bidi_cell **cells, size_t *ncells)
{
	return layout(para, len, start, end, dir, 0, cells, ncells, NULL, NULL);
}

int sk_bidi_visual_range(const char *para, size_t len, size_t start, size_t end, int dir,
                         char **out, size_t *out_len)
{
	return layout(para, len, start, end, dir, 0, NULL, NULL, out, out_len);
}

int sk_bidi_visual_line(const char *utf8, size_t len, int dir, char **out)
{
	return sk_bidi_visual_range(utf8, len, 0, len, dir, out, NULL);
}

int sk_bidi_line_cells_shaped(const char *para, size_t len, size_t start, size_t end, int dir, int shape,
                              sk_bidi_cell **cells, size_t *ncells)
{
	return layout(para, len, start, end, dir, shape, cells, ncells, NULL, NULL);
}

int sk_bidi_visual_range_shaped(const char *para, size_t len, size_t start, size_t end, int dir, int shape,
                                char **out, size_t *out_len)
{
	return layout(para, len, start, end, dir, shape, NULL, NULL, out, out_len);
}

int sk_bidi_visual_line_shaped(const char *utf8, size_t len, int dir, int shape, char **out)
{
	return layout(utf8, len, 0, len, dir, shape, NULL, NULL, out, NULL);
}

int sk_shape_mode_parse(const char *s, sk_shape_mode *out)
{
	static const struct {
		const char *name;
		sk_shape_mode m;
	} modes[] = { { "auto", SK_SHAPE_AUTO }, { "on", SK_SHAPE_ON }, { "off", SK_SHAPE_OFF } };
	for (size_t i = 0; s && i < sizeof modes / sizeof modes[0]; i++)
		if (!strcmp(s, modes[i].name)) {
			*out = modes[i].m;
			return 0;
		}
	return sk_fail("shape: '%s' is not one of auto, on, off", s ? s : "");
}

int sk_shape_resolve(sk_shape_mode m)
{
	if (m != SK_SHAPE_AUTO)
		return m == SK_SHAPE_ON;
	/* a multiplexer in between draws into its own grid: its terminal may
	 * not be the VTE that started it */
	const char *tmux = getenv("TMUX"), *sty = getenv("STY"), *term = getenv("TERM");
	if ((tmux && *tmux) || (sty && *sty))
		return 1;
	if (term && (!strncmp(term, "screen", 6) || !strncmp(term, "tmux", 4)))
		return 1;
	const char *vte = getenv("VTE_VERSION");
	if (!vte || !*vte)
		return 1;
	char *e;
	long v = strtol(vte, &e, 10);
	return !(*e == '\0' && v >= 5800);
}
