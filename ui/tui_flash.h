/* A message flashed in the status line for a few seconds: confirmations,
 * and warnings and errors (which also go to the log). */
#ifndef SK_UI_TUI_FLASH_H
#define SK_UI_TUI_FLASH_H

typedef struct tui tui;

typedef struct {
	char *text;             /* NULL: none */
	int level;              /* SK_LOG_* */
	double until;           /* monotonic seconds */
} tui_flash_msg;

void tui_flash(tui *t, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The message to show now (NULL: none); *level gets its level. */
const char *tui_flash_shown(const tui *t, int *level);
/* Drops the message once its time is up; 1 when it did (redraw). */
int tui_flash_expire(tui *t);
void tui_flash_free(tui *t);

#endif
