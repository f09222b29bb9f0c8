/* The Train view's form for a new run, so that a first run needs no
 * command-line flags: dataset, run directory, recipe, steps, learning rate
 * and rank, edited with the keyboard; s or Enter starts the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/i18n.h"
#include "engine/paths.h"
#include "ui/bidi.h"
#include "ui/tui_colors.h"
#include "ui/tui_internal.h"
#include "ui/tui_text.h"
#include "ui/tui_train_form.h"


/* The recipes offered, with the values the form shows for them. */
typedef struct {
	const char *name;
	const char *steps, *lr, *rank;
} recipe_row;

static const recipe_row recipes[] = {
	{ "quick", "30", "2e-4", "8" },   /* a first look: 30 steps, examples cut at 256 tokens */
	{ "seed", "", "2e-5", "8" },      /* the seed report's recipe, one epoch */
	{ "seed-run", "", "2e-5", "8" },  /* the seed run's notebook: MLP only, loss on all tokens */
};
#define NRECIPES ((int)(sizeof recipes / sizeof *recipes))

static const char *recipe_note(int i)
{
	switch (i) {
	case 0: return _("30 steps, examples cut at 256 tokens");
	case 1: return _("the seed report's recipe, one epoch");
	case 2: return _("MLP only, loss on all tokens, one epoch");
	default: return _("the options given on the command line");
	}
}

static void new_out_dir(tui_train_form *f)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	char ts[32];
	strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
	snprintf(f->out, sizeof f->out, "runs/%s", ts);
	f->out_auto = 1;
}

static void set_recipe(tui_train_form *f, int i)
{
	f->recipe = i;
	if (i >= 0 && i < NRECIPES) {
		snprintf(f->steps, sizeof f->steps, "%s", recipes[i].steps);
		snprintf(f->lr, sizeof f->lr, "%s", recipes[i].lr);
		snprintf(f->rank, sizeof f->rank, "%s", recipes[i].rank);
	}
}

void tui_train_form_init(tui_train_form *f, const sk_engine_train *o)
{
	memset(f, 0, sizeof *f);
	f->field = -1;
	if (o->data) {
		/* Flags given: the form starts from them. */
		snprintf(f->data, sizeof f->data, "%s", o->data);
		f->recipe = -1;
		if (o->steps > 0)
			snprintf(f->steps, sizeof f->steps, "%d", o->steps);
		if (o->lr > 0)
			snprintf(f->lr, sizeof f->lr, "%g", o->lr);
		if (o->rank > 0)
			snprintf(f->rank, sizeof f->rank, "%d", o->rank);
	} else {
		/* the sample, wherever sokhan is started from; without it the form asks */
		if (sk_data_path(SK_SAMPLE_DATASET, f->data, sizeof f->data) != 0)
			f->data[0] = '\0';
		set_recipe(f, 0);
	}
	if (o->out_dir)
		snprintf(f->out, sizeof f->out, "%s", o->out_dir);
	else
		new_out_dir(f);
}

const char *tui_train_form_data(const tui_train_form *f)
{
	return f->data[0] ? f->data : NULL;
}

int tui_train_form_shown(int train_state)
{
	return train_state != SK_TRAIN_RUNNING && train_state != SK_TRAIN_PAUSED && train_state != SK_TRAIN_UNAVAILABLE;
}

static char *field_buf(tui_train_form *f, int i, size_t *cap)
{
	switch (i) {
	case F_DATA: *cap = sizeof f->data; return f->data;
	case F_OUT: *cap = sizeof f->out; return f->out;
	case F_STEPS: *cap = sizeof f->steps; return f->steps;
	case F_LR: *cap = sizeof f->lr; return f->lr;
	case F_RANK: *cap = sizeof f->rank; return f->rank;
	default: *cap = 0; return NULL;
	}
}

