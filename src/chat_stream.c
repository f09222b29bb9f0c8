/* Streaming answer display: logical text as it comes, or per-line visual
 * order redrawn in place (docs/rtl-terminal.md §2.3). */
#include "src/chat_stream.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "ui/bidi.h"

void sk_chat_stream_begin(sk_chat_stream *s, FILE *out, int app, int rtl_ui, int cols, int sanitize)
{
	sk_strbuf para = s->para; /* its memory is kept from one answer to the next */
	memset(s, 0, sizeof *s);
	s->para = para;
	sk_strbuf_clear(&s->para);
	s->out = out;
	s->app = app;
	s->rtl_ui = rtl_ui;
	s->width = cols > 2 ? cols - 1 : 1;
	s->sanitize = sanitize || app;
	s->at_bol = 1;
}

void sk_chat_stream_free(sk_chat_stream *s)
{
	sk_strbuf_free(&s->para);
}

/* One wrapped line of the paragraph, over whatever the current screen line
 * holds; right-aligned when the paragraph is RTL. */
static int sk_chat_shaping;

void sk_chat_stream_set_shaping(int on)
{
	sk_chat_shaping = on;
}

int sk_chat_stream_shaping(void)
{
	return sk_chat_shaping;
}

static int draw_line(sk_chat_stream *s, const sk_wrap_line *l, int dir)
{
	char *vis;
	if (sk_bidi_visual_range_shaped(s->para.s, s->para.len, s->done + l->start, s->done + l->end, dir, sk_chat_shaping,
	                                &vis, NULL) != 0)
		return -1;
	fputs("\r\033[K", s->out);
	if (dir == SK_BIDI_RTL)
		for (int i = l->width; i < s->width; i++)
			fputc(' ', s->out);
	fputs(vis, s->out);
	free(vis);
	return 0;
}

/* Re-lays out the uncommitted part of the paragraph: every line but the
 * last is final (committed with a newline), the last is drawn in place. */
static int redraw(sk_chat_stream *s)
{
	sk_wrap_line *lines;
	size_t nl;
	int dir = sk_bidi_message_dir(s->para.s, s->para.len, s->rtl_ui);
	if (sk_wrap(s->para.s + s->done, s->para.len - s->done, s->width, &lines, &nl) != 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < nl && rc == 0; i++) {
		rc = draw_line(s, &lines[i], dir);
		if (i + 1 < nl)
			fputc('\n', s->out);
	}
	if (rc == 0) {
		s->done += lines[nl - 1].start;
		s->drawn = 1;
	}
	free(lines);
	fflush(s->out);
	return rc;
}

static int end_para(sk_chat_stream *s)
{
	if (s->para.len > s->done && redraw(s) != 0)
		return -1;
	fputc('\n', s->out);
	sk_strbuf_clear(&s->para);
	s->done = 0;
	s->drawn = 0;
	return 0;
}

int sk_chat_stream_write(sk_chat_stream *s, const char *text, size_t len)
{
	if (len == 0)
		return 0;
	s->any = 1;
	size_t i = 0;
	while (i < len) {
		/* runs of ordinary bytes go as they are */
		size_t j = i;
		while (j < len) {
			unsigned char c = (unsigned char)text[j];
			if (c == '\n' || (s->sanitize && (c < 0x20 || c == 0x7F)))
				break;
			/* C1 controls U+0080..U+009F (C2 80..C2 9F) */
			if (s->sanitize && c == 0xC2 && j + 1 < len && (unsigned char)text[j + 1] >= 0x80 &&
			    (unsigned char)text[j + 1] < 0xA0)
				break;
			j++;
		}
		if (j > i) {
			if (s->app) {
				if (sk_strbuf_add(&s->para, text + i, j - i) != 0)
					return -1;
			} else {
				fwrite(text + i, 1, j - i, s->out);
			}
			s->at_bol = 0;
		}
		if (j == len)
			break;
		unsigned char c = (unsigned char)text[j];
		if (c == '\n') {
			if (s->app) {
				if (end_para(s) != 0)
					return -1;
			} else {
				fputc('\n', s->out);
			}
			s->at_bol = 1;
			i = j + 1;
		} else if (c == '\t') {
			/* widths of tabs depend on the terminal's tab stops */
			if (s->app ? sk_strbuf_add(&s->para, "    ", 4) != 0 : fputc('\t', s->out) == EOF)
				return -1;
			s->at_bol = 0;
			i = j + 1;
		} else {
			i = j + (c == 0xC2 ? 2 : 1); /* other controls are left out */
		}
	}
	if (s->app && s->para.len > s->done && redraw(s) != 0)
		return -1;
	fflush(s->out);
	return 0;
}

int sk_chat_stream_end(sk_chat_stream *s)
{
	int rc = 0;
	if (s->app && s->para.len > 0) {
		rc = end_para(s);
	} else if (!s->any || !s->at_bol) {
		fputc('\n', s->out);
	}
	s->at_bol = 1;
	s->any = 0;
	fflush(s->out);
	return rc;
}
