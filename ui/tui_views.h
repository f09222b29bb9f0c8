/* The views behind one table of hooks, as in tig: the app loop calls a
 * view only through its hooks, and a view never calls another view; what
 * they share lies below them (tui_session, tui_conversation, tui_log,
 * tui_flash, tui_text, tui_colors). A hook a view has no use for is NULL. */
#ifndef SK_UI_TUI_VIEWS_H
#define SK_UI_TUI_VIEWS_H

#include "engine/engine.h"
#include "ui/tui_curses.h"

typedef struct tui tui;

typedef struct {
	const char *name;       /* its tab in the header (N_(): translated when drawn) */
	const char *prompt;     /* the input line's prompt (N_()); NULL: the view has no input line */
	/* Makes its state (t->priv[its index]); -1 when out of memory. */
	int (*init)(tui *t);
	void (*free)(tui *t);
	/* Draws the view into its body window. */
	void (*draw)(tui *t, WINDOW *w);
	/* Every engine event, whether the view is shown or not. */
	void (*event)(tui *t, const sk_engine_event *ev);
	/* A key, before the app's own (Tab, F-keys, ...); 1 when it took it. */
	int (*key)(tui *t, int ch);
	/* An Esc that no key followed (Alt-1..4 are Esc and a digit). */
	void (*esc)(tui *t);
	/* A line sent from the input line that is not a /command. */
	void (*line)(tui *t, const char *text);
	/* Ctrl-C: stops its generation; 1 when one was running. */
	int (*interrupt)(tui *t);
	/* Whether its generation is running ("generating" in the status line). */
	int (*busy)(const tui *t);
	/* PgUp (lines > 0) and PgDn (lines < 0). */
	void (*page)(tui *t, int lines);
	/* It became the view shown. */
	void (*focus)(tui *t);
} tui_view;

extern const tui_view tui_view_chat, tui_view_compare, tui_view_train, tui_view_log;
/* Indexed by V_CHAT .. V_LOG. */
extern const tui_view *const tui_views[];

/* Every view's init hook; -1 when one failed. */
int tui_views_init(tui *t);
void tui_views_free(tui *t);
/* An engine event to every view. */
void tui_views_event(tui *t, const sk_engine_event *ev);
/* Whether any view's generation is running. */
int tui_views_busy(const tui *t);
/* Shows view v (wrapping around: -1 is the last). */
void tui_show_view(tui *t, int v);

#endif
