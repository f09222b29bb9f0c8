/* The engine thread's bridge to the training loop (engine/train/train.h), and
 * the replay of a run's metrics.jsonl as step events (to look at a past
 * run). SK_ECMD_TRAIN_START creates the run in e->trainer;
 * sk_engine_train_tick runs one micro-step per call (the engine loop calls
 * it only while no command waits, so chat comes first); the run's events
 * become SK_EV_TRAIN_STEP / SK_EV_EVAL / SK_EV_LOG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/train/metrics.h"
#include "engine/train/train.h"

/* The run and what the engine needs to say about it. */
struct sk_engine_trainer {
	sk_train_run *r;
	char dir[SK_TRAIN_PATH_MAX];
	char data[SK_TRAIN_PATH_MAX];
};

/* At most this many examples in an evaluation of a whole file from the
 * TUI: a quick look that keeps chat responsive (sokhan eval does all). */
#define EVAL_MAX_EXAMPLES 64

int sk_engine_can_train(void)
{
	return 1;
}

static void state_event(sk_engine *e, int state, const char *note)
{
	sk_engine_event ev = { .type = SK_EV_TRAIN_STATE, .session = -1, .state = state };
	ev.text = note ? strdup(note) : NULL;
	sk_engine_emit(e, &ev);
}

/* The run's events become engine events (same fields as metrics.jsonl). */
static void on_train_event(void *ctx, const sk_train_event *tv)
{
	sk_engine *e = ctx;
	sk_engine_event ev = { .session = -1 };
	switch (tv->kind) {
	case SK_TRAIN_EV_LOG: sk_engine_log(e, SK_LOG_INFO, "%s", tv->text ? tv->text : ""); return;
	case SK_TRAIN_EV_WARN: sk_engine_log(e, SK_LOG_WARN, "%s", tv->text ? tv->text : ""); return;
	case SK_TRAIN_EV_CHECKPOINT:
		sk_engine_log(e, SK_LOG_INFO, _("checkpoint %s"), tv->text ? tv->text : "");
		return;
	case SK_TRAIN_EV_MICRO: return;
	case SK_TRAIN_EV_DONE:
		e->train_state = SK_TRAIN_DONE;
		state_event(e, SK_TRAIN_DONE, tv->stopped ? _("stopped") : _("finished"));
		return;
	case SK_TRAIN_EV_STEP: ev.type = SK_EV_TRAIN_STEP; break;
	case SK_TRAIN_EV_EVAL: ev.type = SK_EV_EVAL; break;
	}
	ev.step.step = tv->step;
	ev.step.total_steps = tv->total_steps;
	ev.step.epoch = tv->epoch;
	ev.step.elapsed_s = tv->elapsed_s;
	ev.step.eta_s = tv->eta_s;
	ev.step.loss = tv->loss;
	ev.step.lr = tv->lr;
	ev.step.grad_norm = tv->grad_norm;
	ev.step.tokens_per_s = tv->tokens_per_s;
	ev.step.tokens = tv->tokens;
	ev.step.eval_loss = tv->kind == SK_TRAIN_EV_EVAL ? tv->eval_loss : NAN;
	sk_engine_emit(e, &ev);
	if (tv->kind == SK_TRAIN_EV_STEP)
		sk_engine_memory(e);
}

static void set_state(sk_engine *e, int state, const char *note)
{
	/* Under the lock: the engine loop's wait looks at it. */
	pthread_mutex_lock(&e->mu);
	e->train_state = state;
	pthread_mutex_unlock(&e->mu);
	state_event(e, state, note);
}

