/* The progress display (progress.h). */
#include "src/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "engine/i18n.h"

struct sk_progress {
	FILE *f;
	int64_t total, done, done0;
	int tty, drawn;
	double t0;
	char unit[32];
	char last[512];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sk_progress_format_time(double s, char *buf, size_t cap)
{
	if (!(s >= 0) || !isfinite(s) || s > 1e8) {
		snprintf(buf, cap, "--:--");
		return;
	}
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

sk_progress *sk_progress_new(FILE *f, int64_t total, int tty, const char *unit)
{
	sk_progress *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->f = f;
	p->total = total;
	p->done0 = -1;
	p->tty = tty >= 0 ? tty : isatty(fileno(f));
	snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
	return p;
}

static int columns(const sk_progress *p)
{
	struct winsize ws;
	if (ioctl(fileno(p->f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

static void draw(sk_progress *p)
{
	double el = now_s() - p->t0;
	int64_t d = p->done - p->done0;
	double rate = d > 0 && el > 0 ? (double)d / el : NAN;
	double eta = rate > 0 ? (double)(p->total - p->done) / rate : NAN;
	char ts[16], es[16];
	sk_progress_format_time(el, ts, sizeof ts);
	sk_progress_format_time(eta, es, sizeof es);
	char tail[256];
	if (!p->tty) {
		if (isfinite(rate))
			snprintf(tail, sizeof tail, _("%.3g %s/s, %s elapsed, ETA %s"), rate, p->unit, ts, es);
		else
			snprintf(tail, sizeof tail, _("%s elapsed"), ts);
		fprintf(p->f, "%lld/%lld %s  %s\n", (long long)p->done, (long long)p->total, p->last, tail);
		fflush(p->f);
		return;
	}
	/* a terminal line is short: the caller's fields carry the rate */
	snprintf(tail, sizeof tail, _("ETA %s"), es);
	char head[64];
	snprintf(head, sizeof head, " %lld/%lld ", (long long)p->done, (long long)p->total);
	int cols = columns(p);
	int room = cols - (int)strlen(head) - (int)strlen(p->last) - (int)strlen(tail) - 6;
	int width = room > 30 ? 30 : room;
	fputc('\r', p->f);
	if (width >= 10) {
		int fill = p->total > 0 ? (int)((double)width * (double)p->done / (double)p->total) : 0;
		if (fill > width)
			fill = width;
		fputc('[', p->f);
		for (int i = 0; i < width; i++)
			fputc(i < fill ? '#' : '.', p->f);
		fputc(']', p->f);
	}
	/* the text may be wider than the terminal (Persian labels, a narrow
	 * window): cut at the width so the line does not wrap and scroll */
	char line[1024];
	snprintf(line, sizeof line, "%s%s  %s", head, p->last, tail);
	int avail = cols - (width >= 10 ? width + 2 : 0) - 1;
	fprintf(p->f, "%.*s\033[K", avail > 0 ? avail : 0, line);
	fflush(p->f);
	p->drawn = 1;
}

void sk_progress_update(sk_progress *p, int64_t done, const char *fields)
{
	if (!p)
		return;
	if (p->done0 < 0) {
		p->done0 = done;
		p->t0 = now_s();
	}
	p->done = done;
	snprintf(p->last, sizeof p->last, "%s", fields ? fields : "");
	draw(p);
}

int sk_progress_tty(const sk_progress *p)
{
	return p && p->tty;
}

void sk_progress_print(sk_progress *p, const char *line)
{
	if (p && p->tty && p->drawn)
		fprintf(p->f, "\r\033[K");
	fprintf(p ? p->f : stderr, "%s\n", line);
	if (p && p->tty && p->drawn)
		draw(p);
	fflush(p ? p->f : stderr);
}

void sk_progress_finish(sk_progress *p)
{
	if (!p)
		return;
	if (p->tty && p->drawn)
		fputc('\n', p->f);
	fflush(p->f);
	free(p);
}
