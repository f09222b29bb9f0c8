/* `sokhan generate`: one prompt (chat-templated, raw text, or token ids)
 * continued by the model, the text streamed to stdout as it is sampled;
 * --batch N decodes N copies together with seeds S, S+1, ... */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/text/chat_template.h"
#include "engine/model/generate.h"
#include "engine/i18n.h"
#include "engine/strbuf.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"

#define SK_MAX_BATCH 256

static const sk_command_help generate_help = {
	"generate",
	"[--model PATH] (--prompt TEXT | --ids LIST) [-n N] [--greedy | --temp T --top-k K --top-p P --min-p P "
	"--repeat-penalty R --seed S] [--raw] [--ignore-eos] [--batch N] [--print-ids | --json]",
	N_("Continue a prompt with the model and print the text as it comes (speeds go to stderr)."),
	N_("  -p, --prompt TEXT   the user's message, put through the chat template\n"
	   "  --raw               use the prompt as it is (after <bos>), without the chat template\n"
	   "  --ids LIST          the prompt as token ids, separated by commas or spaces\n"
	   "  -n, --max-new N     generate at most N tokens (default: 256)\n"
	   "  --ignore-eos        do not stop at end-of-sequence tokens: always generate N tokens\n"
	   "  --batch N           decode N copies of the request together, with seeds S, S+1, ...\n"
	   "  --print-ids         print only the generated token ids, one line per request\n"
	   "  --json              print one JSON object per request (text, ids, counts, speeds, stop reason)"),
	SK_CO_ALL, /* with the sampling options */
};

enum { OPT_PROMPT = 3200, OPT_IDS, OPT_MAX_NEW, OPT_RAW, OPT_IGNORE_EOS, OPT_BATCH, OPT_PRINT_IDS, OPT_JSON };

typedef struct {
	const char *prompt, *ids;
	long long max_new, batch;
	int raw, ignore_eos, print_ids, json;
} sk_gen_opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
	sk_gen_opts *o = ctx;
	const sk_command_help *h = &generate_help;
	switch (opt) {
	case 'p':
	case OPT_PROMPT: o->prompt = arg; return 0;
	case OPT_IDS: o->ids = arg; return 0;
	case 'n':
	case OPT_MAX_NEW: return sk_cli_parse_int(h, "max-new", arg, 0, 1 << 20, &o->max_new);
	case OPT_RAW: o->raw = 1; return 0;
	case OPT_IGNORE_EOS: o->ignore_eos = 1; return 0;
	case OPT_BATCH: return sk_cli_parse_int(h, "batch", arg, 1, SK_MAX_BATCH, &o->batch);
	case OPT_PRINT_IDS: o->print_ids = 1; return 0;
	case OPT_JSON: o->json = 1; return 0;
	}
	return SK_EXIT_USAGE;
}

/* What one request produced, kept for --batch, --json and --print-ids. */
typedef struct {
	sk_strbuf text;
	sk_ids ids;
} sk_gen_out;

typedef struct {
	sk_gen_out *outs;
	int stream;       /* write text to stdout as it comes */
	int write_failed;
} sk_gen_ctx;

static int on_token(void *vctx, int i, int32_t id, const char *text)
{
	sk_gen_ctx *c = vctx;
	sk_gen_out *o = &c->outs[i];
	if (sk_ids_push(&o->ids, id) != 0)
		return 1;
	if (!text || !*text)
		return 0;
	size_t n = strlen(text);
	if (c->stream) {
		if (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0) {
			c->write_failed = errno ? errno : EIO;
			return 1;
		}
		return 0;
	}
	return sk_strbuf_add(&o->text, text, n) != 0;
}

static const char *stop_name(int s)
{
	return s == 1 ? "eos" : s == 2 ? "stopped" : "length";
}

static double per_s(double n, double s)
{
	return s > 0.0 ? n / s : 0.0;
}

