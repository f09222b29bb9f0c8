/* Tests of the training loop (engine/train/train.h) on the tiny Gemma 3n fixture:
 * configuration, loss normalisation, the loss going down, stop + resume
 * repeating an uninterrupted run bit for bit, and evaluation. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/format/atomic_dir.h"
#include "engine/train/batcher.h"
#include "engine/train/pass_plan.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/train/train.h"
#include "engine/train/train_grad.h"
#include "engine/train/train_internal.h"
#include "tests/test.h"

static char g_model[4096], g_data[4096];
static sk_model *g_m;

static const char *path_of(const char *rel, char *buf)
{
	snprintf(buf, 4096, "%s/%s", sk_test_srcdir(), rel);
	return buf;
}

static void base_config(sk_train_config *c, const char *run_dir)
{
	sk_train_config_default(c);
	snprintf(c->model, sizeof c->model, "%s", g_model);
	snprintf(c->data, sizeof c->data, "%s", g_data);
	snprintf(c->run_dir, sizeof c->run_dir, "%s", run_dir);
	c->quant_nf4 = 1;
	c->loss_on = SK_LOSS_ALL;
	c->max_len = 64;
	c->lr = 5e-3;
	c->warmup = 2;
	c->batch = 2;
	c->grad_accum = 2;
	c->epochs = 8;
	c->save_every = 0;
	c->keep = 0;
	c->threads = 1;
}

typedef struct {
	int micro_seen;
	int stop_after_micro; /* 0: never */
	sk_train_run *run;
	double first_loss[64];
	int nloss;
	int checkpoints;
} watch;

static void on_event(void *ctx, const sk_train_event *ev)
{
	watch *w = ctx;
	if (ev->kind == SK_TRAIN_EV_MICRO) {
		w->micro_seen++;
		if (w->stop_after_micro && w->micro_seen == w->stop_after_micro)
			sk_train_request_stop(w->run);
	} else if (ev->kind == SK_TRAIN_EV_STEP && w->nloss < 64) {
		w->first_loss[w->nloss++] = ev->loss;
	} else if (ev->kind == SK_TRAIN_EV_CHECKPOINT) {
		w->checkpoints++;
	} else if (ev->kind == SK_TRAIN_EV_WARN && getenv("SK_TEST_VERBOSE")) {
		fprintf(stderr, "  warning: %s\n", ev->text);
	}
}

/* Runs to the end (or to a stop); returns the last sk_train_step status. */
static int run_to_end(const sk_train_config *c, int resume, watch *w)
{
	sk_train_run *r = sk_train_start(g_m, c, resume, on_event, w);
	if (!r) {
		fprintf(stderr, "  start: %s\n", sk_error());
		return -1;
	}
	w->run = r;
	int st;
	while ((st = sk_train_step(r)) == 1)
		;
	if (st < 0)
		fprintf(stderr, "  step: %s\n", sk_error());
	sk_train_free(r);
	w->run = NULL;
	return st;
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/sk_test_train_XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static char *read_all(const char *path, size_t *len)
{
	char *d = NULL;
	if (sk_read_file(path, (size_t)1 << 30, &d, len))
		return NULL;
	return d;
}

/* metrics.jsonl without the fields that depend on the clock */
static char *metrics_without_time(const char *run_dir)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/metrics.jsonl", run_dir);
	size_t len;
	char *text = read_all(p, &len);
	if (!text)
		return NULL;
	size_t cap = len + 1, k = 0;
	char *out = malloc(cap);
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		if (!o)
			continue;
		json_object_del(o, "elapsed_s");
		json_object_del(o, "tokens_per_s");
		json_object_del(o, "memory");
		char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		size_t n = strlen(s);
		if (k + n + 1 < cap) {
			memcpy(out + k, s, n);
			k += n;
			out[k++] = '\n';
		}
		free(s);
		json_decref(o);
	}
	out[k] = '\0';
	free(text);
	return out;
}

static int same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *x = read_all(a, &la), *y = read_all(b, &lb);
	int same = x && y && la == lb && memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return same;
}

