/* Screen dump: every cell of curscr with its combining characters. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ui/tui_curses.h"
#include "ui/tui_dump.h"

int tui_dump(const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return -1;
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	int rows, cols;
	getmaxyx(curscr, rows, cols);
	if (rows <= 0 || cols <= 0 || cols > 4096) {
		fclose(f);
		remove(tmp);
		return -1;
	}
	char *line = malloc((size_t)cols * 32 + 1);
	for (int y = 0; line && y < rows; y++) {
		size_t n = 0, keep = 0;
		mbstate_t st;
		memset(&st, 0, sizeof st);
		for (int x = 0; x < cols; x++) {
			cchar_t cc;
			wchar_t wc[CCHARW_MAX + 1];
			attr_t a;
			short pair;
			if (mvwin_wch(curscr, y, x, &cc) == ERR || getcchar(&cc, wc, &a, &pair, NULL) == ERR)
				continue;
			for (int k = 0; wc[k] && k < CCHARW_MAX; k++) {
				char mb[MB_LEN_MAX];
				size_t m = wcrtomb(mb, wc[k], &st);
				if (m == (size_t)-1)
					continue;
				memcpy(line + n, mb, m);
				n += m;
			}
			if (!(wc[0] == L' ' && wc[1] == 0))
				keep = n;
		}
		fprintf(f, "%.*s\n", (int)keep, line);
	}
	free(line);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}
