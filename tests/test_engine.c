/* The engine thread on the tiny Gemma 3n: load, generate with streamed
 * tokens, cancel mid-way, base vs adapter in one batch, metrics replay,
 * training with chat between its micro-steps, clean stop. On the CPU by
 * default; SK_TEST_DEVICE=cuda runs it all on the GPU (tests/gpu/check.sh). */
#include <math.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "engine/error.h"
#include "tests/test.h"

#define MODEL "tests/fixtures/hf/tiny-gemma3n"

/* Waits (poll on the fd) for an event of type want; events of other types
 * are handed to keep (may be NULL) or dropped. Returns 1, or 0 after the
 * timeout. */
typedef void (*keep_fn)(void *ctx, const sk_engine_event *ev);
static int wait_for(sk_engine *e, sk_engine_event_type want, int session, sk_engine_event *out, keep_fn keep,
                    void *ctx, int timeout_ms)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		sk_engine_event ev;
		while (sk_engine_poll(e, &ev)) {
			if (ev.type == SK_EV_ERROR)
				fprintf(stderr, "  engine error: %s\n", ev.text ? ev.text : "");
			if (ev.type == want && (session < 0 || ev.session == session)) {
				if (out)
					*out = ev;
				else
					sk_engine_event_free(&ev);
				return 1;
			}
			if (keep)
				keep(ctx, &ev);
			sk_engine_event_free(&ev);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		int left = timeout_ms - (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return 0;
		struct pollfd p = { sk_engine_fd(e), POLLIN, 0 };
		poll(&p, 1, left);
	}
}

typedef struct {
	char text[2][8192];
	int ntok[2];
} streams;

static void collect(void *ctx, const sk_engine_event *ev)
{
	streams *s = ctx;
	if (ev->type == SK_EV_TOKEN && ev->session >= 0 && ev->session < 2 && ev->text) {
		size_t l = strlen(s->text[ev->session]);
		snprintf(s->text[ev->session] + l, sizeof s->text[0] - l, "%s", ev->text);
		s->ntok[ev->session]++;
	}
}

static sk_device test_device(void)
{
	const char *d = getenv("SK_TEST_DEVICE");
	return d && !strcmp(d, "cuda") ? SK_DEVICE_CUDA : SK_DEVICE_CPU;
}

static sk_engine *start_loaded(int delay_us)
{
	sk_engine_opts o = { .device = test_device(), .threads = 1, .token_delay_us = delay_us };
	sk_engine *e = sk_engine_start(&o);
	if (!e)
		return NULL;
	sk_engine_cmd c = { .type = SK_ECMD_LOAD_MODEL, .path = sk_test_path(MODEL) };
	if (sk_engine_submit(e, &c) != 0) {
		sk_engine_stop(e);
		return NULL;
	}
	return e;
}

static const sk_chat_msg conv1[] = { { SK_CHAT_USER, "سلام، حالت چطوره؟" } };

static sk_engine_cmd gen_cmd(int n, int max_new)
{
	sk_engine_cmd c = { .type = SK_ECMD_GENERATE };
	c.gen.n_answers = n;
	c.gen.max_new = max_new;
	sk_sampling_defaults(&c.gen.sampling);
	c.gen.sampling.greedy = 1;
	for (int a = 0; a < n; a++) {
		c.gen.answers[a].session = a;
		c.gen.answers[a].msgs = conv1;
		c.gen.answers[a].n_msgs = 1;
		c.gen.answers[a].adapter_on = a == 1;
	}
	return c;
}

TEST(load_and_info)
{
	sk_engine *e = start_loaded(0);
	CHECK(e != NULL);
	if (!e)
		return;
	sk_engine_event ev;
	CHECK(wait_for(e, SK_EV_MODEL_LOADED, -1, &ev, NULL, NULL, 20000));
	CHECK(ev.info.has_tokenizer);
	CHECK_EQ_INT(ev.info.vocab, 384);
	CHECK_EQ_INT(ev.info.max_ctx, 512);
	CHECK(ev.info.n_layers > 0);
	CHECK(ev.text && strstr(ev.text, "tiny-gemma3n"));
	sk_engine_event_free(&ev);
	sk_engine_cmd m = { .type = SK_ECMD_MEMORY };
	CHECK_EQ_INT(sk_engine_submit(e, &m), 0);
	CHECK(wait_for(e, SK_EV_MEMORY, -1, &ev, NULL, NULL, 5000));
	CHECK(ev.mem[SK_MEM_WEIGHTS] > 1000);
	CHECK(ev.mem[SK_MEM_PROCESS] > 0);
	CHECK_EQ_INT(ev.mem[SK_MEM_ADAPTER], 0);
	sk_engine_stop(e);
}