TEST(config_recipes_and_targets)
{
	sk_train_config c;
	sk_train_config_default(&c);
	CHECK_EQ_INT(c.r, 8);
	CHECK_EQ_INT(c.targets, SK_LORA_MASK_ALL);
	c.targets = SK_LORA_MASK_ATTN;
	c.lr = 1;
	CHECK_EQ_INT(sk_train_config_recipe(&c, "seed"), 0);
	CHECK_EQ_INT(c.targets, SK_LORA_MASK_ALL);
	CHECK(c.lr == 2e-5 && c.batch == 2 && c.grad_accum == 4 && c.warmup == 10 && c.seed == 3407);
	CHECK(c.optim == SK_OPTIM_ADAMW8BIT && c.sched == SK_LR_LINEAR && c.weight_decay == 0.01);
	CHECK_EQ_INT(sk_train_config_recipe(&c, "seed-run"), 0);
	CHECK_EQ_INT(c.targets, SK_LORA_MASK_MLP);
	CHECK_EQ_INT(c.loss_on, SK_LOSS_ALL);
	CHECK_EQ_INT(c.max_len, 4000);
	CHECK_EQ_INT(sk_train_config_recipe(&c, "unsloth"), -1);

	unsigned m = 0;
	CHECK_EQ_INT(sk_train_targets_parse("q,v,down", &m), 0);
	CHECK_EQ_INT(m, (1u << SK_LORA_Q) | (1u << SK_LORA_V) | (1u << SK_LORA_DOWN));
	CHECK_EQ_INT(sk_train_targets_parse("gate_proj,up", &m), 0);
	CHECK_EQ_INT(m, (1u << SK_LORA_GATE) | (1u << SK_LORA_UP));
	CHECK_EQ_INT(sk_train_targets_parse("mlp", &m), 0);
	CHECK_EQ_INT(m, SK_LORA_MASK_MLP);
	CHECK_EQ_INT(sk_train_targets_parse("q,x", &m), -1);
	CHECK_EQ_INT(sk_train_targets_parse("", &m), -1);
	char buf[64];
	sk_train_targets_format(SK_LORA_MASK_ATTN, buf, sizeof buf);
	CHECK(!strcmp(buf, "q,k,v,o"));
}

TEST(config_json_round_trip)
{
	sk_train_config a, b;
	sk_train_config_default(&a);
	strcpy(a.model, "m.gguf");
	strcpy(a.data, "d.jsonl");
	strcpy(a.run_dir, "runs/x");
	a.seed = 18446744073709551557ULL; /* above INT64_MAX */
	a.targets = SK_LORA_MASK_MLP | (1u << SK_LORA_Q);
	a.dropout = 0.05;
	a.optim = SK_OPTIM_ADAMW;
	a.sched = SK_LR_COSINE;
	a.packing = 1;
	a.eval_frac = 0.1;
	a.quant_nf4 = 0;
	a.max_steps = 77;
	json_t *o = sk_train_config_to_json(&a);
	CHECK(o != NULL);
	sk_train_config_default(&b);
	CHECK_EQ_INT(sk_train_config_from_json(&b, o, "t"), 0);
	CHECK(!strcmp(b.model, "m.gguf") && !strcmp(b.run_dir, "runs/x"));
	CHECK(b.seed == a.seed);
	CHECK_EQ_INT(b.targets, a.targets);
	CHECK(b.dropout == 0.05 && b.optim == SK_OPTIM_ADAMW && b.sched == SK_LR_COSINE && b.packing == 1);
	CHECK(b.eval_frac == 0.1 && b.quant_nf4 == 0 && b.max_steps == 77);
	/* a bad value is refused and leaves the config unchanged */
	json_object_set_new(o, "r", json_integer(-3));
	sk_train_config c = b;
	CHECK_EQ_INT(sk_train_config_from_json(&c, o, "t"), -1);
	CHECK(strstr(sk_error(), "r") != NULL);
	CHECK_EQ_INT(c.r, b.r);
	json_decref(o);
	CHECK_EQ_INT(sk_train_config_from_json(&c, NULL, "t"), -1);
}

TEST(micro_seeds_differ)
{
	uint64_t a = sk_train_micro_seed(3407, 0, 0), b = sk_train_micro_seed(3407, 0, 1),
		 c = sk_train_micro_seed(3407, 1, 0), d = sk_train_micro_seed(3408, 0, 0);
	CHECK(a != b && a != c && a != d && b != c);
	CHECK(a == sk_train_micro_seed(3407, 0, 0));
}

/* The first step's loss is the target-weighted mean over all of its
 * micro-batches (transformers' Trainer), not the mean of per-batch means. */