/* Decode speed: generated tokens over the time after the prefill (the
 * first token comes out of the prefill's logits, so for short runs this is
 * slightly generous). */
static double decode_rate(const sk_gen_stats *st)
{
	return per_s(st->n_generated, st->decode_s);
}

static int print_json(const sk_gen_out *o, const sk_gen_stats *st, int i, uint64_t seed, int have_tok)
{
	json_t *ids = json_array();
	for (size_t k = 0; k < o->ids.n; k++)
		json_array_append_new(ids, json_integer(o->ids.v[k]));
	json_t *obj = json_object();
	json_object_set_new(obj, "request", json_integer(i + 1));
	json_object_set_new(obj, "seed", json_integer((json_int_t)seed));
	json_object_set_new(obj, "text", have_tok ? json_stringn(o->text.s ? o->text.s : "", o->text.len) : json_null());
	json_object_set_new(obj, "ids", ids);
	json_object_set_new(obj, "n_prompt", json_integer(st->n_prompt_tokens));
	json_object_set_new(obj, "n_generated", json_integer(st->n_generated));
	json_object_set_new(obj, "prefill_tokens_per_s", json_real(per_s(st->n_prompt_tokens, st->prefill_s)));
	json_object_set_new(obj, "decode_tokens_per_s", json_real(decode_rate(st)));
	json_object_set_new(obj, "stop_reason", json_string(stop_name(st->stopped_by)));
	char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(obj);
	if (!s)
		return sk_cli_error("%s", _("out of memory"));
	puts(s);
	free(s);
	return 0;
}

/* The prompt's token ids from --ids, or --prompt through the chat template
 * (or, with --raw, encoded as is after <bos>). */
static int prompt_ids(const sk_gen_opts *o, const sk_model *m, sk_ids *ids)
{
	if (o->ids)
		return sk_cli_check_ids(m, ids->v, ids->n);
	const sk_tokenizer *tok = sk_model_tokenizer(m);
	if (!tok)
		return sk_cli_error("%s", _("--prompt needs a tokenizer, and the model has none: give --ids"));
	int rc;
	if (o->raw) {
		rc = sk_tokenizer_encode(tok, o->prompt, strlen(o->prompt), sk_tokenizer_bos(tok) >= 0, ids);
	} else {
		sk_chat_msg msg = { SK_CHAT_USER, o->prompt };
		rc = sk_chat_render(tok, &msg, 1, 1, ids, NULL);
	}
	if (rc != 0)
		return sk_cli_fail();
	if (ids->n == 0)
		return sk_cli_error("%s", _("the prompt has no tokens"));
	return sk_cli_check_ids(m, ids->v, ids->n);
}