TEST(generate_streams_tokens)
{
	sk_engine *e = start_loaded(0);
	CHECK(e != NULL);
	if (!e)
		return;
	sk_engine_cmd c = gen_cmd(1, 12);
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	streams s;
	memset(&s, 0, sizeof s);
	sk_engine_event ev;
	CHECK(wait_for(e, SK_EV_GEN_DONE, 0, &ev, collect, &s, 20000));
	CHECK(s.ntok[0] > 0);
	CHECK(strlen(s.text[0]) > 0);
	CHECK(ev.gen.n_generated > 0 && ev.gen.n_generated <= 12);
	CHECK(ev.gen.n_prompt > 5);
	CHECK(ev.gen.decode_tps > 0);
	CHECK(ev.gen.stopped_by != 2);
	/* Greedy: the same request gives the same text. */
	char first[8192];
	snprintf(first, sizeof first, "%s", s.text[0]);
	memset(&s, 0, sizeof s);
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	CHECK(wait_for(e, SK_EV_GEN_DONE, 0, NULL, collect, &s, 20000));
	CHECK(!strcmp(first, s.text[0]));
	sk_engine_stop(e);
}

TEST(cancel_mid_way)
{
	/* 2 ms per token: 400 tokens would take 0.8 s; the cancel comes after
	 * the first token event. */
	sk_engine *e = start_loaded(2000);
	CHECK(e != NULL);
	if (!e)
		return;
	sk_engine_cmd c = gen_cmd(1, 400);
	c.gen.sampling.greedy = 0;
	c.gen.sampling.seed = 7;
	c.gen.sampling.top_k = 0;
	c.gen.sampling.top_p = 1;
	c.gen.sampling.temperature = 1.0f;
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	CHECK(wait_for(e, SK_EV_TOKEN, 0, NULL, NULL, NULL, 20000));
	CHECK_EQ_INT(sk_engine_cancel(e, 0), 0);
	sk_engine_event ev;
	CHECK(wait_for(e, SK_EV_GEN_DONE, 0, &ev, NULL, NULL, 20000));
	CHECK_EQ_INT(ev.gen.stopped_by, 2);
	CHECK_MSG(ev.gen.n_generated < 50, "%d tokens after cancel", ev.gen.n_generated);
	/* A later request runs normally. */
	sk_engine_cmd c2 = gen_cmd(1, 3);
	CHECK_EQ_INT(sk_engine_submit(e, &c2), 0);
	CHECK(wait_for(e, SK_EV_GEN_DONE, 0, &ev, NULL, NULL, 20000));
	CHECK(ev.gen.stopped_by != 2);
	CHECK(ev.gen.n_generated > 0);
	sk_engine_stop(e);
}

TEST(compare_base_vs_adapter)
{
	sk_engine *e = start_loaded(0);
	CHECK(e != NULL);
	if (!e)
		return;
	sk_engine_cmd a = { .type = SK_ECMD_LOAD_ADAPTER, .path = sk_test_path(MODEL "/ref/adapter_all") };
	CHECK_EQ_INT(sk_engine_submit(e, &a), 0);
	sk_engine_event ev;
	CHECK(wait_for(e, SK_EV_ADAPTER_LOADED, -1, &ev, NULL, NULL, 20000));
	CHECK(ev.info.adapter_rank > 0);
	CHECK(ev.info.adapter_pairs > 0);
	sk_engine_event_free(&ev);
	sk_engine_cmd c = gen_cmd(2, 16);
	c.gen.sampling.greedy = 0;
	c.gen.sampling.seed = 1234;
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	streams s;
	memset(&s, 0, sizeof s);
	int done = 0;
	for (int k = 0; k < 2; k++) {
		if (wait_for(e, SK_EV_GEN_DONE, -1, &ev, collect, &s, 20000))
			done++;
	}
	CHECK_EQ_INT(done, 2);
	CHECK(s.ntok[0] > 0 && s.ntok[1] > 0);
	CHECK_MSG(strcmp(s.text[0], s.text[1]) != 0, "base and adapter gave the same text: %s", s.text[0]);
	/* Batching does not change an answer: session 1 alone (adapter on,
	 * same seed) gives the same text as in the pair. */
	sk_engine_cmd one = gen_cmd(2, 16);
	one.gen.n_answers = 1;
	one.gen.answers[0] = c.gen.answers[1];
	one.gen.sampling = c.gen.sampling;
	streams s1;
	memset(&s1, 0, sizeof s1);
	CHECK_EQ_INT(sk_engine_submit(e, &one), 0);
	CHECK(wait_for(e, SK_EV_GEN_DONE, 1, NULL, collect, &s1, 20000));
	CHECK_MSG(!strcmp(s1.text[1], s.text[1]), "alone: %s / in the pair: %s", s1.text[1], s.text[1]);
	sk_engine_cmd m = { .type = SK_ECMD_MEMORY };
	sk_engine_submit(e, &m);
	CHECK(wait_for(e, SK_EV_MEMORY, -1, &ev, NULL, NULL, 5000));
	CHECK(ev.mem[SK_MEM_ADAPTER] > 0);
	sk_engine_cmd u = { .type = SK_ECMD_UNLOAD_ADAPTER };
	sk_engine_submit(e, &u);
	CHECK(wait_for(e, SK_EV_ADAPTER_LOADED, -1, &ev, NULL, NULL, 5000));
	CHECK_EQ_INT(ev.info.adapter_rank, 0);
	CHECK(ev.text == NULL);
	sk_engine_stop(e);
}