TEST(step_loss_is_token_weighted)
{
	if (!g_m) {
		SKIP("tiny model fixture missing");
		return;
	}
	char *dir = tmpdir();
	sk_train_config c;
	base_config(&c, dir);
	c.max_steps = 1;
	c.loss_on = SK_LOSS_RESPONSES; /* uneven target counts per batch */
	c.grad_accum = 3;
	watch w = { 0 };
	CHECK_EQ_INT(run_to_end(&c, 0, &w), 0);
	CHECK_EQ_INT(w.nloss, 1);

	/* the same batches, measured directly */
	sk_dataset_opts dopt;
	sk_dataset_opts_init(&dopt);
	dopt.loss_on = SK_LOSS_RESPONSES;
	dopt.max_len = 64;
	sk_dataset *ds = sk_dataset_load(g_data, sk_model_tokenizer(g_m), &dopt);
	CHECK(ds != NULL);
	sk_split sp;
	CHECK_EQ_INT(sk_split_make(ds->n, 0, c.seed, &sp), 0);
	sk_batcher_opts bo;
	sk_batcher_opts_init(&bo);
	bo.batch_size = 2;
	bo.max_len = 64;
	bo.seed = c.seed;
	bo.epochs = 8;
	sk_batcher *b = sk_batcher_new(ds, sp.train, sp.ntrain, &bo);
	double sum = 0, mean_of_means = 0;
	int64_t nt = 0;
	for (int k = 0; k < 3; k++) {
		sk_batch bt;
		CHECK_EQ_INT(sk_batcher_next(b, &bt), 1);
		sk_train_seq seqs[2];
		for (size_t i = 0; i < bt.rows; i++)
			seqs[i] = (sk_train_seq){ bt.ids + i * bt.cols, bt.target + i * bt.cols, (int)bt.len[i] };
		sk_train_opts to = { .grad_scale = 1, .want_grad = 0 };
		double ls;
		int64_t n;
		CHECK_EQ_INT(sk_model_loss_grad(g_m, NULL, seqs, (int)bt.rows, &to, &ls, &n), 0);
		sum += ls;
		nt += n;
		mean_of_means += ls / (double)n / 3;
	}
	/* a fresh adapter has B = 0: the same numbers as the base model */
	CHECK_NEAR(w.first_loss[0], sum / (double)nt, 1e-5 * fabs(sum / (double)nt));
	CHECK(fabs(mean_of_means - sum / (double)nt) > 1e-4);
	sk_batcher_free(b);
	sk_split_free(&sp);
	sk_dataset_free(ds);
	sk_rmtree(dir);
	free(dir);
}

TEST(fifty_steps_drive_the_loss_down)
{
	if (!g_m) {
		SKIP("tiny model fixture missing");
		return;
	}
	char *dir = tmpdir();
	sk_train_config c;
	base_config(&c, dir);
	c.max_steps = 50;
	c.lr = 1e-2;
	c.optim = SK_OPTIM_ADAMW;
	c.sched = SK_LR_CONSTANT;
	c.epochs = 20;
	watch w = { 0 };
	CHECK_EQ_INT(run_to_end(&c, 0, &w), 0);
	CHECK_EQ_INT(w.nloss, 50);
	double first = 0, last = 0;
	for (int i = 0; i < 5; i++) {
		first += w.first_loss[i] / 5;
		last += w.first_loss[45 + i] / 5;
	}
	printf("# loss: first %.4f (mean of steps 1-5 %.4f), last %.4f (mean of steps 46-50 %.4f)\n", w.first_loss[0],
	       first, w.first_loss[49], last);
	CHECK_MSG(last < first - 0.5, "first %g last %g", first, last);
	/* the outputs of a finished run */
	char p[4200];
	snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", dir);
	CHECK(sk_file_exists(p) == 1);
	snprintf(p, sizeof p, "%s/loss.svg", dir);
	CHECK(sk_file_exists(p) == 1);
	snprintf(p, sizeof p, "%s/checkpoint-50/complete", dir);
	CHECK(sk_file_exists(p) == 1);
	/* the adapter loads back for inference and changes the loss as trained */
	snprintf(p, sizeof p, "%s/adapter", dir);
	sk_lora *l = sk_lora_load(p, sk_model_config(g_m));
	CHECK(l != NULL);
	if (l) {
		sk_dataset_opts dopt;
		sk_dataset_opts_init(&dopt);
		dopt.max_len = 64;
		sk_dataset *ds = sk_dataset_load(g_data, sk_model_tokenizer(g_m), &dopt);
		double lb, la;
		int64_t nb, na;
		CHECK_EQ_INT(sk_train_evaluate(g_m, NULL, ds, NULL, 0, 4, &lb, &nb), 0);
		CHECK_EQ_INT(sk_train_evaluate(g_m, l, ds, NULL, 0, 4, &la, &na), 0);
		CHECK_EQ_INT(nb, na);
		CHECK(nb > 0);
		printf("# eval over the data: base %.4f, adapter %.4f\n", lb / (double)nb, la / (double)na);
		CHECK(la / (double)na < lb / (double)nb - 0.5);
		sk_dataset_free(ds);
		sk_lora_free(l);
	}
	sk_rmtree(dir);
	free(dir);
}