int sk_cmd_generate(int argc, char **argv)
{
	static const struct option own[] = {
		{ "prompt", required_argument, NULL, OPT_PROMPT },
		{ "ids", required_argument, NULL, OPT_IDS },
		{ "max-new", required_argument, NULL, OPT_MAX_NEW },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "ignore-eos", no_argument, NULL, OPT_IGNORE_EOS },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "print-ids", no_argument, NULL, OPT_PRINT_IDS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 },
	};
	sk_gen_opts o = { .max_new = 256, .batch = 1 };
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &generate_help, own, "p:n:", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	const sk_command_help *h = &generate_help;
	if (first < argc)
		return sk_cli_usage(h, _("unexpected argument '%s' (quote the prompt and give it with --prompt)"),
		                    argv[first]);
	if (!o.prompt == !o.ids)
		return sk_cli_usage(h, "%s", o.prompt ? _("give --prompt or --ids, not both")
		                                      : _("--prompt TEXT or --ids LIST is required"));
	if (o.raw && !o.prompt)
		return sk_cli_usage(h, "%s", _("--raw applies to --prompt"));
	if (o.print_ids && o.json)
		return sk_cli_usage(h, "%s", _("give --print-ids or --json, not both"));

	sk_ids ids = { 0 };
	if (o.ids && (rc = sk_cli_parse_ids(h, "ids", o.ids, &ids)) != 0) {
		sk_ids_free(&ids);
		return rc;
	}
	int nb = (int)o.batch;
	sk_lora *lora = NULL;
	sk_gen_request *reqs = NULL;
	sk_gen_stats *stats = NULL;
	sk_gen_out *outs = NULL;
	sk_model *m = sk_cli_load_model(&co, &lora, &rc);
	if (!m)
		goto out;
	if ((rc = prompt_ids(&o, m, &ids)) != 0)
		goto out;
	const sk_tokenizer *tok = sk_model_tokenizer(m);
	if (!tok && !o.print_ids && !o.json) {
		rc = sk_cli_error("%s", _("the model has no tokenizer to print text with: use --print-ids or --json"));
		goto out;
	}

	reqs = calloc((size_t)nb, sizeof *reqs);
	stats = calloc((size_t)nb, sizeof *stats);
	outs = calloc((size_t)nb, sizeof *outs);
	if (!reqs || !stats || !outs) {
		rc = sk_cli_error("%s", _("out of memory"));
		goto out;
	}
	for (int i = 0; i < nb; i++) {
		sk_gen_request *r = &reqs[i];
		r->prompt = ids.v;
		r->n_prompt = ids.n;
		r->max_new = (int)o.max_new;
		r->adapter_on = lora != NULL;
		r->ignore_eos = o.ignore_eos;
		r->sampling = co.sampling;
		r->sampling.seed = co.seed + (uint64_t)i;
	}
	sk_gen_ctx ctx = { outs, nb == 1 && !o.print_ids && !o.json, 0 };
	if (sk_generate(m, reqs, nb, on_token, &ctx, stats) != 0) {
		if (ctx.stream)
			fputc('\n', stdout);
		rc = sk_cli_fail();
		goto out;
	}
	if (ctx.write_failed) {
		rc = sk_cli_error(_("cannot write the output: %s"), strerror(ctx.write_failed));
		goto out;
	}
	for (int i = 0; i < nb; i++) {
		if (o.json) {
			if ((rc = print_json(&outs[i], &stats[i], i, reqs[i].sampling.seed, tok != NULL)) != 0)
				goto out;
		} else if (o.print_ids) {
			for (size_t k = 0; k < outs[i].ids.n; k++)
				printf("%s%d", k ? " " : "", outs[i].ids.v[k]);
			putchar('\n');
		} else if (ctx.stream) {
			putchar('\n');
		} else {
			printf(_("--- request %d (seed %llu) ---\n"), i + 1, (unsigned long long)reqs[i].sampling.seed);
			fwrite(outs[i].text.s ? outs[i].text.s : "", 1, outs[i].text.len, stdout);
			putchar('\n');
		}
	}
	if (fflush(stdout) != 0) {
		rc = sk_cli_error(_("cannot write the output: %s"), strerror(errno));
		goto out;
	}
	int n_prompt = 0, n_gen = 0;
	double t_dec = 0.0;
	for (int i = 0; i < nb; i++) {
		n_prompt += stats[i].n_prompt_tokens;
		n_gen += stats[i].n_generated;
		if (stats[i].decode_s > t_dec)
			t_dec = stats[i].decode_s;
	}
	sk_cli_note(&co, 0, _("prefill: %d tokens in %.3f s (%.1f tokens/s); decode: %d tokens in %.3f s (%.1f tokens/s)"),
	            n_prompt, stats[0].prefill_s, per_s(n_prompt, stats[0].prefill_s), n_gen, t_dec,
	            per_s(n_gen, t_dec));
	rc = SK_EXIT_OK;
out:
	for (int i = 0; outs && i < nb; i++) {
		sk_strbuf_free(&outs[i].text);
		sk_ids_free(&outs[i].ids);
	}
	free(outs);
	free(stats);
	free(reqs);
	sk_cli_free_model(m, lora);
	sk_ids_free(&ids);
	return rc;
}
