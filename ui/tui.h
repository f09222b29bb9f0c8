/* The full-screen TUI (`sokhan tui`, and `sokhan` with no command): Chat,
 * Compare (base | adapter from one batched generation), Train and Log
 * views over the engine thread (engine/engine.h). */
#ifndef SK_UI_TUI_H
#define SK_UI_TUI_H

#include "engine/engine.h"

typedef struct {
	const char *model;        /* loaded at start (may be NULL: /model PATH later) */
	const char *adapter;      /* loaded at start */
	const char *system;       /* system prompt of the chat */
	int bidi_app;             /* 1: the program reorders (explicit mode escapes); 0: the terminal does */
	int shape;                /* 1: draw Arabic-script letters in their joined presentation forms */
	int rtl_ui;               /* the UI language is right-to-left */
	sk_sampling sampling;
	int max_new;
	sk_device device;    /* --device: where the engine runs the model */
	int threads, quant_nf4;
	int token_delay_us;       /* testing aid, passed to the engine */
	int start_view;           /* 0..3 (-1: Chat) */
	/* Train view */
	int train;                /* start a run at once */
	sk_engine_train train_opts;
	const char *metrics;      /* replay a run's metrics.jsonl */
	const char *dump_path;    /* write the screen's text here after every redraw */
} sk_tui_opts;

/* Runs the TUI until the user quits; the terminal is restored on every
 * exit path. Returns the exit status (0; 1 when the terminal could not be
 * set up). */
int sk_tui_run(const sk_tui_opts *o);

#endif