/* Stops at awkward places (mid-step, right after a checkpoint), resumes, and
 * compares with a run that was never interrupted. */
TEST(stop_and_resume_equals_uninterrupted)
{
	if (!g_m) {
		SKIP("tiny model fixture missing");
		return;
	}
	char *a = tmpdir(), *b = tmpdir();
	sk_train_config ca, cb;
	base_config(&ca, a);
	ca.max_steps = 12;
	ca.eval_frac = 0.2;
	ca.eval_every = 4;
	ca.save_every = 3;
	ca.keep = 2;
	ca.dropout = 0.1; /* dropout masks must repeat too */
	cb = ca;
	snprintf(cb.run_dir, sizeof cb.run_dir, "%s", b);
	watch w = { 0 };
	CHECK_EQ_INT(run_to_end(&ca, 0, &w), 0);

	/* a fresh start into a directory with checkpoints is refused */
	CHECK(sk_train_start(g_m, &ca, 0, NULL, NULL) == NULL);
	CHECK(strstr(sk_error(), "--resume") != NULL);

	int stops[] = { 3, 8, 13, 2 }; /* micro-steps into each session */
	int sessions = 0;
	for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
		watch wb = { .stop_after_micro = stops[i] };
		CHECK_EQ_INT(run_to_end(&cb, i > 0, &wb), 0);
		sessions++;
	}
	watch wl = { 0 };
	CHECK_EQ_INT(run_to_end(&cb, 1, &wl), 0);
	char *ma = metrics_without_time(a), *mb = metrics_without_time(b);
	CHECK(ma && mb && !strcmp(ma, mb));
	if (ma && mb && strcmp(ma, mb))
		fprintf(stderr, "  uninterrupted:\n%s  resumed:\n%s", ma, mb);
	CHECK(ma && strstr(ma, "\"eval_loss\"") != NULL);
	free(ma);
	free(mb);
	char pa[4200], pb[4200];
	snprintf(pa, sizeof pa, "%s/adapter/adapter_model.safetensors", a);
	snprintf(pb, sizeof pb, "%s/adapter/adapter_model.safetensors", b);
	CHECK(same_file(pa, pb));
	/* resuming a finished run only redoes its outputs */
	watch wd = { 0 };
	CHECK_EQ_INT(run_to_end(&cb, 1, &wd), 0);
	CHECK_EQ_INT(wd.nloss, 0);
	CHECK(same_file(pa, pb));
	sk_rmtree(a);
	sk_rmtree(b);
	free(a);
	free(b);
}

/* --merge-tokens computes consecutive micro-batches of a step in one
 * forward and backward: the same gradient sum, scaled by the same 1 / the
 * step's targets, so the same losses step by step up to the order of
 * summation, in fewer passes. With dropout (a seed a micro-batch) nothing is
 * merged and the run is the same to the byte. On the CPU the default (-1, the
 * backend's) merges nothing. */
