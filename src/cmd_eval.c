/* `sokhan eval --model M [--adapter A] --data FILE`: mean loss, perplexity
 * and token count of a model (and adapter) over a JSONL dataset, rendered
 * and masked exactly as training does. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/dataset.h"
#include "engine/i18n.h"
#include "engine/paths.h"
#include "engine/train/train.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"

static const sk_command_help eval_help = {
	"eval",
	"--model M [--adapter A] --data FILE [--loss-on all|responses] [--max-len N] [--json]",
	N_("Mean loss and perplexity of a model, with or without an adapter, over a JSONL dataset."),
	N_("  --data FILE         JSONL conversations, as for train\n"
	   "  --loss-on all|responses  which tokens are scored (default responses)\n"
	   "  --max-len N         cut examples to N tokens (default 2048; 0 = no limit)\n"
	   "  --batch N           sequences per forward pass (default 2)\n"
	   "  --on-bad-row skip|fail  what to do with a bad line (default skip)\n"
	   "  --json              print one JSON object"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_VERBOSITY,
};

enum { OPT_DATA = 2000, OPT_LOSS_ON, OPT_MAX_LEN, OPT_BATCH, OPT_BAD_ROW, OPT_JSON };

typedef struct {
	const char *data;
	sk_dataset_opts dopt;
	long long batch;
	int json;
} eval_opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
	eval_opts *o = ctx;
	long long v;
	switch (opt) {
	case OPT_DATA: o->data = arg; return 0;
	case OPT_LOSS_ON:
		if (sk_loss_on_parse(arg, &o->dopt.loss_on))
			return sk_cli_usage(&eval_help, _("--loss-on: '%s' is not one of all, responses"), arg);
		return 0;
	case OPT_MAX_LEN:
		if (sk_cli_parse_int(&eval_help, "max-len", arg, 0, INT32_MAX, &v))
			return SK_EXIT_USAGE;
		o->dopt.max_len = (size_t)v;
		return 0;
	case OPT_BATCH:
		return sk_cli_parse_int(&eval_help, "batch", arg, 1, 65536, &o->batch) ? SK_EXIT_USAGE : 0;
	case OPT_BAD_ROW:
		if (sk_bad_rows_parse(arg, &o->dopt.bad_rows))
			return sk_cli_usage(&eval_help, _("--on-bad-row: '%s' is not one of skip, fail"), arg);
		return 0;
	case OPT_JSON: o->json = 1; return 0;
	}
	return SK_EXIT_USAGE;
}

int sk_cmd_eval(int argc, char **argv)
{
	static const struct option own[] = {
		{ "data", required_argument, NULL, OPT_DATA },
		{ "loss-on", required_argument, NULL, OPT_LOSS_ON },
		{ "max-len", required_argument, NULL, OPT_MAX_LEN },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "on-bad-row", required_argument, NULL, OPT_BAD_ROW },
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 },
	};
	eval_opts o = { .batch = 2 };
	sk_dataset_opts_init(&o.dopt);
	o.dopt.loss_on = SK_LOSS_RESPONSES; /* as train's default */
	o.dopt.max_len = 2048;
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &eval_help, own, "", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&eval_help, _("unexpected argument '%s'"), argv[first]);
	if (!o.data)
		return sk_cli_usage(&eval_help, "%s", _("--data FILE is required"));
	sk_lora *lora = NULL;
	sk_model *m = sk_cli_load_model(&co, &lora, &rc);
	if (!m)
		return rc;
	const sk_tokenizer *tok = sk_model_tokenizer(m);
	sk_dataset *ds = NULL;
	if (!tok) {
		rc = sk_cli_error(_("%s: the model has no tokenizer"), co.model);
		goto done;
	}
	ds = sk_dataset_load(o.data, tok, &o.dopt);
	if (!ds) {
		rc = sk_cli_fail();
		goto done;
	}
	char line[1024];
	if (sk_dataset_bad_rows_message(ds, line, sizeof line))
		sk_cli_note(&co, 0, _("sokhan: warning: %s"), line);
	double ls;
	int64_t nt;
	if (sk_train_evaluate(m, lora, ds, NULL, ds->n, (size_t)o.batch, &ls, &nt)) {
		rc = sk_cli_fail();
		goto done;
	}
	double loss = nt ? ls / (double)nt : NAN;
	if (o.json) {
		json_t *j = json_pack("{s:s, s:s?, s:s, s:I, s:I, s:s}", "model", co.model, "adapter", co.adapter, "data",
				      o.data, "examples", (json_int_t)ds->n, "tokens", (json_int_t)nt, "loss_on",
				      o.dopt.loss_on == SK_LOSS_ALL ? "all" : "responses");
		if (j) {
			json_object_set_new(j, "loss", isfinite(loss) ? json_real(loss) : json_null());
			json_object_set_new(j, "perplexity", isfinite(loss) ? json_real(exp(loss)) : json_null());
		}
		char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
	} else {
		printf(_("loss        %.6f\n"), loss);
		printf(_("perplexity  %.4f\n"), exp(loss));
		printf(_("tokens      %lld (in %zu examples)\n"), (long long)nt, ds->n);
	}
	rc = SK_EXIT_OK;
done:
	sk_dataset_free(ds);
	sk_cli_free_model(m, lora);
	return rc;
}