TEST(errors_are_events)
{
	sk_engine_opts o = { .device = SK_DEVICE_CPU, .threads = 1 };
	sk_engine *e = sk_engine_start(&o);
	CHECK(e != NULL);
	if (!e)
		return;
	/* No model yet. */
	sk_engine_cmd c = gen_cmd(1, 4);
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	sk_engine_event ev;
	CHECK(wait_for(e, SK_EV_ERROR, 0, &ev, NULL, NULL, 5000));
	CHECK(ev.text && strstr(ev.text, "no model"));
	sk_engine_event_free(&ev);
	sk_engine_cmd l = { .type = SK_ECMD_LOAD_MODEL, .path = "/nonexistent/model" };
	CHECK_EQ_INT(sk_engine_submit(e, &l), 0);
	CHECK(wait_for(e, SK_EV_ERROR, -1, &ev, NULL, NULL, 5000));
	CHECK(ev.text && strstr(ev.text, "/nonexistent/model"));
	sk_engine_event_free(&ev);
	/* A malformed command is refused at once. */
	sk_engine_cmd bad = { .type = SK_ECMD_GENERATE };
	CHECK_EQ_INT(sk_engine_submit(e, &bad), -1);
	/* Training without a model is an error event (or "not available"). */
	sk_engine_cmd t = { .type = SK_ECMD_TRAIN_START };
	t.train.data = "x.jsonl";
	CHECK_EQ_INT(sk_engine_submit(e, &t), 0);
	if (sk_engine_can_train()) {
		CHECK(wait_for(e, SK_EV_ERROR, -1, &ev, NULL, NULL, 5000));
		CHECK(ev.text && strstr(ev.text, "model"));
	} else {
		CHECK(wait_for(e, SK_EV_TRAIN_STATE, -1, &ev, NULL, NULL, 5000));
		CHECK_EQ_INT(ev.state, SK_TRAIN_UNAVAILABLE);
	}
	sk_engine_event_free(&ev);
	sk_engine_stop(e);
}

static int nsteps, nevals;
static double last_loss;
static void count_steps(void *ctx, const sk_engine_event *ev)
{
	(void)ctx;
	if (ev->type == SK_EV_TRAIN_STEP) {
		nsteps++;
		last_loss = ev->step.loss;
	}
	if (ev->type == SK_EV_EVAL)
		nevals++;
}

TEST(replay_metrics)
{
	sk_engine *e = sk_engine_start(NULL);
	CHECK(e != NULL);
	if (!e)
		return;
	sk_engine_cmd c = { .type = SK_ECMD_REPLAY_METRICS, .path = sk_test_path("tests/fixtures/train/metrics.jsonl") };
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	sk_engine_event ev;
	nsteps = nevals = 0;
	CHECK(wait_for(e, SK_EV_TRAIN_STATE, -1, &ev, count_steps, NULL, 5000));
	CHECK_EQ_INT(ev.state, SK_TRAIN_DONE);
	sk_engine_event_free(&ev);
	CHECK(nsteps > 50);
	CHECK(nevals > 0);
	CHECK(isfinite(last_loss) && last_loss > 0);
	sk_engine_stop(e);
}

