/* The input line of Chat and Compare: GNU readline through its callback
 * interface (docs/rtl-terminal.md §4), one edit buffer for both views. */
#ifndef SK_UI_TUI_INPUT_H
#define SK_UI_TUI_INPUT_H

typedef struct tui tui;

/* Sets readline up; submit gets every line sent with Enter (Ctrl-D on an
 * empty line quits instead). */
int tui_input_init(tui *t, void (*submit)(tui *t, const char *line));
void tui_input_end(void);
/* One wgetch() result for the line editor. */
void tui_input_key(int ch);
/* Draws the prompt and the edit buffer (bidi-reordered) into t->input and
 * leaves the cursor on its cell; busy: an answer is coming (said in an
 * empty line). */
void tui_input_draw(tui *t, const char *prompt, int busy);
void tui_input_clear(tui *t);

#endif
