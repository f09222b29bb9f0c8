/* `sokhan bench infer`: prefill and decode speed of a model (a file, or a
 * released shape with random weights made on the GPU), with time to first
 * token, peak device memory, and the bandwidth floor of a decode step (the
 * bytes it must read ÷ the device's measured copy bandwidth). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/i18n.h"
#include "engine/model/generate.h"
#include "engine/model/model.h"
#include "src/bench.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"

static const sk_command_help bench_help = {
	"bench",
	"infer (--model PATH | --random-init e4b|e2b) [--quant nf4|none] [--batch B] [--prompt-len P] [-n N] "
	"[--temp T --top-p P ...] [--json]",
	N_("Measure a model's prefill and decode speed, time to first token and memory against the device's floor."),
	N_("  --random-init SHAPE a Gemma 3n model of that shape (e4b, e2b) with random weights, made on the GPU\n"
	   "  --batch B           sequences decoded together (default: 1)\n"
	   "  --prompt-len P      prompt tokens of each sequence (default: 32)\n"
	   "  -n N                tokens generated for each sequence (default: 256)\n"
	   "  --json              one JSON object instead of the table\n"
	   "Greedy unless a sampling option is given."),
	SK_CO_MODEL | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_SEED | SK_CO_VERBOSITY | SK_CO_SAMPLING,
};

enum { OPT_RANDOM = 3600, OPT_BATCH, OPT_PLEN, OPT_N, OPT_JSON };

typedef struct {
	const char *random;
	long long batch, plen, n;
	int json;
	sk_sampling sampling;
} bench_opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
	bench_opts *o = ctx;
	const sk_command_help *h = &bench_help;
	switch (opt) {
	case OPT_RANDOM: return sk_bench_shape(h, arg, &o->random);
	case OPT_BATCH: return sk_cli_parse_int(h, "batch", arg, 1, 256, &o->batch);
	case OPT_PLEN: return sk_cli_parse_int(h, "prompt-len", arg, 1, 1 << 20, &o->plen);
	case 'n':
	case OPT_N: return sk_cli_parse_int(h, "n", arg, 1, 1 << 20, &o->n);
	case OPT_JSON: o->json = 1; return 0;
	}
	return sk_cli_usage(h, "%s", _("unknown option"));
}

int sk_bench_shape(const sk_command_help *h, const char *arg, const char **out)
{
	if (strcmp(arg, "e4b") && strcmp(arg, "e2b"))
		return sk_cli_usage(h, _("--random-init: '%s' is not one of e4b, e2b"), arg);
	*out = arg;
	return 0;
}

double sk_bench_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}


typedef struct {
	double prefill_s, decode_s, ttft_s;
	uint64_t peak_used;
} run_times;

static void track_peak(sk_model *m, uint64_t *peak)
{
	sk_model_mem mm;
	sk_model_memory(m, &mm);
	if (mm.device_total && mm.device_total - mm.device_free > *peak)
		*peak = mm.device_total - mm.device_free;
}

/* Each sequence's next token: drawn on the device when it can (only the
 * ids come back), else sampled from the logits on the host. */
static int step(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int B, sk_sampler **smp, float *logits,
                sk_draw *draws, int32_t *next)
{
	int V = sk_model_vocab(m);
	if (draws) {
		for (int b = 0; b < B; b++) {
			const sk_sampling *sp = sk_sampler_settings(smp[b]);
			draws[b] = (sk_draw){ sp->greedy || sp->temperature <= 0, sp->temperature, sp->top_k, sp->top_p,
				              sp->min_p, sp->repeat_penalty, 0.0 };
			if (!draws[b].greedy)
				draws[b].u = sk_sampler_uniform(smp[b]);
		}
		return sk_model_forward_draw(m, kv, items, B, draws, next);
	}
	if (sk_model_forward(m, kv, items, B, logits) != 0)
		return -1;
	for (int b = 0; b < B; b++)
		next[b] = sk_sampler_sample(smp[b], logits + (size_t)b * V, NULL, 0);
	return 0;
}