char *tui_train_form_start(tui *t, tui_train_form *f)
{
	if (!t->ses.model_loaded) {
		tui_flash(t, SK_LOG_ERROR, "%s", _("no model is loaded: start with --model PATH, or /model PATH in Chat"));
		return NULL;
	}
	if (!f->data[0]) {
		f->field = F_DATA;
		tui_flash(t, SK_LOG_WARN, "%s", _("type the path of a JSONL dataset in the form first"));
		return NULL;
	}
	if (access(f->data, R_OK) != 0) {
		f->field = F_DATA;
		tui_flash(t, SK_LOG_ERROR, _("%s: cannot read the dataset"), f->data);
		return NULL;
	}
	sk_engine_train tr = t->o.train_opts;
	tr.config = NULL; /* the form's fields decide, not a `sokhan train --tui` configuration */
	if (f->recipe >= 0) {
		/* The recipe decides what the form does not show. */
		memset(&tr, 0, sizeof tr);
		tr.recipe = recipes[f->recipe].name;
	}
	char *end;
	long steps = 0, rank = 0;
	double lr = 0;
	if (f->steps[0]) {
		steps = strtol(f->steps, &end, 10);
		if (*end || steps < 1 || steps > 1000000) {
			f->field = F_STEPS;
			tui_flash(t, SK_LOG_ERROR, _("steps: '%s' is not a number from 1 to 1000000 (empty: one epoch)"), f->steps);
			return NULL;
		}
	}
	if (f->lr[0]) {
		lr = strtod(f->lr, &end);
		if (*end || !(lr > 0 && lr < 1)) {
			f->field = F_LR;
			tui_flash(t, SK_LOG_ERROR, _("learning rate: '%s' is not a number between 0 and 1"), f->lr);
			return NULL;
		}
	}
	if (f->rank[0]) {
		rank = strtol(f->rank, &end, 10);
		if (*end || rank < 1 || rank > 4096) {
			f->field = F_RANK;
			tui_flash(t, SK_LOG_ERROR, _("rank: '%s' is not a number from 1 to 4096"), f->rank);
			return NULL;
		}
	}
	tr.data = f->data;
	tr.out_dir = f->out[0] ? f->out : NULL;
	tr.steps = (int)steps;
	tr.lr = (float)lr;
	if (rank > 0) {
		tr.rank = (int)rank;
		if (f->recipe >= 0)
			tr.alpha = 2.0f * (float)rank;  /* the recipes' alpha / r = 2 */
	}
	/* A tenth held out, for the e key and the end of the run. */
	if (tr.eval_frac <= 0)
		tr.eval_frac = 0.1f;
	sk_engine_cmd c = { .type = SK_ECMD_TRAIN_START };
	c.train = tr;
	if (sk_engine_submit(t->eng, &c) != 0) {
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
		return NULL;
	}
	char *run = strdup(f->out);
	tui_flash(t, SK_LOG_INFO, _("starting a run in %s ..."), f->out);
	f->field = -1;
	if (f->out_auto)
		new_out_dir(f);  /* the next run gets a directory of its own */
	return run;
}