static void train_start(sk_engine *e, const sk_engine_train *t)
{
	if (e->trainer) {
		sk_engine_error(e, -1, _("a training run is already going: stop it first"));
		return;
	}
	if (!e->model) {
		sk_engine_error(e, -1, _("load a model before training"));
		return;
	}
	sk_train_config c;
	if (t->config) {
		c = *t->config;
		snprintf(c.model, sizeof c.model, "%s", e->model_path ? e->model_path : "");
	} else if (!t->data) {
		sk_engine_error(e, -1, _("training needs a data file"));
		return;
	} else {
		sk_train_config_default(&c);

		if (t->recipe && *t->recipe) {
			int quick = !strcmp(t->recipe, "quick");
			if (sk_train_config_recipe(&c, quick ? "seed" : t->recipe) != 0) {
				sk_engine_error(e, -1, NULL);
				return;
			}
			if (quick) {
				/* a first look: few steps over short examples */
				c.max_steps = 30;
				c.epochs = 100000;
				c.max_len = 256;
				c.warmup = 3;
			}
		}
		if (t->max_len > 0)
			c.max_len = t->max_len;
		if (t->eval_frac > 0 && t->eval_frac < 1)
			c.eval_frac = t->eval_frac;
		snprintf(c.model, sizeof c.model, "%s", e->model_path ? e->model_path : "");
		snprintf(c.data, sizeof c.data, "%s", t->data);
		snprintf(c.run_dir, sizeof c.run_dir, "%s", t->out_dir ? t->out_dir : "runs/tui");
		if (t->rank > 0)
			c.r = t->rank;
		if (t->alpha > 0)
			c.alpha = t->alpha;
		if (t->lr > 0)
			c.lr = t->lr;
		if (t->batch > 0)
			c.batch = t->batch;
		if (t->grad_accum > 0)
			c.grad_accum = t->grad_accum;
		if (t->steps > 0) {
			/* Steps decide: enough epochs (each has at least one step), cut by max_steps. */
			c.max_steps = t->steps;
			c.epochs = t->steps < 100000 ? t->steps : 100000;
		}
		if (t->eval_every > 0)
			c.eval_every = t->eval_every;
	}
	c.threads = e->opts.threads;
	c.quant_nf4 = e->opts.quant_nf4;
	if (sk_train_config_check(&c) != 0) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	struct sk_engine_trainer *tr = calloc(1, sizeof *tr);
	if (!tr) {
		sk_engine_error(e, -1, _("engine: out of memory"));
		return;
	}
	snprintf(tr->dir, sizeof tr->dir, "%s", c.run_dir);
	snprintf(tr->data, sizeof tr->data, "%s", c.data);
	tr->r = sk_train_start(e->model, &c, 1, on_train_event, e);
	if (!tr->r) {
		free(tr);
		sk_engine_error(e, -1, NULL);
		return;
	}
	e->trainer = tr;
	set_state(e, SK_TRAIN_RUNNING, c.run_dir);
	/* Chat and Compare now talk to the adapter as it trains. */
	sk_engine_adapter_event(e);
	sk_engine_memory(e);
}

/* Mean loss of the first examples of a dataset file, with the base model
 * and with the adapter in use; an SK_EV_EVAL naming the file. */
static void eval_file(sk_engine *e, const char *path)
{
	const sk_tokenizer *tok = sk_model_tokenizer(e->model);
	if (!tok) {
		sk_engine_error(e, -1, _("the model has no tokenizer"));
		return;
	}
	sk_dataset_opts o;
	sk_dataset_opts_init(&o);
	o.max_len = 1024;
	sk_dataset *ds = sk_dataset_load(path, tok, &o);
	if (!ds) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	size_t n = ds->n < EVAL_MAX_EXAMPLES ? ds->n : EVAL_MAX_EXAMPLES;
	size_t *sub = malloc((n ? n : 1) * sizeof *sub);
	if (!sub) {
		sk_dataset_free(ds);
		sk_engine_error(e, -1, _("engine: out of memory"));
		return;
	}
	for (size_t i = 0; i < n; i++)
		sub[i] = i;
	sk_engine_log(e, SK_LOG_INFO, _("evaluating %zu of the %zu examples of %s ..."), n, ds->n, path);
	sk_lora *ad = (sk_lora *)sk_engine_adapter(e);
	double base = NAN, adl = NAN, ls;
	int64_t nt = 0;
	int rc = sk_train_evaluate(e->model, NULL, ds, sub, n, 1, &ls, &nt);
	if (rc == 0 && nt > 0)
		base = ls / (double)nt;
	if (rc == 0 && ad) {
		rc = sk_train_evaluate(e->model, ad, ds, sub, n, 1, &ls, &nt);
		if (rc == 0 && nt > 0)
			adl = ls / (double)nt;
	}
	free(sub);
	sk_dataset_free(ds);
	if (rc != 0) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	sk_engine_event ev = { .type = SK_EV_EVAL, .session = -1 };
	ev.step.loss = base;
	ev.step.eval_loss = ad ? adl : base;
	ev.step.tokens = nt;
	ev.step.step = e->trainer ? sk_train_steps_done(e->trainer->r) : 0;
	ev.text = strdup(path);
	sk_engine_emit(e, &ev);
	if (ad)
		sk_engine_log(e, SK_LOG_INFO, _("evaluation of %s: loss %.4f with the adapter, %.4f without (%lld tokens)"),
		              path, adl, base, (long long)nt);
	else
		sk_engine_log(e, SK_LOG_INFO, _("evaluation of %s: loss %.4f (%lld tokens)"), path, base, (long long)nt);
	sk_engine_memory(e);
}

static void eval_cmd(sk_engine *e, const char *path)
{
	if (!e->model) {
		sk_engine_error(e, -1, _("load a model before evaluating"));
		return;
	}
	if (e->trainer) {
		int rc = sk_train_evaluate_now(e->trainer->r);
		if (rc < 0)
			sk_engine_error(e, -1, NULL);
		if (rc != 1)
			return;
		/* Nothing held out: the run's own data file. */
		if (!path)
			path = e->trainer->data;
	}
	if (!path) {
		sk_engine_error(e, -1, _("evaluate what? Give a dataset file"));
		return;
	}
	eval_file(e, path);
}

