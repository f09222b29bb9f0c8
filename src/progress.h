/* A progress display for long commands: on a terminal one line redrawn in
 * place (a bar, done/total, the caller's fields, rate and ETA); otherwise
 * (a pipe, a log file) one plain line per update, so logs stay readable. */
#ifndef SK_PROGRESS_H
#define SK_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct sk_progress sk_progress;

/* total: the number of units (steps); tty: 1, 0, or -1 to ask isatty(f).
 * unit names what is counted in the rate ("steps"). NULL when out of memory. */
sk_progress *sk_progress_new(FILE *f, int64_t total, int tty, const char *unit);
/* done units out of total; fields is free text ("loss 2.31 lr 2e-05");
 * the rate and ETA are measured from the first update. */
void sk_progress_update(sk_progress *p, int64_t done, const char *fields);
/* 1 when the display redraws one line in place (a terminal). */
int sk_progress_tty(const sk_progress *p);
/* Prints one line of text above the bar (the bar is redrawn after it). */
void sk_progress_print(sk_progress *p, const char *line);
/* Ends the bar's line; frees p. */
void sk_progress_finish(sk_progress *p);

/* Seconds as "1:02:03" or "4:05" (buf of at least 16 bytes); "--:--" for
 * a negative or non-finite value. */
void sk_progress_format_time(double s, char *buf, size_t cap);

#endif
