/* Messages and /commands of `sokhan chat`. */
#include "src/chat_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "ui/bidi.h"

volatile sig_atomic_t sk_chat_interrupted;
volatile sig_atomic_t sk_chat_generating;

int sk_chat_term_cols(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	int n = c ? atoi(c) : 0;
	return n > 0 && n < 10000 ? n : 80;
}

void sk_chat_err_lines(const sk_chat_session *s, const char *text, int dim)
{
	const char *on = dim && s->err_tty ? "\033[2m" : "", *off = dim && s->err_tty ? "\033[0m" : "";
	for (const char *p = text; *p;) {
		int n = (int)strcspn(p, "\n");
		char *vis = NULL;
		if (s->app && s->err_tty && sk_bidi_message_dir(p, (size_t)n, s->rtl_ui) == SK_BIDI_RTL &&
		    sk_bidi_visual_range_shaped(p, (size_t)n, 0, (size_t)n, SK_BIDI_RTL, sk_chat_stream_shaping(), &vis, NULL) != 0)
			vis = NULL;
		if (vis)
			fprintf(stderr, "%s%s%s\n", on, vis, off);
		else
			fprintf(stderr, "%s%.*s%s\n", on, n, p, off);
		free(vis);
		p += n;
		if (*p == '\n')
			p++;
	}
}

static void note(const sk_chat_session *s, const char *fmt, const char *arg)
{
	if (s->quiet)
		return;
	char buf[4096];
	snprintf(buf, sizeof buf, fmt, arg);
	sk_chat_err_lines(s, buf, 0);
}

static void report(sk_chat_session *s)
{
	char buf[4096];
	snprintf(buf, sizeof buf, _("sokhan: error: %s"), sk_error());
	sk_chat_err_lines(s, buf, 0);
	s->failed = 1;
}

