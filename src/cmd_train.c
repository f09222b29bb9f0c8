/* `sokhan train --model M --data FILE --out RUN_DIR [options]`: QLoRA
 * fine-tuning through the training loop (engine/train/train.h), with a progress
 * bar, Ctrl-C that checkpoints, and --resume. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/i18n.h"
#include "engine/paths.h"
#include "engine/train/train.h"
#include "engine/train/train_grad.h"
#include "ui/tui.h"
#include "ui/bidi.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"
#include "src/progress.h"

static const sk_command_help train_help = {
	"train",
	"--model M --data FILE --out RUN_DIR [OPTIONS] | --resume RUN_DIR",
	N_("Fine-tune a LoRA adapter on a JSONL file of conversations (QLoRA: frozen NF4 base)."),
	N_("  --data FILE         training data: JSONL, one conversation per line\n"
	   "  -o, --out RUN_DIR   run directory: metrics.jsonl, checkpoint-N/, adapter/, loss.svg\n"
	   "  --resume RUN_DIR    continue a run from its newest complete checkpoint\n"
	   "  --tui               watch the run in the full-screen interface (its Train view)\n"
	   "  --recipe NAME       seed (the seed report's table) or seed-run (its notebook's choices);\n"
	   "                      explicit options override it\n"
	   "  --r N               LoRA rank (default 8)\n"
	   "  --alpha A           LoRA alpha (default 16)\n"
	   "  --dropout P         LoRA dropout (default 0)\n"
	   "  --targets LIST      q,k,v,o,gate,up,down or attn, mlp, all (default all)\n"
	   "  --rslora            scale alpha/sqrt(r) instead of alpha/r\n"
	   "  --quant nf4|none    base weights: frozen NF4 (default) or as stored\n"
	   "  --grad-ckpt, --no-grad-ckpt  recompute activations in the backward pass (default on)\n"
	   "  --optim adamw8bit|adamw  optimizer (default adamw8bit)\n"
	   "  --lr X              peak learning rate (default 2e-5)\n"
	   "  --sched linear|cosine|constant  schedule after warm-up (default linear)\n"
	   "  --warmup N          warm-up steps (default 10)\n"
	   "  --wd X              weight decay (default 0.01)\n"
	   "  --batch N           sequences per micro-batch (default 2)\n"
	   "  --grad-accum N      micro-batches per optimizer step (default 4)\n"
	   "  --max-grad-norm X   gradient clipping, 0 = off (default 1.0)\n"
	   "  --epochs N          passes over the data (default 1)\n"
	   "  --max-steps N       stop after N optimizer steps\n"
	   "  --seed N            random seed (default 3407)\n"
	   "  --loss-on all|responses  which tokens are trained (default responses)\n"
	   "  --max-len N         cut examples to N tokens (default 2048; 0 = no limit)\n"
	   "  --packing           pack several examples into each row of --max-len tokens\n"
	   "  --merge-tokens N    compute a step's micro-batches in one pass while they hold at most\n"
	   "                      N tokens, without dropout (the same gradient; 0 = off; default 2048\n"
	   "                      on a GPU, off on the CPU)\n"
	   "  --eval-frac F       hold out this fraction of the data for evaluation (default 0)\n"
	   "  --eval-every N      evaluate every N steps (default: only at the end)\n"
	   "  --on-bad-row skip|fail  what to do with a bad line of data (default skip)\n"
	   "  --save-every N      checkpoint every N steps, 0 = only at the end (default 100)\n"
	   "  --keep K            keep the newest K checkpoints, 0 = all (default 3)"),
	SK_CO_MODEL | SK_CO_DEVICE | SK_CO_THREADS | SK_CO_VERBOSITY,
};

enum {
	OPT_DATA = 2000, OPT_OUT, OPT_RESUME, OPT_RECIPE, OPT_R, OPT_ALPHA, OPT_DROPOUT, OPT_TARGETS, OPT_RSLORA,
	OPT_QUANT, OPT_GRAD_CKPT, OPT_NO_GRAD_CKPT, OPT_OPTIM, OPT_LR, OPT_SCHED, OPT_WARMUP, OPT_WD, OPT_BATCH,
	OPT_ACCUM, OPT_CLIP, OPT_EPOCHS, OPT_MAX_STEPS, OPT_SEED, OPT_LOSS_ON, OPT_MAX_LEN, OPT_PACKING,
	OPT_MERGE_TOKENS,
	OPT_EVAL_FRAC, OPT_EVAL_EVERY, OPT_BAD_ROW, OPT_SAVE_EVERY, OPT_KEEP, OPT_TUI,
};

static const struct option train_opts[] = {
	{ "data", required_argument, NULL, OPT_DATA },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "resume", required_argument, NULL, OPT_RESUME },
	{ "tui", no_argument, NULL, OPT_TUI },
	{ "recipe", required_argument, NULL, OPT_RECIPE },
	{ "r", required_argument, NULL, OPT_R },
	{ "alpha", required_argument, NULL, OPT_ALPHA },
	{ "dropout", required_argument, NULL, OPT_DROPOUT },
	{ "targets", required_argument, NULL, OPT_TARGETS },
	{ "rslora", no_argument, NULL, OPT_RSLORA },
	{ "quant", required_argument, NULL, OPT_QUANT },
	{ "grad-ckpt", no_argument, NULL, OPT_GRAD_CKPT },
	{ "no-grad-ckpt", no_argument, NULL, OPT_NO_GRAD_CKPT },
	{ "optim", required_argument, NULL, OPT_OPTIM },
	{ "lr", required_argument, NULL, OPT_LR },
	{ "sched", required_argument, NULL, OPT_SCHED },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "wd", required_argument, NULL, OPT_WD },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "grad-accum", required_argument, NULL, OPT_ACCUM },
	{ "max-grad-norm", required_argument, NULL, OPT_CLIP },
	{ "epochs", required_argument, NULL, OPT_EPOCHS },
	{ "max-steps", required_argument, NULL, OPT_MAX_STEPS },
	{ "merge-tokens", required_argument, NULL, OPT_MERGE_TOKENS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "loss-on", required_argument, NULL, OPT_LOSS_ON },
	{ "max-len", required_argument, NULL, OPT_MAX_LEN },
	{ "packing", no_argument, NULL, OPT_PACKING },
	{ "eval-frac", required_argument, NULL, OPT_EVAL_FRAC },
	{ "eval-every", required_argument, NULL, OPT_EVAL_EVERY },
	{ "on-bad-row", required_argument, NULL, OPT_BAD_ROW },
	{ "save-every", required_argument, NULL, OPT_SAVE_EVERY },
	{ "keep", required_argument, NULL, OPT_KEEP },
	{ NULL, 0, NULL, 0 },
};

#define MAX_FLAGS 128

typedef struct {
	int code;
	const char *arg;
} flag;

typedef struct {
	flag flags[MAX_FLAGS];
	int n;
	const char *resume, *recipe;
	int tui;
} parsed;

static const char *opt_name(int code)
{
	for (const struct option *o = train_opts; o->name; o++)
		if (o->val == code)
			return o->name;
	return "?";
}

/* Applies one option to c; 0 or a usage error (2, printed). */
static int apply(sk_train_config *c, int code, const char *arg)
{
	const sk_command_help *h = &train_help;
	const char *name = opt_name(code);
	long long v;
	double d;
	switch (code) {
	case OPT_DATA:
	case OPT_OUT:
		if (strlen(arg) >= SK_TRAIN_PATH_MAX)
			return sk_cli_usage(h, _("--%s: the path is too long"), name);
		strcpy(code == OPT_DATA ? c->data : c->run_dir, arg);
		return 0;
	case OPT_R:
		if (sk_cli_parse_int(h, name, arg, 1, 1024, &v))
			return SK_EXIT_USAGE;
		c->r = (int)v;
		return 0;
	case OPT_ALPHA:
		if (sk_cli_parse_float(h, name, arg, 1e-6, 1e6, &d))
			return SK_EXIT_USAGE;
		c->alpha = d;
		return 0;
	case OPT_DROPOUT:
		if (sk_cli_parse_float(h, name, arg, 0, 0.99, &d))
			return SK_EXIT_USAGE;
		c->dropout = d;
		return 0;
	case OPT_TARGETS:
		if (sk_train_targets_parse(arg, &c->targets))
			return sk_cli_usage(h, "%s", sk_error());
		return 0;
	case OPT_RSLORA: c->rslora = 1; return 0;
	case OPT_QUANT:
		if (!strcmp(arg, "nf4"))
			c->quant_nf4 = 1;
		else if (!strcmp(arg, "none"))
			c->quant_nf4 = 0;
		else
			return sk_cli_usage(h, _("--quant: '%s' is not one of nf4, none"), arg);
		return 0;
	case OPT_GRAD_CKPT: c->grad_ckpt = 1; return 0;
	case OPT_NO_GRAD_CKPT: c->grad_ckpt = 0; return 0;
	case OPT_OPTIM:
		if (sk_optim_kind_parse(arg, &c->optim))
			return sk_cli_usage(h, _("--optim: '%s' is not one of adamw8bit, adamw"), arg);
		return 0;
	case OPT_LR:
		if (sk_cli_parse_float(h, name, arg, 0, 10, &d))
			return SK_EXIT_USAGE;
		c->lr = d;
		return 0;
	case OPT_SCHED:
		if (sk_lr_kind_parse(arg, &c->sched))
			return sk_cli_usage(h, _("--sched: '%s' is not one of linear, cosine, constant"), arg);
		return 0;
	case OPT_WARMUP:
		if (sk_cli_parse_int(h, name, arg, 0, INT32_MAX, &v))
			return SK_EXIT_USAGE;
		c->warmup = v;
		return 0;
	case OPT_WD:
		if (sk_cli_parse_float(h, name, arg, 0, 10, &d))
			return SK_EXIT_USAGE;
		c->weight_decay = d;
		return 0;
	case OPT_BATCH:
	case OPT_ACCUM:
		if (sk_cli_parse_int(h, name, arg, 1, 65536, &v))
			return SK_EXIT_USAGE;
		*(code == OPT_BATCH ? &c->batch : &c->grad_accum) = (int)v;
		return 0;
	case OPT_CLIP:
		if (sk_cli_parse_float(h, name, arg, 0, 1e9, &d))
			return SK_EXIT_USAGE;
		c->max_grad_norm = d;
		return 0;
	case OPT_EPOCHS:
		if (sk_cli_parse_int(h, name, arg, 1, 100000, &v))
			return SK_EXIT_USAGE;
		c->epochs = (int)v;
		return 0;
	case OPT_MERGE_TOKENS:
		if (sk_cli_parse_int(h, name, arg, 0, INT32_MAX, &v))
			return SK_EXIT_USAGE;
		c->merge_tokens = v;
		return 0;
	case OPT_MAX_STEPS:
	case OPT_EVAL_EVERY:
	case OPT_SAVE_EVERY:
	case OPT_MAX_LEN:
		if (sk_cli_parse_int(h, name, arg, code == OPT_MAX_STEPS ? 1 : 0, INT32_MAX, &v))
			return SK_EXIT_USAGE;
		*(code == OPT_MAX_STEPS ? &c->max_steps
		  : code == OPT_EVAL_EVERY ? &c->eval_every
		  : code == OPT_SAVE_EVERY ? &c->save_every
					     : &c->max_len) = v;
		return 0;
	case OPT_SEED: {
		char *end;
		if (!*arg || *arg == '-')
			return sk_cli_usage(h, _("--seed: '%s' is not a non-negative integer"), arg);
		unsigned long long s = strtoull(arg, &end, 10);
		if (*end)
			return sk_cli_usage(h, _("--seed: '%s' is not a non-negative integer"), arg);
		c->seed = s;
		return 0;
	}
	case OPT_LOSS_ON:
		if (sk_loss_on_parse(arg, &c->loss_on))
			return sk_cli_usage(h, _("--loss-on: '%s' is not one of all, responses"), arg);
		return 0;
	case OPT_PACKING: c->packing = 1; return 0;
	case OPT_EVAL_FRAC:
		if (sk_cli_parse_float(h, name, arg, 0, 0.99, &d))
			return SK_EXIT_USAGE;
		c->eval_frac = d;
		return 0;
	case OPT_BAD_ROW:
		if (sk_bad_rows_parse(arg, &c->bad_rows))
			return sk_cli_usage(h, _("--on-bad-row: '%s' is not one of skip, fail"), arg);
		return 0;
	case OPT_KEEP:
		if (sk_cli_parse_int(h, name, arg, 0, 1000000, &v))
			return SK_EXIT_USAGE;
		c->keep = (int)v;
		return 0;
	}
	return SK_EXIT_USAGE;
}

