/* `sokhan chat`: talk with a model in the terminal (GNU readline), or one
 * message per line from a pipe. Persian answers are laid out line by line
 * in visual order for terminals that do no bidi (--bidi=app). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend/backend_info.h"
#include "engine/i18n.h"
#include "src/chat_repl.h"
#include "src/chat_session.h"
#include "src/cli.h"
#include "src/commands.h"
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
	   "  -n, --max-new N     tokens per answer at most (default: 1024)\n"
	   "  --greedy            always take the most likely token\n"
	   "  --temp T            temperature (default: 1; 0 = greedy)\n"
	   "  --top-k K           keep the K most likely tokens (default: 64; 0: off)\n"
	   "  --top-p P           nucleus sampling (default: 0.95; 1: off)\n"
	   "  --min-p P           drop tokens below P times the top probability (default: 0)\n"
	   "  --repeat-penalty R  penalty on tokens already seen (default: 1: off)"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_SEED | SK_CO_VERBOSITY,
};

enum {
	OPT_SYSTEM = 4000, OPT_BIDI, OPT_SHAPE, OPT_GREEDY, OPT_TEMP, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P,
	OPT_REPEAT, OPT_MAX_TOKENS
};

typedef struct {
	sk_sampling sampling;
	long long max_new;
	const char *system;
	int bidi; /* -1 default, 0 terminal, 1 app */
	sk_shape_mode shape;
} sk_chat_opts;

static int parse_bidi(const char *arg, int *out)
{
	if (!strcmp(arg, "app"))
		*out = 1;
	else if (!strcmp(arg, "terminal"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int on_opt(void *ctx, int opt, const char *arg)
{
	sk_chat_opts *o = ctx;
	const sk_command_help *h = &chat_help;
	double v;
	long long k;
	switch (opt) {
	case OPT_SYSTEM: o->system = arg; return 0;
	case OPT_BIDI:
		if (parse_bidi(arg, &o->bidi) != 0)
			return sk_cli_usage(h, _("--bidi: '%s' is not one of app, terminal"), arg);
		return 0;
	case OPT_SHAPE:
		if (sk_shape_mode_parse(arg, &o->shape) != 0)
			return sk_cli_usage(h, _("--shape: '%s' is not one of auto, on, off"), arg);
		return 0;
	case OPT_GREEDY: o->sampling.greedy = 1; return 0;
	case OPT_TEMP:
		if (sk_cli_parse_float(h, "temp", arg, 0, 100, &v)) return SK_EXIT_USAGE;
		o->sampling.temperature = (float)v;
		if (v == 0)
			o->sampling.greedy = 1; /* temperature 0 means the most likely token */
		return 0;
	case OPT_TOP_K:
		if (sk_cli_parse_int(h, "top-k", arg, 0, 1 << 30, &k)) return SK_EXIT_USAGE;
		o->sampling.top_k = (int)k;
		return 0;
	case OPT_TOP_P:
		if (sk_cli_parse_float(h, "top-p", arg, 0, 1, &v)) return SK_EXIT_USAGE;
		o->sampling.top_p = (float)v;
		return 0;
	case OPT_MIN_P:
		if (sk_cli_parse_float(h, "min-p", arg, 0, 1, &v)) return SK_EXIT_USAGE;
		o->sampling.min_p = (float)v;
		return 0;
	case OPT_REPEAT:
		if (sk_cli_parse_float(h, "repeat-penalty", arg, 0.01, 100, &v)) return SK_EXIT_USAGE;
		o->sampling.repeat_penalty = (float)v;
		return 0;
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
		{ "greedy", no_argument, NULL, OPT_GREEDY },
		{ "temp", required_argument, NULL, OPT_TEMP },
		{ "temperature", required_argument, NULL, OPT_TEMP },
		{ "top-k", required_argument, NULL, OPT_TOP_K },
		{ "top-p", required_argument, NULL, OPT_TOP_P },
		{ "min-p", required_argument, NULL, OPT_MIN_P },
		{ "repeat-penalty", required_argument, NULL, OPT_REPEAT },
		{ "max-new", required_argument, NULL, OPT_MAX_TOKENS },
		{ "max-tokens", required_argument, NULL, OPT_MAX_TOKENS },
		{ NULL, 0, NULL, 0 },
	};
	sk_chat_opts o;
	memset(&o, 0, sizeof o);
	sk_sampling_defaults(&o.sampling);
	o.max_new = 1024;
	o.bidi = -1;
	o.shape = SK_SHAPE_AUTO;
	const char *shape_env = getenv("SOKHAN_SHAPE");
	if (shape_env && *shape_env && sk_shape_mode_parse(shape_env, &o.shape) != 0)
		o.shape = SK_SHAPE_AUTO;
	const char *env = getenv("SOKHAN_BIDI");
	if (env && *env && parse_bidi(env, &o.bidi) != 0)
		return sk_cli_usage(&chat_help, _("SOKHAN_BIDI: '%s' is not one of app, terminal"), env);
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &chat_help, own, "n:", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&chat_help, _("unexpected argument '%s' (messages are typed, not given)"), argv[first]);
	char defmodel[4096];
	if (!co.model) {
		if (sk_cli_default_model(defmodel, sizeof defmodel))
			return sk_cli_fail();
		co.model = defmodel;
	}
	o.sampling.seed = co.seed;

	sk_backend_info bi;
	sk_backend_probe(&bi);
	sk_model_opts mo = { 0 };
	if (sk_backend_resolve(co.device, &bi, &mo.device) != 0)
		return sk_cli_fail();
	mo.quant_nf4 = co.quant == SK_QUANT_NF4;
	mo.threads = co.threads;

	sk_chat_session s;
	memset(&s, 0, sizeof s);
	s.model = sk_model_load(co.model, &mo);
	if (!s.model)
		return sk_cli_fail();
	s.tok = sk_model_tokenizer(s.model);
	if (!s.tok) {
		sk_model_free(s.model);
		return sk_cli_error(_("%s: the model has no tokenizer (tokenizer.json)"), co.model);
	}
	if (!sk_model_has_chat_template(s.model))
		sk_cli_note(&co, 0, "%s", _("this model has no chat template, so it is probably a base model: it continues text rather than answering (use an instruction-tuned model, or fine-tune it)"));
	if (co.adapter) {
		s.lora = sk_lora_load(co.adapter, sk_model_config(s.model));
		if (!s.lora) {
			sk_model_free(s.model);
			return sk_cli_fail();
		}
		sk_model_set_adapter(s.model, s.lora);
		s.adapter_on = 1;
	}
	int ctx = sk_model_config(s.model)->max_position_embeddings;
	s.ctx = ctx > 0 ? ctx : 8192;
	s.sampling = o.sampling;
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
	free(s.answer);
	sk_model_set_adapter(s.model, NULL);
	sk_model_free(s.model);
	sk_lora_free(s.lora);
	return rc;
}
