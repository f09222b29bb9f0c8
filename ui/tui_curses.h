/* ncursesw with its wide-character functions, for every file of the TUI. */
#ifndef SK_UI_TUI_CURSES_H
#define SK_UI_TUI_CURSES_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <ncursesw/curses.h>
#include <ncursesw/panel.h>

#endif