static int on_opt(void *ctx, int opt, const char *arg)
{
	parsed *p = ctx;
	if (opt == OPT_TUI) {
		p->tui = 1;
		return 0;
	}
	if (opt == OPT_RESUME) {
		p->resume = arg;
		return 0;
	}
	if (opt == OPT_RECIPE) {
		sk_train_config scratch;
		sk_train_config_default(&scratch);
		if (sk_train_config_recipe(&scratch, arg))
			return sk_cli_usage(&train_help, "%s", sk_error());
		p->recipe = arg;
		return 0;
	}
	if (p->n == MAX_FLAGS)
		return sk_cli_usage(&train_help, "%s", _("too many options"));
	/* check the value now, so a bad one is a usage error before any work */
	sk_train_config scratch;
	sk_train_config_default(&scratch);
	int rc = apply(&scratch, opt, arg);
	if (rc)
		return rc;
	p->flags[p->n++] = (flag){ opt, arg };
	return 0;
}

/* ---- running ---- */

static volatile sig_atomic_t g_stop;
static sk_train_run *g_run;

static void on_signal(int sig)
{
	g_stop = 1;
	if (g_run)
		sk_train_request_stop(g_run);
	/* a second signal ends the process at once */
	signal(sig, SIG_DFL);
}

typedef struct {
	const sk_common_opts *co;
	sk_progress *bar;
	char fields[256]; /* of the last step */
} ui;

