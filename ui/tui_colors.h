/* The TUI's colour pairs and the attributes drawn with them. */
#ifndef SK_UI_TUI_COLORS_H
#define SK_UI_TUI_COLORS_H

#include "ui/tui_curses.h"

typedef struct tui tui;

enum { C_TAB = 1, C_USER, C_MODEL, C_DIM, C_ERR, C_WARN, C_RAW, C_SMOOTH, C_EVAL, C_BAR, C_NPAIRS };

/* Sets up the pairs after initscr; t->mono when the terminal has no
 * colours or NO_COLOR is set. */
void tui_colors_init(tui *t);
/* Pair's attribute, or mono (attributes alone) on a monochrome screen. */
attr_t tui_attr(const tui *t, int pair, attr_t mono);

#endif
