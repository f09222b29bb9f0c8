/* `sokhan bench train`: QLoRA training throughput of a model (a file, or a
 * released shape with random weights made on the GPU): LoRA r 8, alpha 16
 * on q, k, v, o, gate, up, down, 8-bit AdamW, batches of random token
 * sequences; tokens/s, step time and peak device memory by category. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/env_flag.h"
#include "engine/i18n.h"
#include "engine/model/model.h"
#include "engine/train/optim.h"
#include "engine/train/train_grad.h"
#include "src/bench.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"

const sk_command_help sk_bench_train_help = {
	"bench train",
	"(--model PATH | --random-init e4b|e2b) [--quant nf4|none] [--batch B] [--seq L] [--grad-accum A] "
	"[--steps N] [--vary] [--grad-ckpt | --no-grad-ckpt] [--json]",
	N_("Measure QLoRA training speed and memory (LoRA r 8 on all seven projections, 8-bit AdamW)."),
	N_("  --random-init SHAPE a Gemma 3n model of that shape (e4b, e2b) with random weights, made on the GPU\n"
	   "  --batch B           sequences a micro-step (default: 2)\n"
	   "  --seq L             tokens a sequence (default: 512)\n"
	   "  --grad-accum A      micro-steps an optimizer step (default: 4)\n"
	   "  --steps N           optimizer steps measured, after one to warm up (default: 3)\n"
	   "  --vary              lengths drawn anew at every micro-step around --seq (log-normal, as\n"
	   "                      conversations' are: 16 to 4 x L tokens), as a real dataset gives them\n"
	   "  --grad-ckpt         recompute each layer's activations in the backward pass (the default)\n"
	   "  --no-grad-ckpt      keep every layer's activations instead\n"
	   "  --json              one JSON object instead of the table"),
	SK_CO_MODEL | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_SEED | SK_CO_VERBOSITY,
};

enum { OPT_RANDOM = 3700, OPT_BATCH, OPT_SEQ, OPT_ACCUM, OPT_STEPS, OPT_CKPT, OPT_NO_CKPT, OPT_JSON, OPT_VARY };

typedef struct {
	const char *random;
	long long batch, seq, accum, steps;
	int no_ckpt, json, vary;
} opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
	opts *o = ctx;
	const sk_command_help *h = &sk_bench_train_help;
	switch (opt) {
	case OPT_RANDOM: return sk_bench_shape(h, arg, &o->random);
	case OPT_BATCH: return sk_cli_parse_int(h, "batch", arg, 1, 256, &o->batch);
	case OPT_SEQ: return sk_cli_parse_int(h, "seq", arg, 2, 1 << 16, &o->seq);
	case OPT_ACCUM: return sk_cli_parse_int(h, "grad-accum", arg, 1, 1024, &o->accum);
	case OPT_STEPS: return sk_cli_parse_int(h, "steps", arg, 1, 1 << 20, &o->steps);
	case OPT_CKPT: o->no_ckpt = 0; return 0;
	case OPT_NO_CKPT: o->no_ckpt = 1; return 0;
	case OPT_JSON: o->json = 1; return 0;
	case OPT_VARY: o->vary = 1; return 0;
	}
	return sk_cli_usage(h, "%s", _("unknown option"));
}


static double uniform01(uint64_t *r)
{
	*r ^= *r << 13, *r ^= *r >> 7, *r ^= *r << 17;
	return ((double)(*r >> 11) + 0.5) / 9007199254740992.0;
}

/* A sequence length around mean: log-normal with sigma 0.55 (the spread of
 * tests/bench/make_seed_like.py's conversations), within [16, max]. */
static int draw_len(uint64_t *r, long long mean, long long max)
{
	const double sigma = 0.55, pi = 3.14159265358979323846;
	double z = sqrt(-2.0 * log(uniform01(r))) * cos(2.0 * pi * uniform01(r));
	double len = exp(log((double)mean) - sigma * sigma / 2 + sigma * z);
	return len < 16 ? 16 : len > (double)max ? (int)max : (int)len;
}

/* The optimizer's view of the adapter: one parameter per factor. */
static sk_optim_param *adapter_params(sk_lora *l, size_t *n, char (**names)[48])
{
	int np = sk_lora_pair_count(l);
	sk_optim_param *p = calloc((size_t)(2 * np), sizeof *p);
	*names = calloc((size_t)(2 * np), sizeof **names);
	if (!p || !*names) {
		free(p);
		free(*names);
		return NULL;
	}
	for (int i = 0; i < np; i++) {
		int layer;
		sk_lora_module mod;
		sk_lora_pair *pr = sk_lora_pair_at(l, i, &layer, &mod);
		for (int ab = 0; ab < 2; ab++) {
			snprintf((*names)[2 * i + ab], 48, "%d.%s.%c", layer, sk_lora_module_name(mod), ab ? 'B' : 'A');
			p[2 * i + ab] = (sk_optim_param){ (*names)[2 * i + ab], ab ? pr->B : pr->A,
				                          ab ? sk_lora_grad_B(l, i) : sk_lora_grad_A(l, i),
				                          ab ? (int64_t)pr->out * pr->r : (int64_t)pr->r * pr->in };
		}
	}
	*n = (size_t)(2 * np);
	return p;
}

