/* Chat and Compare views: input lines and /commands, streaming answers from
 * engine events, and their drawing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "ui/bidi.h"
#include "ui/tui_internal.h"

/* ---- conversation ---- */

static int conv_push(tui *t, sk_chat_role role, const char *text)
{
	if (t->nconv == t->capconv) {
		size_t cap = t->capconv ? t->capconv * 2 : 16;
		sk_chat_msg *v = realloc(t->conv, cap * sizeof *v);
		if (!v)
			return -1;
		t->conv = v;
		t->capconv = cap;
	}
	char *c = strdup(text);
	if (!c)
		return -1;
	t->conv[t->nconv++] = (sk_chat_msg){ role, c };
	return 0;
}

static void conv_pop(tui *t)
{
	if (t->nconv)
		free((char *)t->conv[--t->nconv].content);
}

static void conv_reset(tui *t)
{
	while (t->nconv)
		conv_pop(t);
}

void tui_chat_free(tui *t)
{
	conv_reset(t);
	free(t->conv);
	free(t->system);
	tui_scroll_free(&t->chat);
	tui_text_free(&t->cmp_prompt);
	tui_text_free(&t->cmp_col[0]);
	tui_text_free(&t->cmp_col[1]);
	free(t->adapter_path);
}

/* The messages sent: the system prompt first, then the turns (malloc'd
 * array of borrowed strings). */
static sk_chat_msg *with_system(tui *t, const sk_chat_msg *turns, size_t n, size_t *out_n)
{
	size_t k = 0;
	sk_chat_msg *m = malloc((n + 1) * sizeof *m);
	if (!m)
		return NULL;
	if (t->system && *t->system)
		m[k++] = (sk_chat_msg){ SK_CHAT_SYSTEM, t->system };
	for (size_t i = 0; i < n; i++)
		m[k++] = turns[i];
	*out_n = k;
	return m;
}

static void note(tui *t, int kind, const char *text)
{
	tui_scroll_push(&t->chat, kind, text);
	t->chat_scroll = 0;
}

/* ---- commands ---- */

static int is_cmd(const char *line, const char *cmd, const char **arg)
{
	size_t n = strlen(cmd);
	if (strncmp(line, cmd, n) || (line[n] && line[n] != ' ' && line[n] != '\t'))
		return 0;
	const char *p = line + n;
	while (*p == ' ' || *p == '\t')
		p++;
	*arg = p;
	return 1;
}

int tui_load_adapter(tui *t, const char *dir)
{
	sk_engine_cmd c = { .type = SK_ECMD_LOAD_ADAPTER, .path = dir };
	if (sk_engine_submit(t->eng, &c) != 0) {
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
		return -1;
	}
	tui_flash(t, SK_LOG_INFO, _("loading adapter %s ..."), dir);
	return 0;
}

static int save_conversation(tui *t, const char *path)
{
	json_t *msgs = json_array();
	size_t n = 0;
	sk_chat_msg *m = with_system(t, t->conv, t->nconv, &n);
	for (size_t i = 0; m && i < n; i++)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", sk_role_name(m[i].role), "content",
		                                      m[i].content));
	free(m);
	json_t *o = json_pack("{s:o}", "messages", msgs);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	FILE *f = s ? fopen(path, "a") : NULL;
	int rc = f && fprintf(f, "%s\n", s) > 0 ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	free(s);
	return rc;
}

static void help_lines(tui *t)
{
	note(t, E_NOTE,
	     _("Commands: /reset (new conversation), /system [TEXT], /adapter on|off|DIR, /save FILE,\n"
	       "/model PATH, /dump FILE (screen text), /quit. //TEXT sends a message starting with '/'.\n"
	       "Keys: Enter sends, Ctrl-C stops the answer, PgUp/PgDn scroll, Tab or F2-F5 switch views, F1 help."));
}

static void send_chat(tui *t, const char *text)
{
	if (t->chat_busy) {
		tui_flash(t, SK_LOG_WARN, "%s", _("an answer is still coming: wait, or stop it with Ctrl-C"));
		return;
	}
	if (!t->model_loaded) {
		tui_flash(t, SK_LOG_ERROR, "%s", _("no model is loaded (start with --model PATH, or /model PATH)"));
		return;
	}
	if (conv_push(t, SK_CHAT_USER, text) != 0)
		return;
	size_t n = 0;
	sk_chat_msg *m = with_system(t, t->conv, t->nconv, &n);
	sk_engine_cmd c = { .type = SK_ECMD_GENERATE };
	c.gen.n_answers = 1;
	c.gen.answers[0] = (sk_engine_answer){ S_CHAT, m, n, t->adapter_on && t->adapter_path };
	c.gen.sampling = t->o.sampling;
	c.gen.max_new = t->o.max_new;
	int rc = m ? sk_engine_submit(t->eng, &c) : -1;
	free(m);
	if (rc != 0) {
		conv_pop(t);
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
		return;
	}
	note(t, E_USER, text);
	note(t, E_MODEL, "");
	t->chat_answer = t->chat.n - 1;
	t->chat.v[t->chat_answer].adapter = t->adapter_path ? t->adapter_on : -1;
	t->chat_busy = 1;
}