/* One prefill of batch prompts and n decode steps. */
static int run_once(sk_model *m, const bench_opts *o, uint64_t seed, run_times *t)
{
	int B = (int)o->batch, P = (int)o->plen, N = (int)o->n, V = sk_model_vocab(m);
	sk_kv_cache *kv = sk_kv_cache_new(m, B, P + N);
	int32_t *ids = malloc((size_t)B * (size_t)P * sizeof *ids), *next = malloc((size_t)B * sizeof *next);
	int draw = sk_model_can_draw(m);
	float *logits = draw ? NULL : malloc((size_t)B * (size_t)V * sizeof *logits);
	sk_draw *draws = draw ? calloc((size_t)B, sizeof *draws) : NULL;
	sk_batch_item *items = calloc((size_t)B, sizeof *items);
	sk_sampler **smp = calloc((size_t)B, sizeof *smp);
	int rc = -1;
	if (!kv || !ids || !next || (!logits && !draws) || !items || !smp)
		goto out;
	sk_sampling sp = o->sampling;
	uint64_t r = seed * 0x9E3779B97F4A7C15ull + 7;
	for (int b = 0; b < B; b++) {
		sp.seed = seed + (uint64_t)b;
		if (!(smp[b] = sk_sampler_new(&sp, V)))
			goto out;
		for (int i = 0; i < P; i++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			ids[b * P + i] = (int32_t)(r % (uint64_t)V);
		}
		items[b] = (sk_batch_item){ b, ids + (size_t)b * P, P, 0, 0 };
	}
	double t0 = sk_bench_now();
	for (int b = 0; b < B; b++) /* long prompts in chunks, as sk_generate prefills them */
		if (sk_prefill_leading(m, kv, &items[b]) != 0)
			goto out;
	if (step(m, kv, items, B, smp, logits, draws, next) != 0)
		goto out;
	t->ttft_s = t->prefill_s = sk_bench_now() - t0; /* the prefill ends with the first token drawn */
	track_peak(m, &t->peak_used);
	double t1 = sk_bench_now();
	for (int s = 1; s < N; s++) {
		for (int b = 0; b < B; b++)
			items[b] = (sk_batch_item){ b, &next[b], 1, 0, 0 };
		if (step(m, kv, items, B, smp, logits, draws, next) != 0)
			goto out;
	}
	t->decode_s = sk_bench_now() - t1;
	track_peak(m, &t->peak_used);
	rc = 0;
out:
	if (rc != 0 && !*sk_error())
		sk_fail("%s", _("out of memory"));
	for (int b = 0; smp && b < B; b++)
		sk_sampler_free(smp[b]);
	free(smp);
	free(items);
	free(draws);
	free(logits);
	free(next);
	free(ids);
	sk_kv_cache_free(kv);
	return rc;
}