static int64_t max_step;
static int gen_done_during;
static void train_watch(void *ctx, const sk_engine_event *ev)
{
	(void)ctx;
	if (ev->type == SK_EV_TRAIN_STEP) {
		nsteps++;
		CHECK(ev->step.step > max_step);
		max_step = ev->step.step;
		CHECK(isfinite(ev->step.loss) && ev->step.loss > 0);
	}
	if (ev->type == SK_EV_GEN_DONE)
		gen_done_during++;
}

TEST(train_short_run)
{
	if (!sk_engine_can_train()) {
		SKIP("the training loop is not linked in");
		return;
	}
	sk_engine *e = start_loaded(0);
	CHECK(e != NULL);
	if (!e)
		return;
	char dir[] = "/tmp/sk_engine_train_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char data[4096];
	snprintf(data, sizeof data, "%s", sk_test_path("tests/fixtures/train/tiny.jsonl"));
	sk_engine_cmd c = { .type = SK_ECMD_TRAIN_START };
	c.train.data = data;
	c.train.out_dir = dir;
	c.train.steps = 3;
	c.train.rank = 4;
	c.train.batch = 2;
	c.train.grad_accum = 2;
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	/* A chat request while the run goes: served between micro-steps. */
	sk_engine_cmd g = gen_cmd(1, 4);
	CHECK_EQ_INT(sk_engine_submit(e, &g), 0);
	nsteps = 0;
	max_step = 0;
	gen_done_during = 0;
	sk_engine_event ev;
	int done = 0;
	for (int k = 0; k < 4 && !done; k++) {
		if (!wait_for(e, SK_EV_TRAIN_STATE, -1, &ev, train_watch, NULL, 60000))
			break;
		done = ev.state == SK_TRAIN_DONE;
		sk_engine_event_free(&ev);
	}
	CHECK(done);
	CHECK_EQ_INT(nsteps, 3);
	CHECK_EQ_INT(max_step, 3);
	CHECK_EQ_INT(gen_done_during, 1);
	sk_engine_stop(e);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "test -f %s/metrics.jsonl && rm -rf %s", dir, dir);
	CHECK_EQ_INT(system(cmd), 0);
}

/* While a run trains, "adapter on" is its live adapter: a compare request
 * between micro-steps differs from the base; e evaluates the held-out
 * split; the memory event has every category the run and model report. */