static void on_event(void *ctx, const sk_train_event *ev)
{
	ui *u = ctx;
	char line[1200];
	switch (ev->kind) {
	case SK_TRAIN_EV_LOG:
		if (u->co->verbosity >= 0) {
			snprintf(line, sizeof line, "%s", ev->text);
			sk_progress_print(u->bar, line);
		}
		break;
	case SK_TRAIN_EV_WARN:
		snprintf(line, sizeof line, _("sokhan: warning: %s"), ev->text);
		sk_progress_print(u->bar, line);
		break;
	case SK_TRAIN_EV_STEP: {
		if (u->co->verbosity < 0)
			break;
		snprintf(u->fields, sizeof u->fields, _("loss %.4f lr %.3g grad %.3g %.0f tok/s epoch %.2f"),
			 ev->loss, ev->lr, ev->grad_norm, ev->tokens_per_s, ev->epoch);
		if (!u->bar)
			u->bar = sk_progress_new(stderr, ev->total_steps, -1, _("steps"));
		sk_progress_update(u->bar, ev->step, u->fields);
		break;
	}
	case SK_TRAIN_EV_MICRO:
		/* steps of a large model take a while: show the micro-steps on a
		 * terminal (plain logs get one line per optimizer step only) */
		if (u->co->verbosity < 0 || ev->micro == ev->n_micro)
			break;
		if (!u->bar)
			u->bar = sk_progress_new(stderr, ev->total_steps, -1, _("steps"));
		if (sk_progress_tty(u->bar)) {
			char f[320];
			snprintf(f, sizeof f, _("%s (micro %d/%d)"), u->fields, ev->micro, ev->n_micro);
			sk_progress_update(u->bar, ev->step, f);
		}
		break;
	case SK_TRAIN_EV_EVAL:
		if (u->co->verbosity >= 0) {
			snprintf(line, sizeof line, _("eval at step %lld: loss %.4f, perplexity %.3f (%lld tokens)"),
				 (long long)ev->step, ev->eval_loss, exp(ev->eval_loss), (long long)ev->eval_tokens);
			sk_progress_print(u->bar, line);
		}
		break;
	case SK_TRAIN_EV_CHECKPOINT:
		if (u->co->verbosity >= 1) {
			snprintf(line, sizeof line, _("checkpoint: %s"), ev->text);
			sk_progress_print(u->bar, line);
		}
		break;
	case SK_TRAIN_EV_DONE:
		break;
	}
}

