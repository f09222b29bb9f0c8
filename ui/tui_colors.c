/* Colour pairs; NO_COLOR or a terminal without colours gets attributes
 * alone (bold, dim, reverse). */
#include <stdlib.h>

#include "ui/tui_colors.h"
#include "ui/tui_internal.h"

void tui_colors_init(tui *t)
{
	const char *nc = getenv("NO_COLOR");
	t->mono = (nc && *nc) || !has_colors();
	if (t->mono)
		return;
	start_color();
	use_default_colors();
	init_pair(C_TAB, COLOR_BLACK, COLOR_CYAN);
	init_pair(C_USER, COLOR_CYAN, -1);
	init_pair(C_MODEL, COLOR_GREEN, -1);
	init_pair(C_DIM, COLOR_WHITE, -1);
	init_pair(C_ERR, COLOR_RED, -1);
	init_pair(C_WARN, COLOR_YELLOW, -1);
	init_pair(C_RAW, COLOR_BLUE, -1);
	init_pair(C_SMOOTH, COLOR_CYAN, -1);
	init_pair(C_EVAL, COLOR_MAGENTA, -1);
	init_pair(C_BAR, COLOR_GREEN, -1);
}

attr_t tui_attr(const tui *t, int pair, attr_t mono)
{
	return t->mono ? mono : (attr_t)COLOR_PAIR(pair) | (mono & A_BOLD);
}