static void send_compare(tui *t, const char *text)
{
	if (t->cmp_busy[0] || t->cmp_busy[1]) {
		tui_flash(t, SK_LOG_WARN, "%s", _("the comparison is still running: wait, or stop it with Ctrl-C"));
		return;
	}
	if (!t->model_loaded) {
		tui_flash(t, SK_LOG_ERROR, "%s", _("no model is loaded (start with --model PATH, or /model PATH)"));
		return;
	}
	if (!t->adapter_path) {
		tui_flash(t, SK_LOG_ERROR, "%s", _("no adapter to compare with: /adapter DIR loads one"));
		return;
	}
	sk_chat_msg user = { SK_CHAT_USER, text };
	size_t n = 0;
	sk_chat_msg *m = with_system(t, &user, 1, &n);
	sk_engine_cmd c = { .type = SK_ECMD_GENERATE };
	/* One batched generation, the same sampling (and seed) on both sides. */
	c.gen.n_answers = 2;
	c.gen.answers[0] = (sk_engine_answer){ S_CMP_BASE, m, n, 0 };
	c.gen.answers[1] = (sk_engine_answer){ S_CMP_ADAPTER, m, n, 1 };
	c.gen.sampling = t->o.sampling;
	c.gen.max_new = t->o.max_new;
	int rc = m ? sk_engine_submit(t->eng, &c) : -1;
	free(m);
	if (rc != 0) {
		tui_flash(t, SK_LOG_ERROR, "%s", sk_error());
		return;
	}
	tui_text_set(&t->cmp_prompt, text);
	for (int i = 0; i < 2; i++) {
		tui_text_set(&t->cmp_col[i], "");
		t->cmp_busy[i] = 1;
		t->cmp_has_info[i] = 0;
	}
}

void tui_chat_line(tui *t, const char *line)
{
	const char *a;
	size_t n = strspn(line, " \t");
	if (!line[n])
		return;
	if (line[0] != '/' || line[1] == '/') {
		const char *text = line[0] == '/' ? line + 1 : line;
		if (t->view == V_COMPARE)
			send_compare(t, text);
		else
			send_chat(t, text);
		return;
	}
	if (is_cmd(line, "/quit", &a) || is_cmd(line, "/exit", &a)) {
		t->quit = 1;
	} else if (is_cmd(line, "/help", &a)) {
		help_lines(t);
		t->view = V_CHAT;
	} else if (is_cmd(line, "/reset", &a)) {
		if (t->chat_busy) {
			tui_flash(t, SK_LOG_WARN, "%s", _("an answer is still coming: stop it with Ctrl-C first"));
			return;
		}
		conv_reset(t);
		tui_scroll_free(&t->chat);
		note(t, E_NOTE, _("(new conversation)"));
	} else if (is_cmd(line, "/system", &a)) {
		free(t->system);
		t->system = *a ? strdup(a) : NULL;
		note(t, E_NOTE, *a ? _("(system prompt set)") : _("(no system prompt)"));
	} else if (is_cmd(line, "/adapter", &a)) {
		if (!strcmp(a, "on") || !strcmp(a, "off")) {
			if (!t->adapter_path) {
				tui_flash(t, SK_LOG_ERROR, "%s", _("no adapter is loaded: /adapter DIR loads one"));
				return;
			}
			t->adapter_on = !strcmp(a, "on");
			note(t, E_NOTE, t->adapter_on ? _("(adapter on)") : _("(adapter off: base model)"));
		} else if (*a) {
			tui_load_adapter(t, a);
		} else {
			tui_flash(t, SK_LOG_ERROR, "%s", _("/adapter: say on, off or a directory"));
		}
	} else if (is_cmd(line, "/save", &a)) {
		if (!*a)
			tui_flash(t, SK_LOG_ERROR, "%s", _("/save: give a file name"));
		else if (save_conversation(t, a) != 0)
			tui_flash(t, SK_LOG_ERROR, _("%s: cannot write the conversation"), a);
		else
			tui_flash(t, SK_LOG_INFO, _("conversation appended to %s"), a);
	} else if (is_cmd(line, "/model", &a)) {
		sk_engine_cmd c = { .type = SK_ECMD_LOAD_MODEL, .path = a };
		if (!*a || sk_engine_submit(t->eng, &c) != 0)
			tui_flash(t, SK_LOG_ERROR, "%s", *a ? sk_error() : _("/model: give a path"));
	} else if (is_cmd(line, "/dump", &a)) {
		if (!*a || tui_dump(t, a) != 0)
			tui_flash(t, SK_LOG_ERROR, _("/dump: cannot write %s"), *a ? a : "?");
		else
			tui_flash(t, SK_LOG_INFO, _("screen written to %s"), a);
	} else {
		tui_flash(t, SK_LOG_ERROR, _("unknown command %.40s (try /help)"), line);
	}
}

