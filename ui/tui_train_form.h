/* The Train view's form for a new run, so that a first run needs no
 * command-line flags: dataset, run directory, recipe, steps, learning
 * rate and rank, edited with the keyboard. */
#ifndef SK_UI_TUI_TRAIN_FORM_H
#define SK_UI_TUI_TRAIN_FORM_H

#include "engine/engine.h"
#include "ui/tui_curses.h"

typedef struct tui tui;

enum { F_DATA, F_OUT, F_RECIPE, F_STEPS, F_LR, F_RANK, F_N };

typedef struct {
	char data[1024], out[1024], steps[16], lr[24], rank[16];
	int recipe;             /* index in the recipe list; -1: the command line's options */
	int field;              /* selected field; -1: the form does not have the keys */
	int out_auto;           /* out is the generated runs/<timestamp> (renewed per run) */
} tui_train_form;

/* From the command line's options when they name a dataset, else the
 * default dataset (when it exists here) and the quick recipe. */
void tui_train_form_init(tui_train_form *f, const sk_engine_train *cmdline);
/* Whether the form is shown in a training state (no run going). */
int tui_train_form_shown(int train_state);
/* A key for a shown form: 0 not its key, 1 taken, 2 Enter: start the run
 * (tui_train_form_start). */
int tui_train_form_key(tui_train_form *f, int ch);
/* Starts a run from the form's values; returns its directory (malloc'd),
 * or NULL when a value is wrong (flashed, the field selected) or the
 * engine refused. */
char *tui_train_form_start(tui *t, tui_train_form *f);
/* The dataset path (for e), NULL when empty. */
const char *tui_train_form_data(const tui_train_form *f);
/* Draws it at row y of w; returns the rows used. */
int tui_train_form_draw(tui *t, const tui_train_form *f, WINDOW *w, int y, int x, int width);

#endif