void sk_engine_train_cmd(sk_engine *e, const sk_qcmd *q)
{
	sk_train_run *r = e->trainer ? e->trainer->r : NULL;
	switch (q->cmd.type) {
	case SK_ECMD_TRAIN_START: train_start(e, &q->cmd.train); break;
	case SK_ECMD_TRAIN_PAUSE:
		if (r && e->train_state == SK_TRAIN_RUNNING)
			set_state(e, SK_TRAIN_PAUSED, NULL);
		break;
	case SK_ECMD_TRAIN_RESUME:
		if (r && e->train_state == SK_TRAIN_PAUSED)
			set_state(e, SK_TRAIN_RUNNING, NULL);
		break;
	case SK_ECMD_TRAIN_STOP:
		if (r) {
			/* The run writes a checkpoint of its last complete step. */
			sk_train_request_stop(r);
			if (e->train_state == SK_TRAIN_PAUSED)
				set_state(e, SK_TRAIN_RUNNING, _("stopping"));
		}
		break;
	default: eval_cmd(e, q->path); break;
	}
}

int sk_engine_train_tick(sk_engine *e)
{
	sk_train_run *r = e->trainer ? e->trainer->r : NULL;
	if (!r && e->train_state == SK_TRAIN_RUNNING) {
		/* The run was dropped (a new model): nothing to run any more. */
		set_state(e, SK_TRAIN_DONE, _("stopped"));
		return 0;
	}
	if (!r || e->train_state != SK_TRAIN_RUNNING)
		return 0;
	int rc = sk_train_step(r);
	if (rc <= 0) {
		if (rc < 0) {
			sk_engine_error(e, -1, NULL);
			state_event(e, SK_TRAIN_DONE, _("failed"));
		}
		sk_engine_train_free(e);
		pthread_mutex_lock(&e->mu);
		if (e->train_state == SK_TRAIN_RUNNING)
			e->train_state = SK_TRAIN_DONE;
		pthread_mutex_unlock(&e->mu);
		/* The live adapter is gone: the loaded one (if any) is back. */
		if (e->model)
			sk_engine_adapter_event(e);
		sk_engine_memory(e);
	}
	return 1;
}

void sk_engine_train_free(sk_engine *e)
{
	if (!e->trainer)
		return;
	sk_train_free(e->trainer->r);
	free(e->trainer);
	e->trainer = NULL;
}

const sk_lora *sk_engine_train_adapter(const sk_engine *e)
{
	return e->trainer ? sk_train_adapter(e->trainer->r) : NULL;
}

void sk_engine_train_memory(const sk_engine *e, uint64_t *adapter, uint64_t *optimizer)
{
	sk_train_memory(e->trainer ? e->trainer->r : NULL, adapter, optimizer);
}

const char *sk_engine_train_dir(const sk_engine *e)
{
	return e->trainer ? e->trainer->dir : NULL;
}

void sk_engine_replay_metrics(sk_engine *e, const char *path)
{
	if (!path) {
		sk_engine_error(e, -1, _("engine: replay: no path"));
		return;
	}
	char buf[4096];
	if (sk_is_dir(path))
		snprintf(buf, sizeof buf, "%s/%s", path, SK_METRICS_FILE);
	else
		snprintf(buf, sizeof buf, "%s", path);
	sk_metrics_series s;
	memset(&s, 0, sizeof s);
	if (sk_metrics_read(buf, &s) != 0) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	int64_t total = s.n ? s.step[s.n - 1] : 0;
	size_t j = 0;
	for (size_t i = 0; i < s.n; i++) {
		sk_engine_event ev = { .type = SK_EV_TRAIN_STEP, .session = -1 };
		ev.step.step = s.step[i];
		ev.step.total_steps = total;
		ev.step.loss = s.loss[i];
		ev.step.lr = s.lr[i];
		ev.step.grad_norm = s.grad_norm[i];
		ev.step.eval_loss = NAN;
		ev.step.tokens_per_s = NAN;
		ev.step.epoch = NAN;
		ev.step.elapsed_s = NAN;
		ev.step.eta_s = 0;
		sk_engine_emit(e, &ev);
		/* Eval points after the train step of the same number. */
		for (; j < s.neval && s.eval_step[j] <= s.step[i]; j++) {
			sk_engine_event ee = { .type = SK_EV_EVAL, .session = -1 };
			ee.step.step = s.eval_step[j];
			ee.step.total_steps = total;
			ee.step.eval_loss = s.eval_loss[j];
			sk_engine_emit(e, &ee);
		}
	}
	state_event(e, SK_TRAIN_DONE, buf);
	sk_engine_log(e, SK_LOG_INFO, _("%zu training steps and %zu evaluations read from %s"), s.n, s.neval, buf);
	sk_metrics_series_free(&s);
}
