/* State of the TUI shared by its files (the app loop, input, views). */
#ifndef SK_UI_TUI_INTERNAL_H
#define SK_UI_TUI_INTERNAL_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <ncursesw/curses.h>
#include <ncursesw/panel.h>
#include <stddef.h>

#include "engine/engine.h"
#include "ui/tui.h"
#include "ui/widgets.h"

enum { V_CHAT, V_COMPARE, V_TRAIN, V_LOG, V_N };
/* Minimum screen; below it a message replaces the layout. */
enum { TUI_MIN_COLS = 80, TUI_MIN_ROWS = 24 };
/* Colour pairs (attributes alone when monochrome). */
enum { C_TAB = 1, C_USER, C_MODEL, C_DIM, C_ERR, C_WARN, C_RAW, C_SMOOTH, C_EVAL, C_BAR, C_NPAIRS };
/* Sessions of the engine's generate commands. */
enum { S_CHAT = 0, S_CMP_BASE = 10, S_CMP_ADAPTER = 11 };

/* A growing text with its layout cached for one width. */
typedef struct {
	int kind;               /* E_* */
	int adapter;            /* E_MODEL: 1 adapter on, 0 base, -1 no adapter loaded */
	char *text;
	size_t len, cap;
	sk_ui_lines lines;
	int lines_width;        /* -1: not laid out */
	size_t lines_len;
} tui_text;

enum { E_USER, E_MODEL, E_NOTE, E_STATS, E_ERROR };

typedef struct {
	tui_text *v;
	size_t n, cap;
} tui_scroll;

typedef struct {
	int level;
	char *text;
} tui_log_line;

typedef struct {
	double *v;
	size_t n, cap;
} tui_series;

/* The Train view's form for a new run (ui/tui_form.c). */
enum { F_DATA, F_OUT, F_RECIPE, F_STEPS, F_LR, F_RANK, F_N };
typedef struct {
	char data[1024], out[1024], steps[16], lr[24], rank[16];
	int recipe;             /* index in the recipe list; -1: the command line's options */
	int field;              /* selected field; -1: the form does not have the keys */
	int out_auto;           /* out is the generated runs/<timestamp> (renewed per run) */
} tui_form;

typedef struct tui {
	sk_tui_opts o;
	sk_engine *eng;
	int mono;
	int rows, cols, too_small;
	WINDOW *hdr, *status, *input, *helpw;
	WINDOW *body[V_N];
	PANEL *pbody[V_N], *phelp;
	int view, help_on, quit, dirty;
	/* model */
	int model_loaded;
	char model_desc[160];
	char *adapter_path;     /* loaded adapter, NULL when none */
	int adapter_rank;
	/* chat */
	tui_scroll chat;
	sk_chat_msg *conv;      /* contents malloc'd */
	size_t nconv, capconv;
	char *system;
	int adapter_on;
	int chat_busy;
	size_t chat_answer;     /* index in chat of the answer being streamed */
	int chat_scroll;        /* lines scrolled up from the bottom */
	/* compare */
	tui_text cmp_prompt;
	tui_text cmp_col[2];
	int cmp_busy[2];
	sk_engine_gen_info cmp_info[2];
	int cmp_has_info[2];
	/* train */
	tui_series t_step, t_loss, t_lr, t_gn, t_tps, e_step, e_loss;
	sk_engine_step_info last_step;
	int have_step;
	int train_state;
	char *train_note;
	uint64_t mem[SK_MEM_NCAT];
	int have_mem;
	tui_form form;
	char *run_dir;          /* the last run started (its adapter: RUN_DIR/adapter) */
	int adapter_live;       /* the adapter in use is the training run's */
	char *eval_file;        /* last evaluation of a dataset file */
	double eval_base, eval_adapter;
	/* log */
	tui_log_line *log;
	size_t nlog, caplog;
	int log_scroll;
	/* status line flash */
	char *flash;
	int flash_level;
	double flash_until;
	/* input */
	int esc_pending;
} tui;

double tui_now(void);
void tui_flash(tui *t, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tui_log(tui *t, int level, const char *text);
/* Writes the screen's text (what curses shows) to path, atomically. */
int tui_dump(tui *t, const char *path);
attr_t tui_attr(const tui *t, int pair, attr_t mono);

/* tui_text.c */
int tui_text_append(tui_text *x, const char *s, size_t n);
void tui_text_set(tui_text *x, const char *s);
void tui_text_free(tui_text *x);
const sk_ui_lines *tui_text_lines(tui *t, tui_text *x, int width);
tui_text *tui_scroll_push(tui_scroll *s, int kind, const char *text);
void tui_scroll_free(tui_scroll *s);
/* Draws lines [first, first+h) of a list at (y, x) in a box of w cells. */
void tui_draw_lines(WINDOW *w, int y, int x, int h, int width, const sk_ui_lines *l, size_t first, attr_t a);
/* Draws one string of UTF-8 (logical order: reordered to visual order in
 * the app bidi mode) clipped to width cells. */
void tui_put(WINDOW *w, int y, int x, int width, const char *s, attr_t a);
/* The same, right-aligned in its width when the text is right-to-left in
 * a right-to-left UI (a status line, a label of a Persian UI). */
void tui_put_dir(WINDOW *w, int y, int x, int width, const char *s, attr_t a);
/* Draws a string already in visual order. */
void tui_put_visual(WINDOW *w, int y, int x, int width, const char *s, attr_t a);
/* How tui_put lays out text: the bidi mode and the UI's direction. */
void tui_text_mode(int bidi_app, int rtl_ui);
/* Arabic-script presentation forms in the visual text (--shape). */
void tui_text_shaping(int on);

/* tui_input.c: readline through its callback interface. */
int tui_input_init(tui *t);
void tui_input_end(void);
void tui_input_key(tui *t, int ch);      /* one wgetch() result for the line editor */
void tui_input_draw(tui *t);
int tui_input_empty(void);
void tui_input_clear(tui *t);

/* tui_chat.c: Chat and Compare views. */
void tui_chat_line(tui *t, const char *line);    /* a submitted input line */
void tui_chat_event(tui *t, const sk_engine_event *ev);
void tui_chat_draw(tui *t);
void tui_compare_draw(tui *t);
void tui_chat_interrupt(tui *t);                 /* Ctrl-C */
void tui_chat_scroll(tui *t, int lines);
void tui_chat_free(tui *t);
int tui_load_adapter(tui *t, const char *dir);

/* tui_form.c: the Train view's form for a new run. */
void tui_form_init(tui *t);
/* A key for the form; 1 when it took it. */
int tui_form_key(tui *t, int ch);
/* Draws it at row y of w; returns the rows used. */
int tui_form_draw(tui *t, WINDOW *w, int y, int x, int width);
/* Starts a run from the form's values (s / Enter). */
void tui_form_start(tui *t);
/* The form's dataset path (for e), NULL when empty. */
const char *tui_form_data(const tui *t);
int tui_form_shown(const tui *t);

/* tui_train.c: Train and Log views. */
void tui_train_event(tui *t, const sk_engine_event *ev);
void tui_train_draw(tui *t);
void tui_train_key(tui *t, int ch);
void tui_log_draw(tui *t);
void tui_train_free(tui *t);

#endif
