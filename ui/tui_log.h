/* The engine's messages and the warnings the TUI flashed, one screen line
 * each: written by ui/tui_session.c and ui/tui_flash.c, drawn by the Log
 * view. */
#ifndef SK_UI_TUI_LOG_H
#define SK_UI_TUI_LOG_H

#include <stddef.h>

typedef struct {
	int level;              /* SK_LOG_* */
	char *text;
} tui_log_line;

typedef struct {
	tui_log_line *v;
	size_t n, cap;
} tui_log;

/* Appends a message; control characters become spaces (one line each). */
void tui_log_add(tui_log *l, int level, const char *text);
void tui_log_free(tui_log *l);

#endif
