/* What the views share about the engine: the model loaded, the adapter in
 * use (and whether Chat uses it), the training run's state; the engine
 * events that change them, and loading an adapter (/adapter DIR in the
 * input line, a in the Train view). */
#ifndef SK_UI_TUI_SESSION_H
#define SK_UI_TUI_SESSION_H

#include "engine/engine.h"

typedef struct tui tui;

typedef struct {
	int model_loaded;
	char model_desc[160];   /* "NAME (ARCH, N layers)" for the status line */
	char *adapter_path;     /* loaded adapter, NULL when none */
	int adapter_rank;
	int adapter_on;         /* Chat answers with the adapter (/adapter on|off) */
	int adapter_live;       /* the adapter in use is the training run's */
	int train_state;        /* SK_TRAIN_* */
} tui_session;

void tui_session_init(tui *t);
/* Model and adapter loaded, log messages, errors (flashed), training
 * state; the other events are the views'. */
void tui_session_event(tui *t, const sk_engine_event *ev);
/* Asks the engine to load the adapter in dir (flashed); -1 when it
 * refused the command. */
int tui_session_load_adapter(tui *t, const char *dir);
void tui_session_free(tui *t);

#endif
