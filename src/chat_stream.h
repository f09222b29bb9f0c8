/* Streaming display of a chat answer on a terminal. In app mode (the
 * terminal does no bidi) each screen line is shown in visual order: the
 * paragraph is wrapped to the terminal width in logical order, finished
 * lines are committed, and the line being written is redrawn in place
 * (\r, clear to end of line, its visual string) as tokens arrive. In
 * terminal mode the text goes out in logical order as it comes. */
#ifndef SK_CHAT_STREAM_H
#define SK_CHAT_STREAM_H

#include <stddef.h>
#include <stdio.h>

#include "engine/strbuf.h"

typedef struct {
	FILE *out;
	int app;        /* reorder lines (bidi app mode) */
	int rtl_ui;     /* paragraph direction rule of a right-to-left UI */
	int width;      /* cells per line in app mode */
	int sanitize;   /* the output is a terminal: no control characters */
	sk_strbuf para; /* the current paragraph, logical order */
	size_t done;    /* bytes of para already committed as full lines */
	int drawn;      /* the current screen line holds a partial line */
	int any;        /* something was written since begin */
	int at_bol;     /* the last thing written ended a line */
} sk_chat_stream;

/* cols: terminal columns (app mode wraps to cols - 1 so no line ever
 * triggers the terminal's own wrap). */
void sk_chat_stream_begin(sk_chat_stream *s, FILE *out, int app, int rtl_ui, int cols, int sanitize);
/* Appends text (complete UTF-8 characters) to the answer. */
int sk_chat_stream_write(sk_chat_stream *s, const char *text, size_t len);
/* Commits the last line and ends it with a newline. */
int sk_chat_stream_end(sk_chat_stream *s);
void sk_chat_stream_free(sk_chat_stream *s);
/* Arabic-script shaping of the reordered lines (app mode), for terminals
 * that do not shape: set once from --shape. */
void sk_chat_stream_set_shaping(int on);
int sk_chat_stream_shaping(void);

#endif