TEST(train_live_adapter)
{
	if (!sk_engine_can_train()) {
		SKIP("the training loop is not linked in");
		return;
	}
	sk_engine *e = start_loaded(0);
	CHECK(e != NULL);
	if (!e)
		return;
	char dir[] = "/tmp/sk_engine_live_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char data[4096];
	snprintf(data, sizeof data, "%s", sk_test_path("tests/fixtures/train/tiny.jsonl"));
	sk_engine_cmd c = { .type = SK_ECMD_TRAIN_START };
	c.train.data = data;
	c.train.out_dir = dir;
	c.train.recipe = "quick";
	c.train.steps = 200;
	c.train.rank = 4;
	c.train.lr = 1e-2f;
	c.train.eval_frac = 0.25f;
	CHECK_EQ_INT(sk_engine_submit(e, &c), 0);
	sk_engine_event ev;
	CHECK(wait_for(e, SK_EV_ADAPTER_LOADED, -1, &ev, NULL, NULL, 60000));
	CHECK_EQ_INT(ev.info.adapter_live, 1);
	CHECK_EQ_INT(ev.info.adapter_rank, 4);
	CHECK(ev.text && !strcmp(ev.text, dir));
	sk_engine_event_free(&ev);
	/* Some steps, then pause: the adapter has moved away from B = 0. */
	int steps = 0;
	while (steps < 5 && wait_for(e, SK_EV_TRAIN_STEP, -1, &ev, NULL, NULL, 60000)) {
		steps = (int)ev.step.step;
		sk_engine_event_free(&ev);
	}
	CHECK(steps >= 5);
	sk_engine_cmd p = { .type = SK_ECMD_TRAIN_PAUSE };
	CHECK_EQ_INT(sk_engine_submit(e, &p), 0);
	sk_engine_cmd g = gen_cmd(2, 12);
	CHECK_EQ_INT(sk_engine_submit(e, &g), 0);
	streams s;
	memset(&s, 0, sizeof s);
	int done = 0;
	for (int k = 0; k < 2; k++)
		done += wait_for(e, SK_EV_GEN_DONE, -1, NULL, collect, &s, 20000);
	CHECK_EQ_INT(done, 2);
	CHECK(s.ntok[0] > 0 && s.ntok[1] > 0);
	CHECK_MSG(strcmp(s.text[0], s.text[1]) != 0, "base and live adapter gave the same text: %s", s.text[0]);
	/* e during the run: the held-out split, at the current step. */
	sk_engine_cmd ec = { .type = SK_ECMD_EVAL };
	CHECK_EQ_INT(sk_engine_submit(e, &ec), 0);
	CHECK(wait_for(e, SK_EV_EVAL, -1, &ev, NULL, NULL, 20000));
	CHECK(ev.text == NULL);
	CHECK(isfinite(ev.step.eval_loss) && ev.step.eval_loss > 0);
	sk_engine_event_free(&ev);
	sk_engine_cmd m = { .type = SK_ECMD_MEMORY };
	CHECK_EQ_INT(sk_engine_submit(e, &m), 0);
	CHECK(wait_for(e, SK_EV_MEMORY, -1, &ev, NULL, NULL, 5000));
	/* every category of the run is there; the device's are 0 on the CPU,
	 * and on the GPU the per-layer table sits in host memory */
	int gpu = test_device() == SK_DEVICE_CUDA;
	for (int i = 0; i < SK_MEM_NCAT; i++)
		if (!gpu && (i == SK_MEM_HOST_TABLE || i == SK_MEM_DEVICE_USED || i == SK_MEM_DEVICE_TOTAL))
			CHECK_MSG(ev.mem[i] == 0, "memory category %s is not 0 on the CPU", sk_engine_mem_name(i));
		else
			CHECK_MSG(ev.mem[i] > 0, "memory category %s is 0", sk_engine_mem_name(i));
	if (gpu)
		CHECK(ev.mem[SK_MEM_DEVICE_USED] <= ev.mem[SK_MEM_DEVICE_TOTAL]);
	/* The live adapter: values and gradients of rank-4 factors. */
	CHECK(ev.mem[SK_MEM_OPTIMIZER] > 0 && ev.mem[SK_MEM_ADAPTER] > 0);
	sk_engine_cmd x = { .type = SK_ECMD_TRAIN_STOP };
	CHECK_EQ_INT(sk_engine_submit(e, &x), 0);
	/* The run ends: the live adapter is gone (none was loaded). */
	CHECK(wait_for(e, SK_EV_ADAPTER_LOADED, -1, &ev, NULL, NULL, 60000));
	CHECK_EQ_INT(ev.info.adapter_live, 0);
	CHECK_EQ_INT(ev.info.adapter_rank, 0);
	sk_engine_event_free(&ev);
	/* e without a run: a dataset file, with the base model. */
	sk_engine_cmd ef = { .type = SK_ECMD_EVAL, .path = data };
	CHECK_EQ_INT(sk_engine_submit(e, &ef), 0);
	CHECK(wait_for(e, SK_EV_EVAL, -1, &ev, NULL, NULL, 20000));
	CHECK(ev.text && !strcmp(ev.text, data));
	CHECK(isfinite(ev.step.loss) && ev.step.loss > 0 && ev.step.loss == ev.step.eval_loss);
	sk_engine_event_free(&ev);
	sk_engine_stop(e);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

TEST(stop_while_generating)
{
	/* Stop with a long generation running and events never polled: no
	 * hang, no leak (ASan). */
	sk_engine *e = start_loaded(1000);
	CHECK(e != NULL);
	if (!e)
		return;
	sk_engine_cmd c = gen_cmd(2, 400);
	sk_engine_submit(e, &c);
	sk_engine_submit(e, &c);
	CHECK(wait_for(e, SK_EV_TOKEN, -1, NULL, NULL, NULL, 20000));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sk_engine_stop(e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
	CHECK_MSG(dt < 1.0, "stop took %.3f s", dt);
}

int main(void)
{
	RUN(load_and_info);
	RUN(generate_streams_tokens);
	RUN(cancel_mid_way);
	RUN(compare_base_vs_adapter);
	RUN(errors_are_events);
	RUN(replay_metrics);
	RUN(train_short_run);
	RUN(train_live_adapter);
	RUN(stop_while_generating);
	TEST_EXIT();
}