int tui_train_form_key(tui_train_form *f, int ch)
{
	if (ch == '\r' || ch == '\n' || ch == KEY_ENTER)
		return 2;
	if (f->field < 0) {
		/* Not in the form: arrows enter it; other keys are the view's. */
		if (ch == KEY_DOWN || ch == KEY_UP) {
			f->field = ch == KEY_DOWN ? 0 : F_N - 1;
			return 1;
		}
		return 0;
	}
	switch (ch) {
	case KEY_DOWN:
	case '\t':
		f->field = f->field + 1 < F_N ? f->field + 1 : -1;
		return 1;
	case KEY_UP:
	case KEY_BTAB:
		f->field = f->field - 1;
		return 1;
	default: break;
	}
	if (f->field == F_RECIPE) {
		if (ch == KEY_RIGHT || ch == ' ')
			set_recipe(f, (f->recipe + 1) % NRECIPES);
		else if (ch == KEY_LEFT)
			set_recipe(f, f->recipe <= 0 ? NRECIPES - 1 : f->recipe - 1);
		else
			return ch >= 32 && ch < 256;
		return 1;
	}
	size_t cap;
	char *b = field_buf(f, f->field, &cap);
	if (!b)
		return 1;
	size_t n = strlen(b);
	if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		/* One UTF-8 character off the end. */
		while (n > 0 && ((unsigned char)b[n - 1] & 0xC0) == 0x80)
			n--;
		if (n > 0)
			n--;
		b[n] = '\0';
	} else if (ch == 21) { /* Ctrl-U */
		b[0] = '\0';
	} else if (ch >= 32 && ch < 256 && ch != 127) {
		if (n + 1 < cap) {
			b[n] = (char)ch;
			b[n + 1] = '\0';
		}
	} else {
		/* Function keys, Ctrl-D, ...: the app's. */
		return 0;
	}
	if (f->field == F_OUT)
		f->out_auto = 0;
	return 1;
}

int tui_train_form_draw(tui *t, const tui_train_form *f, WINDOW *w, int y, int x, int width)
{
	const char *labels[F_N] = { _("dataset"), _("output"), _("recipe"), _("steps"), _("lr"), _("rank") };
	tui_put(w, y, x, width, _("New training run"), tui_attr(t, C_MODEL, A_BOLD));
	const int lw = 14;
	int vw = width - lw - 2;
	if (vw > 40)
		vw = 40;
	for (int i = 0; i < F_N; i++) {
		int r = y + 1 + i;
		attr_t la = f->field == i ? A_BOLD : A_NORMAL;
		tui_put(w, r, x, 2, f->field == i ? "▸" : " ", tui_attr(t, C_USER, A_BOLD));
		tui_put(w, r, x + 2, lw - 2, labels[i], la);
		char val[1100];
		size_t cap;
		const char *b = field_buf((tui_train_form *)f, i, &cap); /* only looked at */
		if (i == F_RECIPE) {
			const char *name = f->recipe >= 0 ? recipes[f->recipe].name : _("(command line)");
			snprintf(val, sizeof val, "‹ %s ›", name);
		} else if (i == F_STEPS && !b[0]) {
			snprintf(val, sizeof val, "%s", _("(one epoch)"));
		} else {
			/* The end of a long path is what tells runs apart. */
			int bw = sk_text_width(b, strlen(b));
			const char *p = b;
			while (bw > vw - 1 && *p) {
				p++;
				while (*p && ((unsigned char)*p & 0xC0) == 0x80)
					p++;
				bw = sk_text_width(p, strlen(p));
			}
			snprintf(val, sizeof val, "%s%s", p, f->field == i ? "_" : "");
		}
		attr_t va = f->field == i ? A_REVERSE : A_UNDERLINE;
		char pad[1200];
		snprintf(pad, sizeof pad, "%-*s", i == F_RECIPE ? 0 : vw, val);
		tui_put(w, r, x + lw, vw, i == F_RECIPE ? val : pad, va);
		if (i == F_RECIPE) {
			int used = sk_text_width(val, strlen(val)) + 2;
			tui_put(w, r, x + lw + used, width - lw - used, recipe_note(f->recipe), tui_attr(t, C_DIM, A_DIM));
		}
		if (i == F_DATA && !b[0])
			tui_put(w, r, x + lw, vw, _("(type a JSONL file path)"), tui_attr(t, C_WARN, A_NORMAL));
	}
	tui_put(w, y + 1 + F_N, x, width,
	        f->field < 0 ? _("s or Enter starts; ↓ edits the form")
	                     : _("↑↓ Tab: field  type: edit  ←→: recipe  Enter: start  Esc: leave"),
	        tui_attr(t, C_DIM, A_DIM));
	return F_N + 3;
}