void tui_chat_interrupt(tui *t)
{
	if (t->view == V_COMPARE && (t->cmp_busy[0] || t->cmp_busy[1])) {
		sk_engine_cancel(t->eng, S_CMP_BASE);
		sk_engine_cancel(t->eng, S_CMP_ADAPTER);
	} else if (t->chat_busy) {
		sk_engine_cancel(t->eng, S_CHAT);
	} else {
		tui_input_clear(t);
	}
}

void tui_chat_scroll(tui *t, int lines)
{
	t->chat_scroll += lines;
	if (t->chat_scroll < 0)
		t->chat_scroll = 0;
}

static void stats_text(char *buf, size_t cap, const sk_engine_gen_info *g)
{
	snprintf(buf, cap, _("%d tokens, %.1f tokens/s; prompt %d tokens, %.0f tokens/s%s"), g->n_generated,
	         g->decode_tps, g->n_prompt, g->prefill_tps, g->stopped_by == 2 ? _(" (stopped)") : "");
}

void tui_chat_event(tui *t, const sk_engine_event *ev)
{
	switch (ev->type) {
	case SK_EV_TOKEN:
		if (ev->session == S_CHAT && t->chat_busy && t->chat_answer < t->chat.n && ev->text)
			tui_text_append(&t->chat.v[t->chat_answer], ev->text, strlen(ev->text));
		else if ((ev->session == S_CMP_BASE || ev->session == S_CMP_ADAPTER) && ev->text)
			tui_text_append(&t->cmp_col[ev->session - S_CMP_BASE], ev->text, strlen(ev->text));
		break;
	case SK_EV_GEN_DONE:
	case SK_EV_ERROR:
		if (ev->session == S_CHAT && t->chat_busy) {
			t->chat_busy = 0;
			if (ev->type == SK_EV_ERROR) {
				conv_pop(t);
				note(t, E_ERROR, ev->text ? ev->text : "?");
				break;
			}
			tui_text *ans = &t->chat.v[t->chat_answer];
			size_t tl;
			const char *tr = sk_chat_trim(ans->text ? ans->text : "", ans->len, &tl);
			char *copy = strndup(tr, tl);
			if (copy) {
				conv_push(t, SK_CHAT_ASSISTANT, copy);
				free(copy);
			}
			char buf[256];
			stats_text(buf, sizeof buf, &ev->gen);
			note(t, E_STATS, buf);
		} else if (ev->session == S_CMP_BASE || ev->session == S_CMP_ADAPTER) {
			int i = ev->session - S_CMP_BASE;
			t->cmp_busy[i] = 0;
			if (ev->type == SK_EV_GEN_DONE) {
				t->cmp_info[i] = ev->gen;
				t->cmp_has_info[i] = 1;
			} else {
				tui_text_set(&t->cmp_col[i], ev->text ? ev->text : "?");
			}
		}
		break;
	case SK_EV_ADAPTER_LOADED:
		free(t->adapter_path);
		t->adapter_path = ev->text ? strdup(ev->text) : NULL;
		t->adapter_rank = ev->info.adapter_rank;
		t->adapter_on = t->adapter_path != NULL;
		break;
	default:
		break;
	}
}

/* ---- drawing ---- */

typedef struct {
	const sk_ui_line *line;
	attr_t a;
	int x;
} row_ref;