int sk_cmd_bench_train(int argc, char **argv)
{
	opts o = { NULL, 2, 512, 4, 3, 0, 0, 0 };
	sk_common_opts co;
	static const struct option own[] = {
		{ "random-init", required_argument, NULL, OPT_RANDOM }, { "batch", required_argument, NULL, OPT_BATCH },
		{ "seq", required_argument, NULL, OPT_SEQ },            { "grad-accum", required_argument, NULL, OPT_ACCUM },
		{ "steps", required_argument, NULL, OPT_STEPS },        { "grad-ckpt", no_argument, NULL, OPT_CKPT },
		{ "no-grad-ckpt", no_argument, NULL, OPT_NO_CKPT },     { "json", no_argument, NULL, OPT_JSON },
		{ "vary", no_argument, NULL, OPT_VARY },                { 0, 0, 0, 0 },
	};
	int first = 0, rc = sk_cli_parse(argc, argv, &sk_bench_train_help, own, "", on_opt, &o, &co, &first);
	if (rc)
		return rc == 1 ? SK_EXIT_OK : rc;
	if (first < argc)
		return sk_cli_usage(&sk_bench_train_help, _("unexpected argument '%s'"), argv[first]);
	if (o.random && co.model)
		return sk_cli_usage(&sk_bench_train_help, "%s", _("give either --model PATH or --random-init SHAPE"));

	sk_model *m;
	sk_lora *unused = NULL;
	if (o.random) {
		sk_model_opts mo = { co.device, co.quant == SK_QUANT_NF4, co.threads };
		if (!(m = sk_model_random(o.random, &mo, co.seed)))
			return sk_cli_fail();
	} else if (!(m = sk_cli_load_model(&co, &unused, &rc))) {
		return rc;
	}
	const sk_config *c = sk_model_config(m);
	int B = (int)o.batch, V = sk_model_vocab(m);
	int L = (int)(o.vary ? 4 * o.seq : o.seq); /* the longest a sequence can be */
	sk_lora *l = sk_lora_new_trainable(c, SK_LORA_MASK_ALL, 8, 16.0f, 0, co.seed);
	size_t np = 0;
	char(*names)[48] = NULL;
	sk_optim_param *params = l ? adapter_params(l, &np, &names) : NULL;
	sk_optim_config oc;
	sk_optim_config_default(&oc);
	sk_optim *opt = params ? sk_optim_new(&oc, params, np) : NULL;
	int32_t *ids = malloc((size_t)B * (size_t)L * sizeof *ids);
	uint8_t *tgt = malloc((size_t)L);
	sk_train_seq *seqs = calloc((size_t)B, sizeof *seqs);
	rc = SK_EXIT_ERROR;
	if (!l || !params || !opt || !ids || !tgt || !seqs || sk_model_train_begin(m, l) != 0) {
		if (!*sk_error())
			sk_fail("%s", _("out of memory"));
		sk_cli_fail();
		goto out;
	}
	uint64_t r = co.seed * 0x9E3779B97F4A7C15ull + 11;
	for (int i = 0; i < B * L; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		ids[i] = (int32_t)(r % (uint64_t)V);
	}
	memset(tgt, 1, (size_t)L);
	for (int b = 0; b < B; b++)
		seqs[b] = (sk_train_seq){ ids + (size_t)b * L, tgt, L };
	/* the optimizer where the adapter is, when the backend keeps it */
	int od = sk_model_train_optim_begin(m, opt);
	if (od < 0) {
		sk_cli_fail();
		goto out;
	}
	/* SK_TRAIN_KEEP_BF16=1 (opt-in): the kept layer inputs in bf16; SK_TRAIN_RECOMPUTE_ALL=1:
	 * every product computed again under checkpointing; as sokhan train takes them */
	sk_train_opts to = { 0.0f, 0, !o.no_ckpt, 1.0f, 1, sk_env_on("SK_TRAIN_KEEP_BF16"),
		             sk_env_on("SK_TRAIN_RECOMPUTE_ALL") };
	double t_steps = 0, loss = 0, tokens = 0, loss_tokens = 1;
	uint64_t peak = 0, lr = co.seed * 0x2545F4914F6CDD1Dull + 5;
	for (long long s = 0; s <= o.steps; s++) { /* step 0 warms up */
		double t0 = sk_bench_now();
		for (int a = 0; a < o.accum; a++) {
			int64_t nt = 0;
			for (int b = 0; b < B; b++) {
				seqs[b].n = o.vary ? draw_len(&lr, o.seq, L) : L;
				if (s > 0)
					tokens += seqs[b].n;
			}
			loss_tokens = 0;
			for (int b = 0; b < B; b++)
				loss_tokens += seqs[b].n - 1;
			to.dropout_seed = (uint64_t)(s * o.accum + a);
			if (sk_model_loss_grad(m, l, seqs, B, &to, &loss, &nt) != 0)
				goto fail;
		}
		/* a step as sk_train makes it: the norm, clipping to 1, the update */
		float norm;
		if (sk_model_train_optimizer_step(m, opt, od, l, params, np, 2e-5, 1.0f, &norm) != 0)
			goto fail;
		if (s > 0)
			t_steps += sk_bench_now() - t0;
		sk_model_mem mm;
		sk_model_memory(m, &mm);
		if (mm.device_total && mm.device_total - mm.device_free > peak)
			peak = mm.device_total - mm.device_free;
	}
	{
		double step_s = t_steps / (double)o.steps;
		double tps = tokens / t_steps;
		/* the products' arithmetic a token at the nominal length, and the rate this run gave it */
		int ckpt = o.no_ckpt ? SK_TRAIN_CKPT_NONE : to.recompute_all ? SK_TRAIN_CKPT_ALL : SK_TRAIN_CKPT_KEPT;
		double gflop = sk_config_train_flops(sk_model_config(m), o.seq, ckpt) / 1e9;
		sk_model_mem mm;
		sk_model_memory(m, &mm);
		uint64_t lora_b = 0;
		for (size_t i = 0; i < np; i++)
			lora_b += (uint64_t)params[i].numel * 8; /* factor and gradient, fp32 */
		if (o.json)
			printf("{\"model\":\"%s\",\"backend\":\"%s\",\"batch\":%d,\"seq\":%d,\"grad_accum\":%lld,"
			       "\"grad_ckpt\":%d,\"vary\":%d,\"tokens_per_s\":%.1f,\"step_s\":%.4f,\"peak_device_bytes\":%llu,"
			       "\"weight_bytes\":%llu,\"host_table_bytes\":%llu,\"activation_bytes\":%llu,"
			       "\"adapter_bytes\":%llu,\"optimizer_bytes\":%llu,\"optimizer_on_device\":%d,\"last_loss_per_token\":%.4f,"
			       "\"gflop_per_token\":%.6g,\"achieved_tflop_s\":%.6g}\n",
			       o.random ? o.random : co.model, mm.backend, B, (int)o.seq, o.accum, !o.no_ckpt, o.vary, tps, step_s,
			       (unsigned long long)peak, (unsigned long long)(mm.weights - mm.host_table),
			       (unsigned long long)mm.host_table, (unsigned long long)mm.activations,
			       (unsigned long long)lora_b, (unsigned long long)sk_optim_state_bytes(opt), od,
			       loss / loss_tokens, gflop, gflop * tps / 1e3);
		else {
			printf(_("model            %s on %s\n"), o.random ? o.random : co.model, mm.backend);
			printf(_("workload         batch %d x %d tokens%s, %lld micro-steps a step, checkpointing %s\n"), B,
			       (int)o.seq, o.vary ? _(" (lengths varied)") : "", o.accum, o.no_ckpt ? _("off") : _("on"));
			printf(_("training         %.0f tokens/s, %.3f s an optimizer step\n"), tps, step_s);
			printf(_("compute          %.1f GFLOP a token in the matrix products: %.0f TFLOP/s achieved\n"), gflop,
			       gflop * tps / 1e3);
			printf(_("device memory    %.2f GiB at peak: weights %.2f, activations %.2f, adapter %.3f, "
			         "optimizer %.3f GiB; per-layer table in host memory %.2f GiB\n"),
			       (double)peak / 1073741824.0, (double)(mm.weights - mm.host_table) / 1073741824.0,
			       (double)mm.activations / 1073741824.0, (double)lora_b / 1073741824.0,
			       (double)sk_optim_state_bytes(opt) / 1073741824.0, (double)mm.host_table / 1073741824.0);
		}
	}
	char tline[256]; /* SK_TRAIN_TIMING=1: the warm-up step included */
	sk_train_timing_line(tline, sizeof tline);
	fputs(tline, stderr);
	sk_model_profile_report(m, stderr);
	rc = SK_EXIT_OK;
	goto out;
fail:
	sk_cli_fail();
out:
	sk_model_train_end(m);
	sk_optim_free(opt);
	free(params);
	free(names);
	free(ids);
	free(tgt);
	free(seqs);
	sk_lora_free(l);
	sk_cli_free_model(m, unused);
	return rc;
}