TEST(merged_micro_batches_equal_separate)
{
	if (!g_m) {
		SKIP("tiny model fixture missing");
		return;
	}
	const int64_t budgets[] = { 1000000, 150 }; /* a whole step a pass; some pairs */
	char *a = tmpdir();
	sk_train_config ca;
	base_config(&ca, a);
	ca.max_steps = 6;
	ca.grad_accum = 4;
	ca.merge_tokens = -1;
	watch wa = { 0 };
	CHECK_EQ_INT(run_to_end(&ca, 0, &wa), 0);
	CHECK_EQ_INT(wa.nloss, 6);
	CHECK_EQ_INT(wa.micro_seen, 24);
	for (size_t k = 0; k < sizeof budgets / sizeof *budgets; k++) {
		char *b = tmpdir();
		sk_train_config cb = ca;
		snprintf(cb.run_dir, sizeof cb.run_dir, "%s", b);
		cb.merge_tokens = budgets[k];
		watch wb = { 0 };
		CHECK_EQ_INT(run_to_end(&cb, 0, &wb), 0);
		CHECK_EQ_INT(wb.nloss, 6);
		/* fewer passes: a whole step each with the large budget */
		CHECK(wb.micro_seen < wa.micro_seen);
		if (k == 0)
			CHECK_EQ_INT(wb.micro_seen, 6);
		double worst = 0;
		for (int i = 0; i < 6 && i < wb.nloss; i++) {
			double d = fabs(wb.first_loss[i] - wa.first_loss[i]) / fabs(wa.first_loss[i]);
			worst = d > worst ? d : worst;
		}
		printf("# merged within %lld tokens: %d passes for 24 micro-batches, step losses within %.2g\n",
		       (long long)budgets[k], wb.micro_seen, worst);
		CHECK(worst < 1e-5);
		sk_rmtree(b);
		free(b);
	}
	/* with dropout nothing merges: the same metrics to the byte */
	char *c = tmpdir(), *d = tmpdir();
	sk_train_config cc = ca, cd;
	cc.dropout = 0.1;
	cc.merge_tokens = 0;
	snprintf(cc.run_dir, sizeof cc.run_dir, "%s", c);
	cd = cc;
	cd.merge_tokens = 1000000;
	snprintf(cd.run_dir, sizeof cd.run_dir, "%s", d);
	watch wc = { 0 }, wd = { 0 };
	CHECK_EQ_INT(run_to_end(&cc, 0, &wc), 0);
	CHECK_EQ_INT(run_to_end(&cd, 0, &wd), 0);
	CHECK_EQ_INT(wd.micro_seen, 24);
	char *mc = metrics_without_time(c), *md = metrics_without_time(d);
	CHECK(mc && md && !strcmp(mc, md));
	free(mc);
	free(md);
	sk_rmtree(a);
	sk_rmtree(c);
	sk_rmtree(d);
	free(a);
	free(c);
	free(d);
}

/* A checkpoint directory without its marker (a save cut short) and a
 * leftover temporary directory are passed over on resume. */
/* The passes of a step: as few as the budget allows, the largest as small
 * as that number allows, in order, every micro-batch in exactly one. */
static void plan_case(const size_t *t, int n, size_t budget, int want_passes, const int *want_group)
{
	int group[8] = { 0 };
	int k = sk_pass_plan(t, n, budget, group);
	CHECK_EQ_INT(k, want_passes);
	for (int g = 0; g < k && g < want_passes; g++)
		CHECK_EQ_INT(group[g], want_group[g]);
}

TEST(pass_plan_balances)
{
	const size_t even[4] = { 640, 640, 640, 640 };
	plan_case(even, 4, 2048, 2, (const int[]){ 2, 2 });  /* not 3 + 1 */
	plan_case(even, 4, 0, 4, (const int[]){ 1, 1, 1, 1 }); /* no merging */
	plan_case(even, 4, 100000, 1, (const int[]){ 4 });    /* a whole step */
	plan_case(even, 4, 600, 4, (const int[]){ 1, 1, 1, 1 }); /* each over the budget: alone */
	const size_t mixed[4] = { 1000, 100, 100, 1000 };
	plan_case(mixed, 4, 1300, 2, (const int[]){ 2, 2 }); /* 1,100 and 1,100, not 1,200 and 1,000 */
	const size_t odd[5] = { 300, 300, 300, 300, 300 };
	plan_case(odd, 5, 1000, 2, (const int[]){ 3, 2 }); /* 900 and 600: two passes either way */
	plan_case(odd, 1, 1000, 1, (const int[]){ 1 });
	CHECK_EQ_INT(sk_pass_plan(odd, 0, 1000, NULL), 0);
}

