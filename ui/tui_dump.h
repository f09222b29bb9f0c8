/* The screen's text as curses shows it, for tests and /dump. */
#ifndef SK_UI_TUI_DUMP_H
#define SK_UI_TUI_DUMP_H

/* Writes the screen's text (one line per row, trailing blanks cut) to
 * path, atomically (path.tmp, then rename). */
int tui_dump(const char *path);

#endif
