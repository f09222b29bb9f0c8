/* `sokhan tui` (and `sokhan` alone): the full-screen interface. Parses the
 * options and hands them to ui/tui.c. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/i18n.h"
#include "src/cli.h"
#include "src/commands.h"
#include "ui/bidi.h"
#include "ui/tui.h"

static const sk_command_help tui_help = {
	"tui",
	"[--model PATH] [--adapter DIR] [--train --data FILE --out DIR] [OPTIONS]",
	N_("The full-screen interface: Chat, Compare (base model and adapter side by side), Train\n"
	   "(live loss chart and metrics) and Log views. F1 inside shows the keys."),
	N_("  --system TEXT       system prompt of the chat\n"
	   "  --bidi app|terminal app: sokhan reorders right-to-left text and asks the terminal\n"
	   "                      for explicit bidi mode (default); terminal: logical order.\n"
	   "                      Also $SOKHAN_BIDI.\n"
	   "  --shape auto|on|off join Persian letters for terminals that do not (default auto:\n"
	   "                      off only in VTE-based terminals). Also $SOKHAN_SHAPE.\n"
	   "  --view NAME         start in chat, compare, train or log\n"
	   "  -n, --max-new N     tokens per answer at most (default: 1024)\n"
	   "  --train             start a training run at once (with --data)\n"
	   "  --data FILE         training data (JSONL conversations)\n"
	   "  --out DIR           run directory (checkpoints, metrics.jsonl, adapter)\n"
	   "  --steps N           optimizer steps (default: one epoch)\n"
	   "  --lr X              learning rate (default: 2e-4)\n"
	   "  --rank R            LoRA rank (default: 16)\n"
	   "  --metrics PATH      show a past run's metrics.jsonl (or run directory) in Train\n"
	   "  --dump FILE         write the screen's text to FILE after every redraw\n"
	   "                      (also $SOKHAN_TUI_DUMP; for tests)"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_SAMPLING | SK_CO_SEED |
		SK_CO_VERBOSITY,
};

enum {
	OPT_SYSTEM = 4100, OPT_BIDI, OPT_SHAPE, OPT_VIEW, OPT_MAX_NEW, OPT_TRAIN, OPT_DATA, OPT_OUT, OPT_STEPS, OPT_LR,
	OPT_RANK, OPT_METRICS, OPT_DUMP, OPT_TOKEN_DELAY
};

static int on_opt(void *ctx, int opt, const char *arg)
{
	sk_tui_opts *o = ctx;
	const sk_command_help *h = &tui_help;
	double v;
	long long k;
	switch (opt) {
	case OPT_SYSTEM: o->system = arg; return 0;
	case OPT_BIDI: return sk_cli_parse_bidi(h, arg, &o->bidi_app);
	case OPT_SHAPE: {
		sk_shape_mode m;
		if (sk_cli_parse_shape(h, arg, &m))
			return SK_EXIT_USAGE;
		o->shape = sk_shape_resolve(m);
		return 0;
	}
	case OPT_VIEW: {
		static const char *names[] = { "chat", "compare", "train", "log" };
		for (int i = 0; i < 4; i++)
			if (!strcmp(arg, names[i])) {
				o->start_view = i;
				return 0;
			}
		return sk_cli_usage(h, _("--view: '%s' is not one of chat, compare, train, log"), arg);
	}
	case 'n':
	case OPT_MAX_NEW:
		if (sk_cli_parse_int(h, "max-new", arg, 1, 1 << 20, &k)) return SK_EXIT_USAGE;
		o->max_new = (int)k;
		return 0;
	case OPT_TRAIN: o->train = 1; return 0;
	case OPT_DATA: o->train_opts.data = arg; return 0;
	case OPT_OUT: o->train_opts.out_dir = arg; return 0;
	case OPT_STEPS:
		if (sk_cli_parse_int(h, "steps", arg, 1, 1 << 30, &k)) return SK_EXIT_USAGE;
		o->train_opts.steps = (int)k;
		return 0;
	case OPT_LR:
		if (sk_cli_parse_float(h, "lr", arg, 0, 1, &v)) return SK_EXIT_USAGE;
		o->train_opts.lr = (float)v;
		return 0;
	case OPT_RANK:
		if (sk_cli_parse_int(h, "rank", arg, 1, 4096, &k)) return SK_EXIT_USAGE;
		o->train_opts.rank = (int)k;
		return 0;
	case OPT_METRICS: o->metrics = arg; return 0;
	case OPT_DUMP: o->dump_path = arg; return 0;
	case OPT_TOKEN_DELAY:
		if (sk_cli_parse_int(h, "token-delay-us", arg, 0, 10000000, &k)) return SK_EXIT_USAGE;
		o->token_delay_us = (int)k;
		return 0;
	}
	return SK_EXIT_USAGE;
}

int sk_cmd_tui(int argc, char **argv)
{
	static const struct option own[] = {
		{ "system", required_argument, NULL, OPT_SYSTEM },
		{ "bidi", required_argument, NULL, OPT_BIDI },
		{ "shape", required_argument, NULL, OPT_SHAPE },
		{ "view", required_argument, NULL, OPT_VIEW },
		{ "max-new", required_argument, NULL, OPT_MAX_NEW },
		{ "train", no_argument, NULL, OPT_TRAIN },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "lr", required_argument, NULL, OPT_LR },
		{ "rank", required_argument, NULL, OPT_RANK },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "dump", required_argument, NULL, OPT_DUMP },
		/* testing aid, not in --help: slow generation down per token */
		{ "token-delay-us", required_argument, NULL, OPT_TOKEN_DELAY },
		{ NULL, 0, NULL, 0 },
	};
	sk_tui_opts o;
	memset(&o, 0, sizeof o);
	o.max_new = 1024;
	o.bidi_app = 1;
	o.shape = sk_shape_resolve(sk_cli_env_shape());
	o.start_view = -1;
	o.train_opts.lr = 2e-4f;
	o.train_opts.rank = 16;
	o.train_opts.alpha = 32;
	o.train_opts.batch = 1;
	o.train_opts.grad_accum = 8;
	int rc = sk_cli_env_bidi(&tui_help, &o.bidi_app);
	if (rc)
		return rc;
	const char *dump = getenv("SOKHAN_TUI_DUMP");
	if (dump && *dump)
		o.dump_path = dump;
	sk_common_opts co;
	int first;
	rc = sk_cli_parse(argc, argv, &tui_help, own, "n:", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&tui_help, _("unexpected argument '%s'"), argv[first]);
	if (o.train && !o.train_opts.data)
		return sk_cli_usage(&tui_help, "%s", _("--train needs --data FILE"));
	if ((o.train || o.metrics) && o.start_view < 0)
		o.start_view = 2;
	char defmodel[4096];
	if (!co.model && sk_cli_default_model(defmodel, sizeof defmodel) == 0)
		co.model = defmodel; /* without one the TUI opens empty and says how to load a model */
	o.model = co.model;
	o.adapter = co.adapter;
	o.sampling = co.sampling;
	o.device = co.device;
	o.threads = co.threads;
	o.quant_nf4 = co.quant == SK_QUANT_NF4;
	o.rtl_ui = sk_cli_ui_rtl();
	if (o.bidi_app && o.shape)
		o.bidi_app = 2; /* reorder and shape (sk_ui_layout) */
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return sk_cli_error("%s", _("the TUI needs a terminal (try `sokhan chat` with a pipe)"));
	return sk_tui_run(&o) == 0 ? SK_EXIT_OK : SK_EXIT_ERROR;
}
