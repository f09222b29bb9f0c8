/* The log the Log view shows. */
#include <stdlib.h>
#include <string.h>

#include "ui/tui_log.h"

void tui_log_add(tui_log *l, int level, const char *text)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		tui_log_line *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return;
		l->v = v;
		l->cap = cap;
	}
	/* One screen line per message. */
	char *s = strdup(text ? text : "");
	if (!s)
		return;
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	l->v[l->n++] = (tui_log_line){ level, s };
}

void tui_log_free(tui_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
	memset(l, 0, sizeof *l);
}