/* The same run, configured here, driven by the TUI's engine thread. */
static int train_in_tui(const sk_train_config *cfg, const sk_common_opts *co)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return sk_cli_error("%s", _("the TUI needs a terminal (drop --tui to train with a progress bar)"));
	sk_tui_opts o;
	memset(&o, 0, sizeof o);
	o.model = cfg->model;
	o.device = SK_DEVICE_CPU; /* training runs on the CPU backend until the GPU one has its backward ops */
	o.threads = cfg->threads;
	o.quant_nf4 = cfg->quant_nf4;
	o.bidi_app = 1;
	o.shape = sk_shape_resolve(SK_SHAPE_AUTO);
	if (o.shape)
		o.bidi_app = 2;
	o.rtl_ui = sk_cli_ui_rtl();
	sk_sampling_defaults(&o.sampling);
	o.sampling.seed = co->seed;
	o.max_new = 1024;
	o.start_view = 2;
	o.train = 1;
	o.train_opts.config = cfg;
	o.train_opts.data = cfg->data;
	o.train_opts.out_dir = cfg->run_dir;
	const char *dump = getenv("SOKHAN_TUI_DUMP");
	if (dump && *dump)
		o.dump_path = dump;
	return sk_tui_run(&o) == 0 ? SK_EXIT_OK : SK_EXIT_ERROR;
}