void tui_chat_draw(tui *t)
{
	WINDOW *w = t->body[V_CHAT];
	werase(w);
	int h = getmaxy(w), width = getmaxx(w);
	int tw = width - 4;
	/* Every line of the scrollback, then the window shows the last h. */
	size_t total = 0;
	for (size_t i = 0; i < t->chat.n; i++)
		total += tui_text_lines(t, &t->chat.v[i], tw)->n + (t->chat.v[i].kind == E_USER || t->chat.v[i].kind == E_MODEL);
	row_ref *rows = calloc(total ? total : 1, sizeof *rows);
	if (!rows)
		return;
	static const sk_ui_line you = { "", 0, 0, 0 };
	size_t k = 0;
	for (size_t i = 0; i < t->chat.n; i++) {
		tui_text *x = &t->chat.v[i];
		attr_t a = A_NORMAL;
		if (x->kind == E_USER || x->kind == E_MODEL)
			rows[k++] = (row_ref){ &you, x->kind == E_USER ? tui_attr(t, C_USER, A_BOLD) : tui_attr(t, C_MODEL, A_BOLD),
				               x->kind == E_USER ? E_USER : x->adapter < 0 ? E_MODEL : x->adapter ? 100 : 101 };
		if (x->kind == E_STATS || x->kind == E_NOTE)
			a = tui_attr(t, C_DIM, A_DIM);
		if (x->kind == E_ERROR)
			a = tui_attr(t, C_ERR, A_BOLD);
		const sk_ui_lines *l = &x->lines;
		for (size_t j = 0; j < l->n; j++)
			rows[k++] = (row_ref){ &l->v[j], a, -1 };
	}
	int maxscroll = total > (size_t)h ? (int)(total - (size_t)h) : 0;
	if (t->chat_scroll > maxscroll)
		t->chat_scroll = maxscroll;
	size_t first = total > (size_t)h ? total - (size_t)h - (size_t)t->chat_scroll : 0;
	for (int r = 0; r < h && first + (size_t)r < total; r++) {
		row_ref *rr = &rows[first + r];
		if (rr->x >= 0) {
			const char *label = rr->x == E_USER ? _("You")
			                    : rr->x == 100  ? _("Model + adapter")
			                    : rr->x == 101  ? _("Model (base)")
			                                    : _("Model");
			tui_put_dir(w, r, 0, width, label, rr->a);
		} else {
			int col = rr->line->col < tw ? rr->line->col : 0;
			tui_put_visual(w, r, 2 + col, tw - col, rr->line->text, rr->a);
		}
	}
	if (t->chat.n == 0)
		tui_put(w, h / 2, 2, tw,
		        t->model_loaded ? _("Type a message and press Enter. /help lists the commands.")
		                        : _("Loading the model ... (or start with --model PATH)"),
		        tui_attr(t, C_DIM, A_DIM));
	if (t->chat_scroll > 0) {
		char buf[64];
		snprintf(buf, sizeof buf, _("[scrolled up %d lines: PgDn]"), t->chat_scroll);
		tui_put(w, 0, width - sk_text_width(buf, strlen(buf)), width, buf, tui_attr(t, C_WARN, A_REVERSE));
	}
	free(rows);
}

void tui_compare_draw(tui *t)
{
	WINDOW *w = t->body[V_COMPARE];
	werase(w);
	int h = getmaxy(w), width = getmaxx(w);
	const sk_ui_lines *pl = tui_text_lines(t, &t->cmp_prompt, width - 2);
	int ph = pl->n > 3 ? 3 : (int)pl->n;
	tui_put(w, 0, 0, width, _("Prompt"), tui_attr(t, C_USER, A_BOLD));
	if (t->cmp_prompt.len == 0)
		tui_put(w, 1, 2, width - 2,
		        t->adapter_path ? _("Type a prompt: the base model and the adapter answer it side by side.")
		                        : _("Load an adapter to compare with: /adapter DIR"),
		        tui_attr(t, C_DIM, A_DIM));
	else
		tui_draw_lines(w, 1, 2, ph, width - 2, pl, pl->n > 3 ? pl->n - 3 : 0, A_NORMAL);
	int top = 1 + (ph > 0 ? ph : 1) + 1;
	int colw = (width - 3) / 2;
	int ch = h - top - 2;
	for (int i = 0; i < 2; i++) {
		int x = i == 0 ? 0 : colw + 3;
		char head[256];
		if (i == 0)
			snprintf(head, sizeof head, "%s", _("base"));
		else
			snprintf(head, sizeof head, _("adapter %s"), t->adapter_path ? t->adapter_path : _("(none)"));
		tui_put(w, top - 1, x, colw, head, tui_attr(t, C_MODEL, A_BOLD));
		const sk_ui_lines *l = tui_text_lines(t, &t->cmp_col[i], colw);
		size_t first = l->n > (size_t)ch ? l->n - (size_t)ch : 0;
		tui_draw_lines(w, top, x, ch, colw, l, first, A_NORMAL);
		char foot[160];
		if (t->cmp_has_info[i])
			snprintf(foot, sizeof foot, _("%d tokens, %.1f tokens/s%s"), t->cmp_info[i].n_generated,
			         t->cmp_info[i].decode_tps, t->cmp_info[i].stopped_by == 2 ? _(" (stopped)") : "");
		else
			snprintf(foot, sizeof foot, "%s", t->cmp_busy[i] ? _("generating ...") : "");
		tui_put(w, h - 1, x, colw, foot, tui_attr(t, C_DIM, A_DIM));
	}
	for (int y = top - 1; y < h; y++)
		mvwaddstr(w, y, colw + 1, "│");
}
