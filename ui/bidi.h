/* Layout of Persian / mixed-direction text for terminals that do no bidi
 * (docs/rtl-terminal.md §2–§3): paragraph direction, display width, wrapping
 * to a width in logical order, and the visual order of one wrapped line.
 * Pure functions over UTF-8 (ICU inside, no terminal, no curses, no global
 * state), shared by `sokhan chat` and the TUI.
 *
 * Conventions: text is UTF-8 in logical order; invalid bytes count as
 * U+FFFD (width 1) and come out as U+FFFD. Offsets are byte offsets into the
 * text given. A "cell" is one grapheme cluster: a spacing character and the
 * zero-width characters after it (harakat, ZWNJ, ZWJ), never split. */
#ifndef SK_UI_BIDI_H
#define SK_UI_BIDI_H

#include <stddef.h>
#include <stdint.h>

enum { SK_BIDI_LTR = 0, SK_BIDI_RTL = 1 };

/* Direction of the first strong character (UBA P2/P3: L gives LTR, R or AL
 * gives RTL; text inside isolates is skipped), or fallback when there is
 * none. */
int sk_bidi_first_strong(const char *utf8, size_t len, int fallback);

/* The chat-message rule (rtl-terminal.md §2.2, UAX #9 HL1): with a
 * right-to-left UI (rtl_ui), a paragraph holding any Arabic-script or Hebrew
 * letter is RTL even when it starts with a Latin word; otherwise the first
 * strong character decides, falling back to the UI's direction. */
int sk_bidi_message_dir(const char *utf8, size_t len, int rtl_ui);

/* Whether a locale name ("fa_IR.UTF-8", "ar", "he_IL") is of a
 * right-to-left language (fa, ar, he, ur, ps, ckb, sd, ug, yi, dv). */
int sk_bidi_locale_rtl(const char *locale);

/* Terminal cells of one code point, from Unicode properties (not wcwidth):
 * 0 for combining marks (Mn, Me), format characters (Cf: ZWNJ, ZWJ, bidi
 * controls), default-ignorables and C0/C1 controls; 2 for East Asian Wide
 * and Fullwidth; 1 otherwise. */
int sk_char_width(int32_t c);

/* Cells of a text: the sum over grapheme clusters of the width of each
 * cluster's first non-zero-width code point. */
int sk_text_width(const char *utf8, size_t len);

/* One line of wrapped text: bytes [start, end) of the input, trailing
 * spaces at a soft break left out; width in cells. */
typedef struct {
	size_t start, end;
	int width;
} sk_wrap_line;

/* Wraps text into lines of at most width cells (width >= 1), in logical
 * order: '\n' is a hard break (not part of any line; "a\n" gives "a" and an
 * empty line); otherwise the break is the last line-break opportunity (ICU
 * UBRK_LINE) that fits, and a word wider than the line is cut at grapheme
 * cluster boundaries. A cluster wider than the width gets a line of its own.
 * Empty text gives one empty line. *lines is malloc'd. */
int sk_wrap(const char *utf8, size_t len, int width, sk_wrap_line **lines, size_t *nlines);

/* One cell of a visual line, left to right: the cluster's bytes in the
 * logical text, its width and whether its level is odd (drawn mirrored:
 * "(" as ")"). Pure direction controls (LRM, RLM, ALM, embeddings,
 * overrides, isolates) get no cell; ZWNJ and ZWJ stay in their cluster.
 * In the visual string they stand where ICU's reordering puts them: in a
 * cell at an odd level, before the letter they follow logically (so
 * between it and the next letter to its left), marks after their letter. */
typedef struct {
	size_t start, end;
	int width;
	int rtl;
	/* the cell's bytes in the line's visual string (sk_bidi_visual_range,
	 * or _shaped with the same shape flag): what to draw in the cell */
	size_t vstart, vend;
} sk_bidi_cell;

/* Visual order of the line para[start, end) of the paragraph para[0, len)
 * (no '\n' inside) laid out with base direction dir (SK_BIDI_LTR/RTL): the
 * UBA runs over the whole paragraph, reordering (L1–L2) over the line.
 * *cells is malloc'd (NULL when the line has no cells). */
int sk_bidi_line_cells(const char *para, size_t len, size_t start, size_t end, int dir,
                       sk_bidi_cell **cells, size_t *ncells);

/* The same line as a UTF-8 string in visual order (mirrored characters
 * replaced, direction controls left out), malloc'd and NUL-terminated;
 * *out_len may be NULL. */
int sk_bidi_visual_range(const char *para, size_t len, size_t start, size_t end, int dir,
                         char **out, size_t *out_len);

/* The whole of utf8[0, len) as one line. */
int sk_bidi_visual_line(const char *utf8, size_t len, int dir, char **out);

/* Arabic-script shaping for terminals that do not join letters themselves
 * (rtl-terminal.md §0 item 3, §2.5): `--shape=auto|on|off`. */
typedef enum { SK_SHAPE_OFF, SK_SHAPE_ON, SK_SHAPE_AUTO } sk_shape_mode;

/* "auto", "on" or "off" into *out; -1 (sk_fail, untranslated: callers
 * report a bad option value with their own translated usage line) for
 * anything else. */
int sk_shape_mode_parse(const char *s, sk_shape_mode *out);

/* Whether to shape (1) or not (0). AUTO is off only when the program talks
 * to VTE >= 0.58 directly ($VTE_VERSION >= 5800, and neither $TMUX nor $STY
 * set nor $TERM screen* / tmux*), because VTE shapes even in explicit mode;
 * on everywhere else (shaping twice is harmless). Reads the environment. */
int sk_shape_resolve(sk_shape_mode m);

/* Variants of the three functions above with shaping: when shape is
 * non-zero, the letters of the whole paragraph are replaced, in logical
 * order before reordering, by their joined presentation forms (ICU
 * u_shapeArabic; isolated/initial/medial/final). The output keeps one
 * code point per input code point, so cells, widths and byte ranges are
 * those of the unshaped line: lam + alef is drawn as lam initial/medial
 * (U+FEDF/U+FEE0) and the alef's final form in two cells, never as the
 * one-cell ligature (no gap in the word); harakat stay zero-width combining
 * marks in their letter's cell; ZWNJ stays and ends the joining (the letter
 * before it takes its final or isolated form); digits, Latin and every
 * other character are unchanged. shape = 0 gives exactly the functions
 * above. Pass sk_shape_resolve(mode). */
int sk_bidi_line_cells_shaped(const char *para, size_t len, size_t start, size_t end, int dir, int shape,
                              sk_bidi_cell **cells, size_t *ncells);
int sk_bidi_visual_range_shaped(const char *para, size_t len, size_t start, size_t end, int dir, int shape,
                                char **out, size_t *out_len);
int sk_bidi_visual_line_shaped(const char *utf8, size_t len, int dir, int shape, char **out);

#endif