int sk_cmd_train(int argc, char **argv)
{
	parsed p;
	memset(&p, 0, sizeof p);
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &train_help, train_opts, "o:", on_opt, &p, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&train_help, _("unexpected argument '%s'"), argv[first]);

	/* defaults < the resumed run's options < the recipe < explicit options */
	sk_train_config cfg;
	sk_train_config_default(&cfg);
	int resumable = 0;
	if (p.resume) {
		resumable = sk_train_config_load_run(p.resume, &cfg);
		if (resumable < 0)
			return sk_cli_fail();
		if (strlen(p.resume) >= SK_TRAIN_PATH_MAX)
			return sk_cli_usage(&train_help, "%s", _("--resume: the path is too long"));
		for (int i = 0; i < p.n; i++)
			if (p.flags[i].code == OPT_OUT && strcmp(p.flags[i].arg, p.resume))
				return sk_cli_usage(&train_help, "%s", _("--out and --resume name different directories"));
		strcpy(cfg.run_dir, p.resume);
	}
	if (p.recipe)
		sk_train_config_recipe(&cfg, p.recipe);
	for (int i = 0; i < p.n; i++)
		if ((rc = apply(&cfg, p.flags[i].code, p.flags[i].arg)))
			return rc;
	if (co.model) {
		if (strlen(co.model) >= SK_TRAIN_PATH_MAX)
			return sk_cli_usage(&train_help, "%s", _("--model: the path is too long"));
		strcpy(cfg.model, co.model);
	} else if (!cfg.model[0] && sk_cli_default_model(cfg.model, sizeof cfg.model)) {
		return sk_cli_fail();
	}
	if (co.threads)
		cfg.threads = co.threads;
	else if (!resumable)
		cfg.threads = (int)sysconf(_SC_NPROCESSORS_ONLN) > 0 ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 1;
	if (p.resume && !resumable && !cfg.data[0])
		return sk_cli_usage(&train_help, _("%s holds no run to resume; give --data and the other options"),
				    p.resume);
	if (sk_train_config_check(&cfg))
		return sk_cli_usage(&train_help, "%s", sk_error());

	if (co.verbosity >= 0) {
		char desc[16384];
		sk_train_config_describe(&cfg, desc, sizeof desc);
		fprintf(stderr, "%s\n%s", p.resume ? _("Resuming training:") : _("Training:"), desc);
	}

	if (p.tui)
		return train_in_tui(&cfg, &co);

	sk_common_opts mco = co;
	mco.model = cfg.model;
	mco.quant = cfg.quant_nf4 ? SK_QUANT_NF4 : SK_QUANT_NONE;
	mco.threads = cfg.threads;
	mco.adapter = NULL;
	/* Ctrl-C from here on stops at a checkpoint, even while the model loads;
	 * SA_RESTART: a signal must not turn a file write into an error */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sk_lora *unused = NULL;
	sk_model *m = sk_cli_load_model(&mco, &unused, &rc);
	if (!m) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		return rc;
	}

	ui u = { .co = &co };
	sk_train_run *run = sk_train_start(m, &cfg, p.resume != NULL, on_event, &u);
	if (!run) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sk_model_free(m);
		return sk_cli_fail();
	}
	g_run = run;
	if (g_stop)
		sk_train_request_stop(run);

	int st;
	while ((st = sk_train_step(run)) == 1)
		;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	g_run = NULL;
	sk_progress_finish(u.bar);
	u.bar = NULL;
	char tline[256]; /* SK_TRAIN_TIMING=1 */
	sk_train_timing_line(tline, sizeof tline);
	fputs(tline, stderr);
	if (st < 0) {
		rc = sk_cli_fail();
	} else if (sk_train_stopped(run)) {
		if (co.verbosity >= 0)
			fprintf(stderr, _("Stopped at step %lld of %lld; continue with: sokhan train --resume %s\n"),
				(long long)sk_train_steps_done(run), (long long)sk_train_total_steps(run), cfg.run_dir);
		rc = SK_EXIT_OK;
	} else {
		if (co.verbosity >= 0)
			printf(_("Trained %lld steps; adapter in %s/adapter\n"), (long long)sk_train_steps_done(run),
			       cfg.run_dir);
		rc = SK_EXIT_OK;
	}
	sk_train_free(run);
	sk_model_free(m);
	return rc;
}
