/* The engine thread's bridge to the training loop (engine/train.h), and
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
#include "engine/files.h"
#include "engine/i18n.h"
#include "engine/metrics.h"
#include "engine/train.h"

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
	if (!t->data) {
		sk_engine_error(e, -1, _("training needs a data file"));
		return;
	}
	sk_train_config c;
	sk_train_config_default(&c);
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
	c.threads = e->opts.threads;
	c.quant_nf4 = e->opts.quant_nf4;
	if (sk_train_config_check(&c) != 0) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	sk_train_run *r = sk_train_start(e->model, &c, 1, on_train_event, e);
	if (!r) {
		sk_engine_error(e, -1, NULL);
		return;
	}
	e->trainer = (struct sk_engine_trainer *)r;
	set_state(e, SK_TRAIN_RUNNING, c.run_dir);
}

void sk_engine_train_cmd(sk_engine *e, const sk_qcmd *q)
{
	sk_train_run *r = (sk_train_run *)e->trainer;
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
	default:
		sk_engine_error(e, -1, _("evaluation from the TUI is not available yet (sokhan eval)"));
		break;
	}
}

int sk_engine_train_tick(sk_engine *e)
{
	sk_train_run *r = (sk_train_run *)e->trainer;
	if (!r || e->train_state != SK_TRAIN_RUNNING)
		return 0;
	int rc = sk_train_step(r);
	if (rc <= 0) {
		if (rc < 0)
			sk_engine_error(e, -1, NULL);
		sk_train_free(r);
		e->trainer = NULL;
		pthread_mutex_lock(&e->mu);
		if (e->train_state == SK_TRAIN_RUNNING)
			e->train_state = SK_TRAIN_DONE;
		pthread_mutex_unlock(&e->mu);
	}
	return 1;
}

void sk_engine_train_free(sk_engine *e)
{
	sk_train_free((sk_train_run *)e->trainer);
	e->trainer = NULL;
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
