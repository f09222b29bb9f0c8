/* `sokhan chat`: talk with a model in the terminal (GNU readline), or one
 * message per line from a pipe. Persian answers are laid out line by line
 * in visual order for terminals that do no bidi (--bidi=app). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/i18n.h"
#include "src/chat_repl.h"
#include "src/chat_session.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"
#include "ui/bidi.h"

static const sk_command_help chat_help = {
	"chat",
	"[--model PATH] [--adapter DIR] [--system TEXT] [--bidi=app|terminal] [OPTIONS]",
	N_("Chat with a model. Each answer streams as it is generated; the whole conversation is\n"
	   "sent through the chat template every turn, and the oldest turns are dropped (with a\n"
	   "note) when it outgrows the context. Type /help for the commands. Without a terminal\n"
	   "on standard input, each line is one message and each answer ends with a newline."),
	N_("  --system TEXT       system prompt\n"
	   "  --bidi app|terminal app: reorder right-to-left lines for terminals that do no bidi\n"
	   "                      (default on a terminal); terminal: logical order (always when\n"
	   "                      the output is not a terminal). Also $SOKHAN_BIDI.\n"
	   "  --shape auto|on|off join Persian letters for terminals that do not (default auto:\n"
	   "                      off only in VTE-based terminals). Also $SOKHAN_SHAPE.\n"
	   "  -n, --max-new N     tokens per answer at most (default: 1024)"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_SAMPLING | SK_CO_SEED |
		SK_CO_VERBOSITY,
};

enum { OPT_SYSTEM = 4000, OPT_BIDI, OPT_SHAPE, OPT_MAX_TOKENS };

typedef struct {
	long long max_new;
	const char *system;
	int bidi; /* -1 default, 0 terminal, 1 app */
	sk_shape_mode shape;
} sk_chat_opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
	sk_chat_opts *o = ctx;
	const sk_command_help *h = &chat_help;
	switch (opt) {
	case OPT_SYSTEM: o->system = arg; return 0;
	case OPT_BIDI: return sk_cli_parse_bidi(h, arg, &o->bidi);
	case OPT_SHAPE: return sk_cli_parse_shape(h, arg, &o->shape);
	case 'n':
	case OPT_MAX_TOKENS:
		if (sk_cli_parse_int(h, "max-new", arg, 1, 1 << 20, &o->max_new)) return SK_EXIT_USAGE;
		return 0;
	}
	return SK_EXIT_USAGE;
}

int sk_cmd_chat(int argc, char **argv)
{
	static const struct option own[] = {
		{ "system", required_argument, NULL, OPT_SYSTEM },
		{ "bidi", required_argument, NULL, OPT_BIDI },
		{ "shape", required_argument, NULL, OPT_SHAPE },
		{ "max-new", required_argument, NULL, OPT_MAX_TOKENS },
		{ "max-tokens", required_argument, NULL, OPT_MAX_TOKENS },
		{ NULL, 0, NULL, 0 },
	};
	sk_chat_opts o;
	memset(&o, 0, sizeof o);
	o.max_new = 1024;
	o.bidi = -1;
	o.shape = sk_cli_env_shape();
	int rc = sk_cli_env_bidi(&chat_help, &o.bidi);
	if (rc)
		return rc;
	sk_common_opts co;
	int first;
	rc = sk_cli_parse(argc, argv, &chat_help, own, "n:", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&chat_help, _("unexpected argument '%s' (messages are typed, not given)"), argv[first]);
	sk_chat_session s;
	memset(&s, 0, sizeof s);
	s.model = sk_cli_load_model(&co, &s.lora, &rc);
	if (!s.model)
		return rc;
	s.adapter_on = s.lora != NULL;
	s.tok = sk_model_tokenizer(s.model);
	if (!s.tok) {
		sk_cli_free_model(s.model, s.lora);
		return sk_cli_error(_("%s: the model has no tokenizer (tokenizer.json)"), co.model);
	}
	if (!sk_model_has_chat_template(s.model))
		sk_cli_note(&co, 0, "%s", _("this model has no chat template, so it is probably a base model: it continues text rather than answering (use an instruction-tuned model, or fine-tune it)"));
	int ctx = sk_model_config(s.model)->max_position_embeddings;
	s.ctx = ctx > 0 ? ctx : 8192;
	s.sampling = co.sampling;
	s.max_new = (int)o.max_new;
	int interactive = isatty(STDIN_FILENO);
	/* reordered output only makes sense on a terminal that does no bidi */
	s.app = isatty(STDOUT_FILENO) && o.bidi != 0;
	s.rtl_ui = sk_cli_ui_rtl();
	/* shaping belongs with reordering: in terminal mode the terminal does both */
	sk_chat_stream_set_shaping(s.app && sk_shape_resolve(o.shape));
	s.quiet = co.verbosity < 0;
	s.err_tty = isatty(STDERR_FILENO);
	if (o.system && sk_conv_set_system(&s.conv, o.system) != 0) {
		rc = sk_cli_fail();
	} else {
		sk_cli_note(&co, 1, _("context %d tokens, bidi %s"), s.ctx, s.app ? "app" : "terminal");
		sk_chat_signals(interactive);
		rc = interactive ? sk_chat_repl_tty(&s) : sk_chat_repl_pipe(&s);
	}
	sk_conv_free(&s.conv);
	sk_chat_stream_free(&s.stream);
	sk_strbuf_free(&s.answer);
	sk_gen_cache_free(s.cache);
	sk_cli_free_model(s.model, s.lora);
	return rc;
}