static int bench_infer(int argc, char **argv)
{
	bench_opts o = { NULL, 1, 32, 256, 0, { 0 } };
	sk_common_opts co;
	static const struct option own[] = {
		{ "random-init", required_argument, NULL, OPT_RANDOM }, { "batch", required_argument, NULL, OPT_BATCH },
		{ "prompt-len", required_argument, NULL, OPT_PLEN },    { "max-new", required_argument, NULL, OPT_N },
		{ "json", no_argument, NULL, OPT_JSON },                { 0, 0, 0, 0 },
	};
	int first = 0;
	int rc = sk_cli_parse(argc, argv, &bench_help, own, "n:", on_opt, &o, &co, &first);
	if (rc)
		return rc == 1 ? SK_EXIT_OK : rc;
	if (first < argc)
		return sk_cli_usage(&bench_help, _("unexpected argument '%s'"), argv[first]);
	if (o.random && co.model)
		return sk_cli_usage(&bench_help, "%s", _("give either --model PATH or --random-init SHAPE"));
	o.sampling = co.sampling;
	o.sampling.greedy = co.sampling.greedy || !co.sampling_set;

	double tl = sk_bench_now();
	sk_model *m;
	sk_lora *lora = NULL;
	if (o.random) {
		sk_model_opts mo = { co.device, co.quant == SK_QUANT_NF4, co.threads };
		m = sk_model_random(o.random, &mo, co.seed);
		if (!m)
			return sk_cli_fail();
	} else if (!(m = sk_cli_load_model(&co, &lora, &rc))) {
		return rc;
	}
	double load_s = sk_bench_now() - tl;
	sk_model_mem mm;
	sk_model_memory(m, &mm);
	double bw = sk_model_copy_bandwidth(m);
	/* warm-up at the same shapes (the decode step gets recorded), then the measured run */
	bench_opts warm = o;
	warm.n = o.n < 8 ? o.n : 8;
	run_times tw = { 0 }, t = { 0 };
	int failed = run_once(m, &warm, co.seed, &tw) != 0;
	FILE *sink = fopen("/dev/null", "w"); /* the warm-up's profile is dropped */
	if (sink) {
		sk_model_profile_report(m, sink);
		fclose(sink);
	}
	if (!failed)
		failed = run_once(m, &o, co.seed, &t) != 0;
	if (failed) {
		sk_cli_free_model(m, lora);
		return sk_cli_fail();
	}
	/* the bytes a decode step must read: every weight the device holds (the
	 * embedding once, as the LM head), plus K and V at the mean context,
	 * read again by each KV-shared layer */
	const sk_config *c = sk_model_config(m);
	uint64_t wbytes = mm.weights - mm.host_table;
	double mean_ctx = (double)o.plen + (double)o.n / 2.0;
	int owners = c->num_layers - c->num_kv_shared_layers;
	double kvb = (double)sk_model_kv_bytes(m, (int)o.batch, (int)mean_ctx) * c->num_layers / (owners > 0 ? owners : 1);
	double step_bytes = (double)wbytes + kvb;
	double floor_tps = bw > 0 ? bw / step_bytes * (double)o.batch : 0;
	double prefill_tps = (double)(o.batch * o.plen) / t.prefill_s;
	double decode_tps = (double)(o.batch * (o.n - 1)) / (t.decode_s > 0 ? t.decode_s : 1e-9);
	int kernels = sk_model_recorded_kernels(m);
	if (o.json) {
		printf("{\"model\":\"%s\",\"backend\":\"%s\",\"quant\":\"%s\",\"layers\":%d,\"hidden\":%d,"
		       "\"batch\":%lld,\"prompt_len\":%lld,\"n\":%lld,\"load_s\":%.3f,\"prefill_tok_s\":%.1f,"
		       "\"decode_tok_s\":%.1f,\"ttft_ms\":%.3f,\"peak_device_bytes\":%llu,\"weight_bytes\":%llu,"
		       "\"host_table_bytes\":%llu,\"copy_bandwidth_gb_s\":%.1f,\"decode_step_bytes\":%.0f,"
		       "\"decode_floor_tok_s\":%.1f,\"decode_fraction_of_floor\":%.3f,\"graph_nodes_per_step\":%d}\n",
		       o.random ? o.random : co.model, mm.backend, co.quant == SK_QUANT_NF4 ? "nf4" : "none",
		       c->num_layers, c->hidden_size, o.batch, o.plen, o.n, load_s, prefill_tps, decode_tps,
		       t.ttft_s * 1e3, (unsigned long long)t.peak_used, (unsigned long long)wbytes,
		       (unsigned long long)mm.host_table, bw / 1e9, step_bytes, floor_tps,
		       floor_tps > 0 ? decode_tps / floor_tps : 0.0, kernels);
	} else {
		printf(_("model            %s on %s (%s weights), loaded in %.1f s\n"), o.random ? o.random : co.model,
		       mm.backend, co.quant == SK_QUANT_NF4 ? "NF4" : _("stored"), load_s);
		printf(_("workload         batch %lld, prompt %lld tokens, %lld new tokens each\n"), o.batch, o.plen, o.n);
		printf(_("prefill          %.0f tokens/s\n"), prefill_tps);
		printf(_("time to first    %.2f ms\n"), t.ttft_s * 1e3);
		printf(_("decode           %.1f tokens/s (all sequences)\n"), decode_tps);
		printf(_("device memory    %.2f GiB at peak; weights %.2f GiB, per-layer table in host memory %.2f GiB\n"),
		       (double)t.peak_used / 1073741824.0, (double)wbytes / 1073741824.0,
		       (double)mm.host_table / 1073741824.0);
		if (bw > 0)
			printf(_("floor            %.0f MB read per decode step at %.0f GB/s copy bandwidth: %.0f tokens/s; "
			         "this run %.0f %% of it\n"),
			       step_bytes / 1e6, bw / 1e9, floor_tps, 100.0 * decode_tps / floor_tps);
		if (kernels > 0)
			printf(_("graph            %d nodes (kernels and copies) a decode step, replayed as one CUDA graph\n"),
			       kernels);
	}
	sk_model_profile_report(m, stderr);
	sk_cli_free_model(m, lora);
	return SK_EXIT_OK;
}

int sk_cmd_bench(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "infer"))
		return bench_infer(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "train"))
		return sk_cmd_bench_train(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		sk_cli_print_help(&bench_help);
		return SK_EXIT_OK;
	}
	return sk_cli_usage(&bench_help, "%s", argc < 2 ? _("which benchmark? (infer, train)") : _("unknown benchmark"));
}