TEST(resume_ignores_half_written_checkpoint)
{
	if (!g_m) {
		SKIP("tiny model fixture missing");
		return;
	}
	char *a = tmpdir(), *b = tmpdir();
	sk_train_config ca, cb;
	base_config(&ca, a);
	ca.max_steps = 6;
	ca.save_every = 2;
	cb = ca;
	snprintf(cb.run_dir, sizeof cb.run_dir, "%s", b);
	watch w = { 0 };
	CHECK_EQ_INT(run_to_end(&ca, 0, &w), 0);
	watch wb = { .stop_after_micro = 9 }; /* step 5 under way: checkpoint-4 */
	CHECK_EQ_INT(run_to_end(&cb, 0, &wb), 0);
	/* step 5's save "interrupted": copy checkpoint-4 as 5, drop the marker,
	 * garble its state */
	char cmd[9000];
	snprintf(cmd, sizeof cmd,
		 "cp -r %s/checkpoint-4 %s/checkpoint-5 && rm %s/checkpoint-5/complete && "
		 "cp -r %s/checkpoint-4 %s/.checkpoint-6.tmp-123 && echo '{' > %s/checkpoint-5/trainer_state.json",
		 b, b, b, b, b, b);
	CHECK_EQ_INT(system(cmd), 0);
	watch wl = { 0 };
	CHECK_EQ_INT(run_to_end(&cb, 1, &wl), 0);
	CHECK_EQ_INT(wl.nloss, 2); /* steps 5 and 6 redone */
	char *ma = metrics_without_time(a), *mb = metrics_without_time(b);
	CHECK(ma && mb && !strcmp(ma, mb));
	free(ma);
	free(mb);
	char pa[4200], pb[4200];
	snprintf(pa, sizeof pa, "%s/adapter/adapter_model.safetensors", a);
	snprintf(pb, sizeof pb, "%s/adapter/adapter_model.safetensors", b);
	CHECK(same_file(pa, pb));
	sk_rmtree(a);
	sk_rmtree(b);
	free(a);
	free(b);
}

/* The head's vocabulary chunks are whole multiples of 256 columns for any
 * number of rows (the GPU's bf16 products need 16-byte aligned rows), and
 * the whole vocabulary when it is smaller than a chunk. */
TEST(loss_chunks_are_aligned)
{
	const int64_t rows[] = { 1, 638, 1022, 1023, 2047, 4097, 20000 };
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
		sk_arena a;
		sk_arena_init_measure(&a);
		sk_loss_ws w;
		sk_loss_plan(&a, rows[i], 262144, &w);
		CHECK(w.cw >= 256 && w.cw % 256 == 0);
		CHECK(w.cw * rows[i] <= (int64_t)1 << 22 || w.cw == 256);
		sk_arena_init_measure(&a);
		sk_loss_plan(&a, rows[i], 200, &w);
		CHECK(w.cw == 200);
	}
}

TEST(bad_inputs_are_errors)
{
	if (!g_m) {
		SKIP("tiny model fixture missing");
		return;
	}
	char *dir = tmpdir();
	sk_train_config c;
	base_config(&c, dir);
	char bad[4096];
	snprintf(c.data, sizeof c.data, "%s", path_of("tests/fixtures/train/bad.jsonl", bad));
	CHECK(sk_train_start(g_m, &c, 0, NULL, NULL) == NULL);
	CHECK(strstr(sk_error(), "bad.jsonl") != NULL);
	snprintf(c.data, sizeof c.data, "%s/missing.jsonl", dir);
	CHECK(sk_train_start(g_m, &c, 0, NULL, NULL) == NULL);
	CHECK(strstr(sk_error(), "missing.jsonl") != NULL);
	base_config(&c, dir);
	c.packing = 1;
	c.max_len = 0;
	CHECK(sk_train_start(g_m, &c, 0, NULL, NULL) == NULL);
	CHECK(strstr(sk_error(), "--packing") != NULL);
	sk_rmtree(dir);
	free(dir);
}

int main(void)
{
	path_of("tests/fixtures/hf/tiny-gemma3n", g_model);
	path_of("tests/fixtures/train/tiny.jsonl", g_data);
	sk_model_opts mo = { .device = SK_DEVICE_CPU, .quant_nf4 = 1, .threads = 1 };
	g_m = sk_model_load(g_model, &mo);
	if (!g_m)
		fprintf(stderr, "# %s\n", sk_error());
	RUN(config_recipes_and_targets);
	RUN(config_json_round_trip);
	RUN(micro_seeds_differ);
	RUN(step_loss_is_token_weighted);
	RUN(fifty_steps_drive_the_loss_down);
	RUN(stop_and_resume_equals_uninterrupted);
	RUN(merged_micro_batches_equal_separate);
	RUN(pass_plan_balances);
	RUN(resume_ignores_half_written_checkpoint);
	RUN(loss_chunks_are_aligned);
	RUN(bad_inputs_are_errors);
	sk_model_free(g_m);
	TEST_EXIT();
}
