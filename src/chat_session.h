/* One `sokhan chat` session: the loaded model, the conversation, the
 * display settings; handles one input line (a message or a /command). */
#ifndef SK_CHAT_SESSION_H
#define SK_CHAT_SESSION_H

#include <signal.h>

#include "engine/model/generate.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"
#include "engine/strbuf.h"
#include "src/chat_conv.h"
#include "src/chat_stream.h"
#include "src/cli.h"

typedef struct {
	sk_model *model;
	const sk_tokenizer *tok;
	sk_lora *lora;           /* NULL: no adapter loaded */
	int adapter_on;
	sk_sampling sampling;
	int max_new;             /* tokens per answer at most */
	int ctx;                 /* context length in tokens */
	int app;                 /* bidi app mode in effect */
	int rtl_ui;
	int quiet;
	int err_tty;             /* dim the stats */
	sk_conv conv;
	sk_chat_stream stream;
	sk_strbuf answer;        /* the answer being generated */
	sk_gen_cache *cache;     /* the conversation's KV cache, kept between turns */
	int failed;              /* a message or command failed (exit status of the pipe mode) */
} sk_chat_session;

/* Set by the SIGINT handler; the token callback stops the answer. */
extern volatile sig_atomic_t sk_chat_interrupted;
/* Non-zero while an answer is being generated. */
extern volatile sig_atomic_t sk_chat_generating;

/* Handles one line (without its newline): an empty line is ignored, a
 * /command runs, "//text" sends "/text", anything else is a message that
 * gets an answer on stdout. Returns 1 when the session should end (/quit),
 * else 0; failures are reported on stderr and counted in s->failed. */
int sk_chat_handle_line(sk_chat_session *s, const char *line);

/* Writes text to stderr line by line (dim: faint, on a terminal); in app
 * mode on a terminal, a line holding right-to-left text (a Persian UI) is
 * shown in visual order. */
void sk_chat_err_lines(const sk_chat_session *s, const char *text, int dim);

/* The terminal's width in columns (80 when unknown). */
int sk_chat_term_cols(void);

#endif