static int on_token(void *ctx, int i, int32_t id, const char *text)
{
	(void)i;
	(void)id;
	sk_chat_session *s = ctx;
	if (text && *text) {
		size_t n = strlen(text);
		if (sk_strbuf_add(&s->answer, text, n) != 0)
			return 1;
		if (sk_chat_stream_write(&s->stream, text, n) != 0)
			return 1;
	}
	return sk_chat_interrupted != 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void print_stats(const sk_chat_session *s, const sk_gen_stats *st, double wall)
{
	if (s->quiet)
		return;
	double t = st->decode_s > 0 ? st->decode_s : wall;
	double tps = t > 0 ? st->n_generated / t : 0;
	char line[256];
	if (st->n_reused > 0)
		snprintf(line, sizeof line, _("%d tokens, %.1f tokens/s; prompt %d tokens in %.2f s (%d kept from before)"),
		         st->n_generated, tps, st->n_prompt_tokens, st->prefill_s, st->n_reused);
	else
		snprintf(line, sizeof line, _("%d tokens, %.1f tokens/s; prompt %d tokens in %.2f s"),
		         st->n_generated, tps, st->n_prompt_tokens, st->prefill_s);
	sk_chat_err_lines(s, line, 1);
}

/* One user message: render the conversation, stream the answer, keep it. */
static int send_message(sk_chat_session *s, const char *msg)
{
	if (sk_conv_push(&s->conv, SK_CHAT_USER, msg, strlen(msg)) != 0)
		return -1;
	int reserve = s->max_new < s->ctx / 2 ? s->max_new : s->ctx / 2;
	sk_ids ids = { 0 };
	int dropped = 0;
	if (sk_conv_prompt(&s->conv, s->tok, s->ctx, reserve, &ids, &dropped) != 0) {
		sk_conv_pop(&s->conv);
		sk_ids_free(&ids);
		return -1;
	}
	if (dropped && !s->quiet) {
		char buf[256];
		snprintf(buf, sizeof buf, _("(the oldest %d turn(s) were dropped to fit the context of %d tokens)"),
		         dropped, s->ctx);
		sk_chat_err_lines(s, buf, 0);
	}
	sk_gen_request req = { 0 };
	req.prompt = ids.v;
	req.n_prompt = ids.n;
	long long room = (long long)s->ctx - (long long)ids.n;
	req.max_new = room < s->max_new ? (int)room : s->max_new;
	req.adapter_on = s->lora && s->adapter_on;
	req.sampling = s->sampling;
	sk_gen_stats st = { 0 };
	sk_strbuf_clear(&s->answer);
	sk_chat_stream_begin(&s->stream, stdout, s->app, s->rtl_ui, sk_chat_term_cols(), isatty(STDOUT_FILENO));
	sk_chat_interrupted = 0;
	sk_chat_generating = 1;
	double t0 = now_s();
	/* the cache stays from turn to turn: a turn prefills only what it adds */
	if (!s->cache)
		s->cache = sk_gen_cache_new(s->model, 1, s->ctx);
	int slot = 0;
	int rc = s->cache ? sk_generate_cached(s->model, s->cache, &slot, &req, 1, on_token, s, &st) : -1;
	double wall = now_s() - t0;
	sk_chat_generating = 0;
	sk_chat_stream_end(&s->stream);
	sk_ids_free(&ids);
	if (rc != 0) {
		sk_conv_pop(&s->conv);
		return -1;
	}
	if (sk_chat_interrupted && !s->quiet)
		sk_chat_err_lines(s, _("(stopped)"), 0);
	sk_chat_interrupted = 0;
	size_t tl;
	const char *t = sk_chat_trim(s->answer.s ? s->answer.s : "", s->answer.len, &tl);
	if (sk_conv_push(&s->conv, SK_CHAT_ASSISTANT, t, tl) != 0)
		return -1;
	print_stats(s, &st, wall);
	return 0;
}

static void print_help(const sk_chat_session *s)
{
	sk_chat_err_lines(s,
	          _("Type a message and press Enter. Commands:\n"
	            "  /reset          start a new conversation (keeps the system prompt)\n"
	            "  /system [TEXT]  set the system prompt (none without TEXT)\n"
	            "  /adapter on|off use the LoRA adapter or the base model\n"
	            "  /save FILE      append the conversation to FILE as one JSONL line\n"
	            "  /help           this help\n"
	            "  /quit           leave (also Ctrl-D)\n"
	            "  //TEXT          send a message that starts with '/'\n"
	            "Ctrl-C stops an answer."),
	          0);
}

/* The argument of "/cmd ARG": spaces skipped; "" when none. */
static const char *cmd_arg(const char *line, size_t cmdlen)
{
	const char *p = line + cmdlen;
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int is_cmd(const char *line, const char *cmd)
{
	size_t n = strlen(cmd);
	return !strncmp(line, cmd, n) && (line[n] == '\0' || line[n] == ' ' || line[n] == '\t');
}

int sk_chat_handle_line(sk_chat_session *s, const char *line)
{
	size_t tl;
	sk_chat_trim(line, strlen(line), &tl);
	if (tl == 0)
		return 0;
	if (line[0] != '/' || line[1] == '/') {
		if (send_message(s, line[0] == '/' ? line + 1 : line) != 0)
			report(s);
		return 0;
	}
	if (is_cmd(line, "/quit") || is_cmd(line, "/exit"))
		return 1;
	if (is_cmd(line, "/help")) {
		print_help(s);
	} else if (is_cmd(line, "/reset")) {
		sk_conv_reset(&s->conv);
		note(s, "%s", _("(new conversation)"));
	} else if (is_cmd(line, "/system")) {
		const char *a = cmd_arg(line, 7);
		if (sk_conv_set_system(&s->conv, a) != 0)
			report(s);
		else
			note(s, "%s", *a ? _("(system prompt set)") : _("(no system prompt)"));
	} else if (is_cmd(line, "/adapter")) {
		const char *a = cmd_arg(line, 8);
		if (!s->lora) {
			sk_fail("%s", _("no adapter is loaded (start with --adapter DIR)"));
			report(s);
		} else if (!strcmp(a, "on") || !strcmp(a, "off")) {
			s->adapter_on = !strcmp(a, "on");
			note(s, "%s", s->adapter_on ? _("(adapter on)") : _("(adapter off: base model)"));
		} else {
			sk_fail("%s", _("/adapter: say on or off"));
			report(s);
		}
	} else if (is_cmd(line, "/save")) {
		const char *a = cmd_arg(line, 5);
		if (!*a) {
			sk_fail("%s", _("/save: give a file name"));
			report(s);
		} else if (sk_conv_save(&s->conv, a) != 0) {
			report(s);
		} else {
			note(s, _("(conversation appended to %s)"), a);
		}
	} else {
		size_t n = strcspn(line, " \t");
		char msg[128];
		snprintf(msg, sizeof msg, "%.*s", (int)(n > 60 ? 60 : n), line);
		sk_fail(_("unknown command %s (try /help; start a message with // to send a '/')"), msg);
		report(s);
	}
	return 0;
}
