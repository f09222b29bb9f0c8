/* The terminal under the TUI: its modes (the bidi mode escapes of
 * docs/rtl-terminal.md §0 and §1.4, curses), restored on every exit path,
 * suspend, and the signals, caught into a self-pipe for the poll loop. */
#ifndef SK_UI_TUI_TERM_H
#define SK_UI_TUI_TERM_H

/* Opens the signal self-pipe and installs the handlers (TERM, HUP, INT,
 * QUIT, TSTP, CONT); returns the pipe's read end, -1 on failure. */
int tui_term_signals(void);
/* The signals caught since the last call, at most cap, into s; returns
 * how many. */
int tui_term_caught(unsigned char *s, int cap);
/* Closes the self-pipe. */
void tui_term_close(void);
/* Enters the TUI's modes: with bidi_app the explicit bidi mode (before
 * curses' first clear, rtl-terminal.md §1.1), then curses (raw, no echo,
 * keypad, no delay). The terminal is restored at exit too. -1 when curses
 * could not start. */
int tui_term_start(int bidi_app);
/* Back to the modes the TUI found; harmless when already done. */
void tui_term_restore(void);
/* Ctrl-Z: restores the terminal and stops; once continued, enters the
 * modes again (the caller lays the screen out anew). */
void tui_term_suspend(int bidi_app);

#endif
