/* Status-line messages with their time to live. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ui/tui_flash.h"
#include "ui/tui_internal.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tui_flash(tui *t, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	tui_flash_msg *f = &t->flash;
	free(f->text);
	f->text = strdup(buf);
	f->level = level;
	f->until = now() + (level >= SK_LOG_WARN ? 6 : 3);
	/* Warnings and errors stay in the Log view; confirmations only flash. */
	if (level >= SK_LOG_WARN)
		tui_log_add(&t->log, level, buf);
	t->dirty = 1;
}

const char *tui_flash_shown(const tui *t, int *level)
{
	const tui_flash_msg *f = &t->flash;
	if (!f->text || now() >= f->until)
		return NULL;
	*level = f->level;
	return f->text;
}

int tui_flash_expire(tui *t)
{
	tui_flash_msg *f = &t->flash;
	if (!f->text || now() < f->until)
		return 0;
	free(f->text);
	f->text = NULL;
	return 1;
}

void tui_flash_free(tui *t)
{
	free(t->flash.text);
	t->flash.text = NULL;
}
