/* The TUI's state: the screen, what the views share (each part in its own
 * file below the views) and each view's own state, which only the view's
 * file knows. */
#ifndef SK_UI_TUI_INTERNAL_H
#define SK_UI_TUI_INTERNAL_H

#include "engine/engine.h"
#include "ui/tui.h"
#include "ui/tui_conversation.h"
#include "ui/tui_curses.h"
#include "ui/tui_flash.h"
#include "ui/tui_log.h"
#include "ui/tui_session.h"

/* The views, in the order of their tabs (ui/tui_views.h). */
enum { V_CHAT, V_COMPARE, V_TRAIN, V_LOG, V_N };
/* Minimum screen; below it a message replaces the layout. */
enum { TUI_MIN_COLS = 80, TUI_MIN_ROWS = 24 };
/* Sessions of the engine's generate commands, one range per view: every
 * view sees every event and keeps those of its own sessions. */
enum { S_CHAT = 0, S_CMP_BASE = 10, S_CMP_ADAPTER = 11 };

struct tui {
	sk_tui_opts o;
	sk_engine *eng;
	/* the screen (ui/tui_frame.c) */
	int mono;
	int rows, cols, too_small;
	WINDOW *hdr, *status, *input, *helpw;
	WINDOW *body[V_N];
	PANEL *pbody[V_N], *phelp;
	int view, help_on, quit, dirty;
	int esc_pending;        /* an Esc waits for the key after it (Alt-1..4) */
	/* shared by the views */
	tui_session ses;
	tui_conversation conv;
	tui_log log;
	tui_flash_msg flash;
	/* each view's own state, made by its init hook */
	void *priv[V_N];
};

#endif
