/* The training loop (train.h): micro-steps, accumulation, clipping, the
 * optimizer and schedule, metrics, evaluation, checkpoints and resume. */
#include "engine/train/train.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/train/adapter_write.h"
#include "engine/train/batcher.h"
#include "engine/train/checkpoint.h"
#include "engine/env_flag.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/splitmix.h"
#include "engine/train/metrics.h"
#include "engine/train/pass_plan.h"
#include "engine/train/svg_plot.h"
#include "engine/train/train_grad.h"

#define OPTIM_FILE "optimizer.safetensors"
/* --merge-tokens' default on a device backend: a pass of a step's micro-batches up to this many
 * tokens (on the CPU a pass's cost grows with its tokens, and merging gains nothing) */
#define SK_TRAIN_MERGE_DEVICE 2048

struct sk_train_run {
	sk_train_config cfg;
	sk_model *m;
	int on_device;           /* the backend holds the adapter (sk_model_train_begin) */
	int optim_on_device;     /* ... and its optimizer (sk_model_train_optim_begin) */
	sk_train_event_fn fn;
	void *ctx;

	sk_dataset *ds;
	sk_split split;
	sk_batcher *batcher;
	sk_lora *lora;
	sk_optim_param *params;
	char **names;
	size_t nparams;
	sk_optim *opt;
	sk_adapter_pair *apairs;
	size_t napairs;
	sk_adapter_info ainfo;
	uint64_t adapter_bytes;
	sk_metrics_log *log;
	sk_lr_schedule sched;
	sk_train_seq *seqs;       /* batch x grad_accum rows */
	/* --merge-tokens N (no dropout): consecutive micro-batches of a step computed in one
	 * forward and backward while their tokens fit in N (merge_tokens; 0: each alone). The step's
	 * gradient is the same sum, scaled by the same 1 / step_targets; only the device's passes are
	 * fewer and larger. group[g]: micro-batches of the current step's g-th pass. */
	size_t merge_tokens;
	int *group, n_group, gi;
	size_t *micro_tokens;     /* the current step's micro-batches' tokens (for balancing the passes) */
	int keep_bf16;            /* SK_TRAIN_KEEP_BF16=1 (opt-in): checkpoints in bf16 (sk_train_opts) */
	int recompute_all;        /* SK_TRAIN_RECOMPUTE_ALL=1: no outputs kept past checkpoints (sk_train_opts) */
	int32_t *mids;            /* the merged rows' ids and targets (batcher buffers last one call) */
	uint8_t *mtgt;
	size_t mcap;

	int64_t total_steps;
	int64_t step;             /* optimizer steps done */
	sk_batch_pos step_pos;    /* data position at the start of the next/current step */
	int micro, n_micro;       /* micro-steps done / planned in the current step (0: none begun) */
	int64_t step_targets, step_tokens;
	double step_loss;
	double step_t0;

	int64_t tokens_seen;
	double elapsed_base;      /* training time of earlier sessions */
	double session_t0;
	int64_t session_steps;
	double session_step_time;
	int64_t last_saved;       /* newest checkpoint on disk (-1: none) */

	int64_t *hist_steps;
	double *hist_loss;
	size_t nhist, caphist;

	volatile sig_atomic_t stop;
	int stopped, ended, failed;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t x)
{
	return sk_splitmix64(&x);
}

uint64_t sk_train_micro_seed(uint64_t seed, int64_t step, int micro)
{
	return splitmix64(splitmix64(splitmix64(seed) ^ (uint64_t)step) ^ (uint64_t)(uint32_t)micro);
}

static void emit(sk_train_run *r, sk_train_event *ev)
{
	ev->step = r->step;
	ev->total_steps = r->total_steps;
	ev->tokens = r->tokens_seen;
	ev->elapsed_s = r->elapsed_base + (now_s() - r->session_t0);
	ev->eta_s = r->session_steps ? (r->session_step_time / (double)r->session_steps) *
					       (double)(r->total_steps - r->step)
				     : NAN;
	if (r->fn)
		r->fn(r->ctx, ev);
}

static void say(sk_train_run *r, sk_train_event_kind kind, const char *fmt, ...) SK_PRINTF(3, 4);
static void say(sk_train_run *r, sk_train_event_kind kind, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sk_train_event ev = { .kind = kind, .text = buf, .loss = NAN, .lr = NAN, .grad_norm = NAN,
			      .eval_loss = NAN };
	emit(r, &ev);
}

static void ckpt_log(void *ctx, const char *line)
{
	say(ctx, SK_TRAIN_EV_LOG, "%s", line);
}

static double epoch_of(const sk_train_run *r, sk_batch_pos p)
{
	size_t n = r->split.ntrain;
	return n ? (double)p.epoch + (double)p.index / (double)n : 0;
}

/* Resident memory of the process: weights, activations and everything. */
static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	unsigned long long size = 0, res = 0;
	int ok = fscanf(f, "%llu %llu", &size, &res) == 2;
	fclose(f);
	long page = sysconf(_SC_PAGESIZE);
	return ok && page > 0 ? res * (uint64_t)page : 0;
}

static int hist_push(sk_train_run *r, int64_t step, double loss)
{
	if (r->nhist == r->caphist) {
		size_t nc = r->caphist ? 2 * r->caphist : 256;
		int64_t *s = realloc(r->hist_steps, nc * sizeof *s);
		if (!s)
			return sk_fail("%s", _("out of memory"));
		r->hist_steps = s;
		double *l = realloc(r->hist_loss, nc * sizeof *l);
		if (!l)
			return sk_fail("%s", _("out of memory"));
		r->hist_loss = l;
		r->caphist = nc;
	}
	r->hist_steps[r->nhist] = step;
	r->hist_loss[r->nhist] = loss;
	r->nhist++;
	return 0;
}

static int save_optimizer(void *ctx, const char *dir)
{
	sk_train_run *r = ctx;
	char *p = sk_path_join(dir, OPTIM_FILE);
	if (!p)
		return sk_fail("%s", _("out of memory"));
	int rc = sk_optim_save(r->opt, p);
	free(p);
	return rc;
}

static int save_checkpoint(sk_train_run *r)
{
	if (r->last_saved == r->step)
		return 0;
	sk_trainer_state st;
	memset(&st, 0, sizeof st);
	st.step = r->step;
	st.epoch = epoch_of(r, r->step_pos);
	st.data_epoch = (int64_t)r->step_pos.epoch;
	st.data_pos = (int64_t)r->step_pos.index;
	st.tokens_seen = r->tokens_seen;
	st.elapsed_s = r->elapsed_base + (now_s() - r->session_t0);
	/* Nothing random is carried between steps (dropout seeds and the data
	 * order derive from the seed); the seed is kept for the record. */
	unsigned char seed[8];
	for (int i = 0; i < 8; i++)
		seed[i] = (unsigned char)(r->cfg.seed >> (8 * i));
	snprintf(st.rng[0].name, sizeof st.rng[0].name, "seed");
	st.rng[0].data = seed;
	st.rng[0].len = sizeof seed;
	st.nrng = 1;
	st.options = sk_train_config_to_json(&r->cfg);
	size_t keep = r->nhist > SK_CKPT_MAX_LOSS_HISTORY ? SK_CKPT_MAX_LOSS_HISTORY : r->nhist;
	st.loss_steps = r->hist_steps + (r->nhist - keep);
	st.losses = r->hist_loss + (r->nhist - keep);
	st.nloss = keep;
	sk_checkpoint c = { .info = &r->ainfo, .pairs = r->apairs, .npairs = r->napairs,
			    .save_optimizer = save_optimizer, .optimizer_ctx = r, .state = &st };
	/* the metrics lines up to this step must survive with the checkpoint;
	 * the factors and states are the device's when it steps the optimizer */
	int rc = sk_metrics_sync(r->log);
	if (rc == 0 && r->optim_on_device)
		rc = sk_model_train_optim_sync(r->m, r->opt);
	char *dir = NULL;
	if (rc == 0)
		rc = sk_checkpoint_save(r->cfg.run_dir, &c, &dir);
	json_decref(st.options);
	if (rc)
		return -1;
	r->last_saved = r->step;
	sk_train_event ev = { .kind = SK_TRAIN_EV_CHECKPOINT, .text = dir, .loss = NAN, .lr = NAN,
			      .grad_norm = NAN, .eval_loss = NAN };
	emit(r, &ev);
	free(dir);
	if (r->cfg.keep > 0 && sk_checkpoint_prune(r->cfg.run_dir, r->cfg.keep, ckpt_log, r) < 0)
		return -1;
	return 0;
}

int sk_train_evaluate(sk_model *m, sk_lora *adapter, const sk_dataset *ds, const size_t *subset, size_t n,
		      size_t batch, double *loss_sum, int64_t *n_targets)
{
	*loss_sum = 0;
	*n_targets = 0;
	sk_batcher_opts bo;
	sk_batcher_opts_init(&bo);
	bo.batch_size = batch ? batch : 1;
	bo.shuffle = 0;
	int32_t pad = sk_model_config(m)->pad_token_id;
	bo.pad_id = pad >= 0 ? pad : 0;
	sk_batcher *b = sk_batcher_new(ds, subset, subset ? n : ds->n, &bo);
	sk_train_seq *seqs = calloc(bo.batch_size, sizeof *seqs);
	if (!b || !seqs) {
		sk_batcher_free(b);
		free(seqs);
		return b ? sk_fail("%s", _("out of memory")) : -1;
	}
	sk_train_opts to = { .grad_scale = 1, .want_grad = 0 };
	sk_batch bt;
	int rc;
	while ((rc = sk_batcher_next(b, &bt)) == 1) {
		for (size_t i = 0; i < bt.rows; i++)
			seqs[i] = (sk_train_seq){ bt.ids + i * bt.cols, bt.target + i * bt.cols, (int)bt.len[i] };
		double ls = 0;
		int64_t nt = 0;
		if (sk_model_loss_grad(m, adapter, seqs, (int)bt.rows, &to, &ls, &nt) != 0) {
			rc = -1;
			break;
		}
		*loss_sum += ls;
		*n_targets += nt;
	}
	sk_batcher_free(b);
	free(seqs);
	return rc < 0 ? -1 : 0;
}

static int run_eval(sk_train_run *r)
{
	if (!r->split.neval)
		return 0;
	double ls;
	int64_t nt;
	if (sk_train_evaluate(r->m, r->lora, r->ds, r->split.eval, r->split.neval, (size_t)r->cfg.batch, &ls, &nt))
		return -1;
	double loss = nt ? ls / (double)nt : NAN;
	sk_metric_rec rec = { .is_eval = 1, .step = r->step, .epoch = epoch_of(r, r->step_pos),
			      .elapsed_s = r->elapsed_base + (now_s() - r->session_t0), .eval_loss = loss,
			      .eval_tokens = nt };
	if (sk_metrics_append(r->log, &rec))
		return -1;
	sk_train_event ev = { .kind = SK_TRAIN_EV_EVAL, .epoch = rec.epoch, .loss = NAN, .lr = NAN,
			      .grad_norm = NAN, .eval_loss = loss, .eval_tokens = nt };
	emit(r, &ev);
	return 0;
}

/* Plans the next optimizer step: how many micro-batches (up to grad_accum,
 * never across an epoch, as the Trainer steps at the end of each epoch) and
 * their total target count, read ahead and rewound. */
static int begin_step(sk_train_run *r)
{
	r->step_pos = sk_batcher_tell(r->batcher);
	r->n_micro = 0;
	r->micro = 0;
	r->n_group = 0;
	r->gi = 0;
	r->step_targets = 0;
	r->step_tokens = 0;
	r->step_loss = 0;
	size_t epoch = 0;
	sk_batch bt;
	for (int i = 0; i < r->cfg.grad_accum; i++) {
		int rc = sk_batcher_next(r->batcher, &bt);
		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		if (i == 0)
			epoch = bt.pos.epoch;
		else if (bt.pos.epoch != epoch)
			break;
		r->micro_tokens[i] = bt.tokens;
		r->n_micro++;
		r->step_targets += (int64_t)bt.targets;
		r->step_tokens += (int64_t)bt.tokens;
	}
	if (sk_batcher_seek(r->batcher, r->step_pos))
		return -1;
	r->n_group = sk_pass_plan(r->micro_tokens, r->n_micro, r->merge_tokens, r->group);
	if (r->n_group < r->n_micro && (size_t)r->step_tokens > r->mcap) { /* room for merged rows */
		size_t cap = (size_t)r->step_tokens;
		int32_t *a = realloc(r->mids, cap * sizeof *a);
		if (a)
			r->mids = a;
		uint8_t *t = a ? realloc(r->mtgt, cap) : NULL;
		if (!a || !t)
			return sk_fail("%s", _("out of memory"));
		r->mtgt = t;
		r->mcap = cap;
	}
	r->step_t0 = now_s();
	return 0;
}

static int optimizer_step(sk_train_run *r)
{
	double lr = sk_lr_at(&r->sched, r->cfg.lr, r->step);
	float norm;
	if (sk_model_train_optimizer_step(r->m, r->opt, r->optim_on_device, r->lora, r->params, r->nparams, lr,
	                                  (float)r->cfg.max_grad_norm, &norm))
		return -1;
	if (!isfinite(norm))
		say(r, SK_TRAIN_EV_WARN, _("step %lld: the gradient norm is not finite; the update is skipped"),
		    (long long)r->step + 1);
	r->step++;
	r->step_pos = sk_batcher_tell(r->batcher);
	r->tokens_seen += r->step_tokens;
	double dt = now_s() - r->step_t0;
	r->session_steps++;
	r->session_step_time += dt;
	double loss = r->step_targets ? r->step_loss / (double)r->step_targets : NAN;
	if (hist_push(r, r->step, loss))
		return -1;

	sk_metric_mem mem[3] = {
		{ "adapter", r->adapter_bytes },
		{ "optimizer", sk_optim_state_bytes(r->opt) },
		{ "process", rss_bytes() },
	};
	sk_metric_rec rec = { .step = r->step, .epoch = epoch_of(r, r->step_pos),
			      .elapsed_s = r->elapsed_base + (now_s() - r->session_t0), .loss = loss, .lr = lr,
			      .grad_norm = norm, .tokens = r->tokens_seen,
			      .tokens_per_s = dt > 0 ? (double)r->step_tokens / dt : 0, .mem = mem, .nmem = 3 };
	if (sk_metrics_append(r->log, &rec))
		return -1;
	sk_train_event ev = { .kind = SK_TRAIN_EV_STEP, .epoch = rec.epoch, .loss = loss, .lr = lr, .grad_norm = norm,
			      .tokens_per_s = rec.tokens_per_s, .eval_loss = NAN };
	emit(r, &ev);
	r->n_micro = 0;
	r->micro = 0;

	if (r->step < r->total_steps) {
		if (r->cfg.eval_every > 0 && r->step % r->cfg.eval_every == 0 && run_eval(r))
			return -1;
		if (r->cfg.save_every > 0 && r->step % r->cfg.save_every == 0 && save_checkpoint(r))
			return -1;
	}
	return 0;
}

/* The rows of the k micro-batches of the next pass into r->seqs: 0, or -1.
 * One micro-batch is used where the batcher holds it; more are copied, as
 * the batcher's buffers last until its next call. */
static int pass_rows(sk_train_run *r, int k, size_t *rows, sk_batch_pos *next)
{
	size_t n = 0, used = 0;
	for (int b = 0; b < k; b++) {
		sk_batch bt;
		int rc = sk_batcher_next(r->batcher, &bt);
		if (rc <= 0)
			return rc < 0 ? -1 : sk_fail("%s", _("the data ran out in the middle of a step"));
		*next = bt.next;
		for (size_t i = 0; i < bt.rows; i++, n++) {
			const int32_t *ids = bt.ids + i * bt.cols;
			const uint8_t *tg = bt.target + i * bt.cols;
			size_t len = bt.len[i];
			if (k > 1) { /* begin_step made room for the whole step */
				if (used + len > r->mcap)
					return sk_fail("%s", _("the data changed in the middle of a step"));
				memcpy(r->mids + used, ids, len * sizeof *ids);
				memcpy(r->mtgt + used, tg, len);
				ids = r->mids + used;
				tg = r->mtgt + used;
				used += len;
			}
			r->seqs[n] = (sk_train_seq){ ids, tg, (int)len };
		}
	}
	*rows = n;
	return 0;
}

static int micro_step(sk_train_run *r)
{
	int k = r->gi < r->n_group ? r->group[r->gi] : 1;
	size_t rows = 0;
	sk_batch_pos next = r->step_pos;
	if (pass_rows(r, k, &rows, &next))
		return -1;
	r->gi++;
	sk_train_opts to = {
		.lora_dropout = (float)r->cfg.dropout,
		.dropout_seed = sk_train_micro_seed(r->cfg.seed, r->step, r->micro),
		.grad_ckpt = r->cfg.grad_ckpt,
		.grad_scale = r->step_targets ? (float)(1.0 / (double)r->step_targets) : 0.0f,
		.want_grad = 1,
		.keep_bf16 = r->keep_bf16,
		.recompute_all = r->recompute_all,
	};
	double ls = 0;
	int64_t nt = 0;
	if (sk_model_loss_grad(r->m, r->lora, r->seqs, (int)rows, &to, &ls, &nt))
		return -1;
	r->step_loss += ls;
	r->micro += k;
	sk_train_event ev = { .kind = SK_TRAIN_EV_MICRO, .micro = r->micro, .n_micro = r->n_micro,
			      .epoch = epoch_of(r, next), .loss = NAN, .lr = NAN, .grad_norm = NAN,
			      .eval_loss = NAN };
	emit(r, &ev);
	if (r->micro == r->n_micro)
		return optimizer_step(r);
	return 0;
}

static int write_chart(sk_train_run *r)
{
	char *mpath = sk_path_join(r->cfg.run_dir, SK_METRICS_FILE);
	char *svgpath = sk_path_join(r->cfg.run_dir, "loss.svg");
	int rc = -1;
	sk_metrics_series s;
	memset(&s, 0, sizeof s);
	if (mpath && svgpath && sk_metrics_read(mpath, &s) == 0 && s.n > 0) {
		const char *base = strrchr(r->cfg.run_dir, '/');
		char title[512];
		snprintf(title, sizeof title, _("Training run: %s"), base && base[1] ? base + 1 : r->cfg.run_dir);
		sk_plot_info info;
		size_t len;
		char *svg = sk_svg_plot_training(&s, title, &info, &len);
		if (svg && sk_write_file_atomic(svgpath, svg, len) == 0)
			rc = 0;
		free(svg);
	}
	if (rc)
		say(r, SK_TRAIN_EV_WARN, _("could not draw the chart: %s"), sk_error());
	else
		say(r, SK_TRAIN_EV_LOG, _("chart: %s"), svgpath);
	sk_metrics_series_free(&s);
	free(mpath);
	free(svgpath);
	return 0; /* a missing chart does not fail the run */
}

static int finish(sk_train_run *r)
{
	/* A checkpoint at the last step is always the final one, written after
	 * the final evaluation: resuming from it only redoes the outputs. */
	if (r->last_saved != r->step) {
		if (run_eval(r) || save_checkpoint(r))
			return -1;
	}
	if (sk_checkpoint_save_final(r->cfg.run_dir, &r->ainfo, r->apairs, r->napairs))
		return -1;
	say(r, SK_TRAIN_EV_LOG, _("adapter: %s/adapter"), r->cfg.run_dir);
	if (sk_metrics_sync(r->log))
		return -1;
	write_chart(r);
	return 0;
}

static int end_run(sk_train_run *r, int stopped)
{
	r->ended = 1;
	r->stopped = stopped;
	sk_train_event ev = { .kind = SK_TRAIN_EV_DONE, .stopped = stopped, .loss = NAN, .lr = NAN,
			      .grad_norm = NAN, .eval_loss = NAN };
	if (r->nhist)
		ev.loss = r->hist_loss[r->nhist - 1];
	emit(r, &ev);
	return 0;
}

int sk_train_step(sk_train_run *r)
{
	if (r->failed)
		return sk_fail("%s", _("the training run has failed"));
	if (r->ended)
		return 0;
	int rc = 0;
	if (r->step >= r->total_steps) {
		rc = finish(r);
		if (rc == 0)
			end_run(r, 0);
	} else if (r->stop) {
		if (r->n_micro)
			say(r, SK_TRAIN_EV_LOG,
			    _("stopping: %d of %d micro-steps of step %lld are dropped; it is redone on resume"),
			    r->micro, r->n_micro, (long long)r->step + 1);
		if (r->n_micro && sk_model_train_grads_to_host(r->m) == 0) /* dropped, on the device too */
			sk_lora_zero_grad(r->lora);
		r->n_micro = 0;
		rc = sk_metrics_sync(r->log);
		if (rc == 0)
			rc = save_checkpoint(r);
		if (rc == 0)
			end_run(r, 1);
	} else {
		if (r->n_micro == 0)
			rc = begin_step(r);
		if (rc == 0 && r->n_micro == 0)
			rc = sk_fail("%s", _("the data ran out before the planned steps"));
		if (rc == 0)
			rc = micro_step(r);
		if (rc == 0)
			return 1;
	}
	if (rc) {
		r->failed = 1;
		return -1;
	}
	return 0;
}

void sk_train_request_stop(sk_train_run *r)
{
	r->stop = 1;
}

int sk_train_stopped(const sk_train_run *r)
{
	return r->stopped;
}

int64_t sk_train_steps_done(const sk_train_run *r)
{
	return r->step;
}

int64_t sk_train_total_steps(const sk_train_run *r)
{
	return r->total_steps;
}

const sk_lora *sk_train_adapter(const sk_train_run *r)
{
	return r->lora;
}

void sk_train_memory(const sk_train_run *r, uint64_t *adapter, uint64_t *optimizer)
{
	*adapter = r ? r->adapter_bytes : 0;
	*optimizer = r && r->opt ? sk_optim_state_bytes(r->opt) : 0;
}

int sk_train_evaluate_now(sk_train_run *r)
{
	if (r->ended || r->failed)
		return sk_fail("%s", _("the run has ended"));
	if (!r->split.neval)
		return 1;
	return run_eval(r) ? -1 : 0;
}

void sk_train_free(sk_train_run *r)
{
	if (!r)
		return;
	if (r->on_device)
		sk_model_train_end(r->m);
	if (r->log)
		sk_metrics_close(r->log);
	sk_optim_free(r->opt);
	for (size_t i = 0; i < r->nparams; i++)
		free(r->names[i]);
	free(r->names);
	free(r->params);
	free(r->apairs);
	sk_lora_free(r->lora);
	sk_batcher_free(r->batcher);
	sk_split_free(&r->split);
	sk_dataset_free(r->ds);
	free(r->seqs);
	free(r->group);
	free(r->micro_tokens);
	free(r->mids);
	free(r->mtgt);
	free(r->hist_steps);
	free(r->hist_loss);
	free(r);
}

/* ---- starting ---- */

/* Options whose change makes a resumed run differ from an uninterrupted one. */
static const char *const determinism_keys[] = {
	"data", "r", "alpha", "dropout", "targets", "rslora", "quant", "optim", "weight_decay", "sched",
	"warmup", "lr", "grad_accum", "max_grad_norm", "epochs", "batch", "seed", "loss_on", "on_bad_row",
	"max_len", "packing", "eval_frac", "max_steps", "threads",
};

static void compare_options(sk_train_run *r, const json_t *saved, const char *ckpt)
{
	if (!saved)
		return;
	json_t *now = sk_train_config_to_json(&r->cfg);
	if (!now)
		return;
	char diff[512] = "";
	size_t k = 0;
	for (size_t i = 0; i < sizeof determinism_keys / sizeof *determinism_keys; i++) {
		json_t *a = json_object_get(saved, determinism_keys[i]), *b = json_object_get(now, determinism_keys[i]);
		if (a && b && !json_equal(a, b)) {
			int w = snprintf(diff + k, sizeof diff - k, "%s%s", k ? ", " : "", determinism_keys[i]);
			if (w > 0 && (size_t)w < sizeof diff - k)
				k += (size_t)w;
		}
	}
	json_decref(now);
	if (k)
		say(r, SK_TRAIN_EV_WARN,
		    _("%s: options differ from the checkpoint's (%s): the continued run will not repeat an "
		      "uninterrupted one"),
		    ckpt, diff);
}

static int build_adapter(sk_train_run *r)
{
	const sk_config *mc = sk_model_config(r->m);
	r->lora = sk_lora_new_trainable(mc, r->cfg.targets, r->cfg.r, (float)r->cfg.alpha, r->cfg.rslora, r->cfg.seed);
	if (!r->lora)
		return -1;
	int n = sk_lora_pair_count(r->lora);
	r->params = calloc((size_t)n * 2, sizeof *r->params);
	r->names = calloc((size_t)n * 2, sizeof *r->names);
	r->apairs = calloc((size_t)n, sizeof *r->apairs);
	if (!r->params || !r->names || !r->apairs)
		return sk_fail("%s", _("out of memory"));
	uint64_t numel = 0;
	for (int i = 0; i < n; i++) {
		int layer;
		sk_lora_module mod;
		sk_lora_pair *p = sk_lora_pair_at(r->lora, i, &layer, &mod);
		if (!p || !sk_lora_grad_A(r->lora, i) || !sk_lora_grad_B(r->lora, i))
			return sk_fail("%s", _("the trainable adapter has no gradient buffers"));
		r->apairs[r->napairs++] = (sk_adapter_pair){ layer, mod, p->A, p->B, p->in, p->out };
		for (int ab = 0; ab < 2; ab++) {
			char name[96];
			snprintf(name, sizeof name, "layers.%d.%s.lora_%c", layer, sk_lora_module_name(mod), ab ? 'B' : 'A');
			size_t j = r->nparams;
			r->names[j] = strdup(name);
			if (!r->names[j])
				return sk_fail("%s", _("out of memory"));
			r->params[j] = (sk_optim_param){ r->names[j], ab ? p->B : p->A,
							  ab ? sk_lora_grad_B(r->lora, i) : sk_lora_grad_A(r->lora, i),
							  ab ? (int64_t)p->out * p->r : (int64_t)p->r * p->in };
			numel += (uint64_t)r->params[j].numel;
			r->nparams++;
		}
	}
	r->adapter_bytes = numel * 2 * sizeof(float); /* values and gradients */
	r->ainfo = (sk_adapter_info){ .r = r->cfg.r, .alpha = r->cfg.alpha, .dropout = r->cfg.dropout,
				      .use_rslora = r->cfg.rslora, .base_model = r->cfg.model,
				      .keys = mc->multimodal ? SK_ADAPTER_KEYS_MULTIMODAL : SK_ADAPTER_KEYS_TEXT };

	/* k/v of KV-shared layers read an earlier layer's K/V: no adapter there */
	int skipped = 0;
	for (int l = 0; l < mc->num_layers; l++)
		for (int mod = SK_LORA_K; mod <= SK_LORA_V; mod++)
			if ((r->cfg.targets & (1u << mod)) && !sk_lora_get(r->lora, l, (sk_lora_module)mod))
				skipped++;
	char targets[64];
	sk_train_targets_format(r->cfg.targets, targets, sizeof targets);
	say(r, SK_TRAIN_EV_LOG, _("LoRA: %d adapted modules (%s) over %d layers, %llu trainable parameters"), n,
	    targets, mc->num_layers, (unsigned long long)numel);
	if (skipped)
		say(r, SK_TRAIN_EV_LOG,
		    _("LoRA: %d k/v modules of KV-shared layers are not adapted (those layers reuse an earlier "
		      "layer's keys and values)"),
		    skipped);

	sk_optim_config oc;
	sk_optim_config_default(&oc);
	oc.kind = r->cfg.optim;
	oc.weight_decay = r->cfg.weight_decay;
	r->opt = sk_optim_new(&oc, r->params, r->nparams);
	return r->opt ? 0 : -1;
}

/* Copies the adapter saved in a checkpoint into the trainable one. */
static int restore_adapter(sk_train_run *r, const char *ckpt)
{
	sk_lora *saved = sk_lora_load(ckpt, sk_model_config(r->m));
	if (!saved)
		return -1;
	int rc = 0;
	if (sk_lora_pair_count(saved) != (int32_t)r->napairs || sk_lora_rank(saved) != r->cfg.r)
		rc = sk_fail(_("%s: the adapter does not match the run's LoRA options"), ckpt);
	for (size_t i = 0; rc == 0 && i < r->napairs; i++) {
		const sk_adapter_pair *ap = &r->apairs[i];
		const sk_lora_pair *sp = sk_lora_get(saved, ap->layer, ap->module);
		if (!sp || sp->in != ap->in || sp->out != ap->out) {
			rc = sk_fail(_("%s: the adapter lacks layer %d %s"), ckpt, ap->layer, sk_lora_module_name(ap->module));
			break;
		}
		memcpy((float *)ap->A, sp->A, (size_t)sp->r * (size_t)sp->in * sizeof(float));
		memcpy((float *)ap->B, sp->B, (size_t)sp->out * (size_t)sp->r * sizeof(float));
	}
	sk_lora_free(saved);
	return rc;
}

static int resume_from(sk_train_run *r, const char *ckpt, int64_t step)
{
	sk_trainer_state st;
	memset(&st, 0, sizeof st);
	if (sk_checkpoint_read_state(ckpt, &st))
		return -1;
	int rc = 0;
	compare_options(r, st.options, ckpt);
	if (st.step != step || st.step > r->total_steps)
		rc = sk_fail(_("%s: step %lld is past the run's %lld steps"), ckpt, (long long)st.step,
			     (long long)r->total_steps);
	if (rc == 0)
		rc = restore_adapter(r, ckpt);
	char *op = rc == 0 ? sk_path_join(ckpt, OPTIM_FILE) : NULL;
	if (rc == 0 && (!op || sk_optim_load(r->opt, op)))
		rc = -1;
	free(op);
	if (rc == 0) {
		r->step_pos = (sk_batch_pos){ (size_t)st.data_epoch, (size_t)st.data_pos };
		if (st.data_epoch < 0 || st.data_pos < 0 || sk_batcher_seek(r->batcher, r->step_pos))
			rc = sk_fail(_("%s: the data position (epoch %lld, example %lld) does not fit the data"), ckpt,
				     (long long)st.data_epoch, (long long)st.data_pos);
	}
	if (rc == 0) {
		r->step = st.step;
		r->tokens_seen = st.tokens_seen;
		r->elapsed_base = st.elapsed_s;
		r->last_saved = st.step;
		for (size_t i = 0; i < st.nloss && rc == 0; i++)
			rc = hist_push(r, st.loss_steps[i], st.losses[i]);
	}
	sk_trainer_state_free(&st);
	if (rc == 0)
		say(r, SK_TRAIN_EV_LOG, _("resuming from %s (step %lld of %lld)"), ckpt, (long long)r->step,
		    (long long)r->total_steps);
	return rc;
}

static int write_options(sk_train_run *r)
{
	json_t *o = sk_train_config_to_json(&r->cfg);
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	char *path = sk_path_join(r->cfg.run_dir, "options.json");
	int rc = text && path ? sk_write_file_atomic(path, text, strlen(text)) : sk_fail("%s", _("out of memory"));
	json_decref(o);
	free(text);
	free(path);
	return rc;
}

static int load_data(sk_train_run *r)
{
	const sk_tokenizer *tok = sk_model_tokenizer(r->m);
	if (!tok)
		return sk_fail(_("%s: the model has no tokenizer"), r->cfg.model);
	sk_dataset_opts dopt;
	sk_dataset_opts_init(&dopt);
	dopt.loss_on = r->cfg.loss_on;
	dopt.bad_rows = r->cfg.bad_rows;
	dopt.max_len = (size_t)r->cfg.max_len;
	r->ds = sk_dataset_load(r->cfg.data, tok, &dopt);
	if (!r->ds)
		return -1;
	char line[1024];
	if (sk_dataset_bad_rows_message(r->ds, line, sizeof line))
		say(r, SK_TRAIN_EV_WARN, "%s", line);
	sk_dataset_stats_line(r->ds, line, sizeof line);
	say(r, SK_TRAIN_EV_LOG, _("data: %s"), line);
	if (sk_split_make(r->ds->n, r->cfg.eval_frac, r->cfg.seed, &r->split))
		return -1;
	if (r->split.neval)
		say(r, SK_TRAIN_EV_LOG, _("data: %zu examples for training, %zu held out for evaluation"), r->split.ntrain,
		    r->split.neval);

	sk_batcher_opts bo;
	sk_batcher_opts_init(&bo);
	bo.batch_size = (size_t)r->cfg.batch;
	bo.max_len = (size_t)r->cfg.max_len;
	bo.packing = r->cfg.packing;
	bo.shuffle = 1;
	bo.seed = r->cfg.seed;
	bo.epochs = (size_t)r->cfg.epochs;
	int32_t pad = sk_model_config(r->m)->pad_token_id;
	bo.pad_id = pad >= 0 ? pad : 0;
	r->batcher = sk_batcher_new(r->ds, r->split.train, r->split.ntrain, &bo);
	if (!r->batcher)
		return -1;
	int64_t total = 0;
	for (int e = 0; e < r->cfg.epochs; e++) {
		long long nb = sk_batcher_epoch_batches(r->batcher, (size_t)e);
		if (nb < 0)
			return -1;
		total += (nb + r->cfg.grad_accum - 1) / r->cfg.grad_accum;
	}
	if (r->cfg.max_steps > 0 && r->cfg.max_steps < total)
		total = r->cfg.max_steps;
	if (total <= 0)
		return sk_fail(_("%s: no training batches"), r->cfg.data);
	r->total_steps = total;
	r->sched = (sk_lr_schedule){ r->cfg.sched, r->cfg.warmup, total };
	r->seqs = calloc((size_t)r->cfg.batch * (size_t)r->cfg.grad_accum, sizeof *r->seqs);
	r->group = calloc((size_t)r->cfg.grad_accum, sizeof *r->group);
	r->micro_tokens = calloc((size_t)r->cfg.grad_accum, sizeof *r->micro_tokens);
	r->keep_bf16 = sk_env_on("SK_TRAIN_KEEP_BF16");
	r->recompute_all = sk_env_on("SK_TRAIN_RECOMPUTE_ALL");
	/* never with dropout: each micro-batch has its own dropout seed */
	r->merge_tokens = r->cfg.dropout > 0 ? 0
	                : (size_t)(r->cfg.merge_tokens >= 0 ? r->cfg.merge_tokens
	                                                     : sk_model_train_on_device(r->m) ? SK_TRAIN_MERGE_DEVICE : 0);
	return r->seqs && r->group && r->micro_tokens ? 0 : sk_fail("%s", _("out of memory"));
}

sk_train_run *sk_train_start(sk_model *m, const sk_train_config *cfg, int resume, sk_train_event_fn fn, void *ctx)
{
	if (sk_train_config_check(cfg))
		return NULL;
	sk_train_run *r = calloc(1, sizeof *r);
	if (!r) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	r->cfg = *cfg;
	r->m = m;
	r->fn = fn;
	r->ctx = ctx;
	r->last_saved = -1;
	r->session_t0 = now_s();
	char *ckpt = NULL;
	int64_t ck_step = 0;
	if (load_data(r) || build_adapter(r))
		goto fail;
	if (sk_mkdirs(r->cfg.run_dir, 0777))
		goto fail;
	int found = sk_checkpoint_find_latest(r->cfg.run_dir, &ckpt, &ck_step, ckpt_log, r);
	if (found < 0)
		goto fail;
	if (found && !resume) {
		sk_fail(_("%s already holds checkpoints: continue it with --resume, or choose another --out"),
			r->cfg.run_dir);
		goto fail;
	}
	if (found) {
		if (resume_from(r, ckpt, ck_step))
			goto fail;
	} else if (resume) {
		say(r, SK_TRAIN_EV_LOG, _("%s has no complete checkpoint: starting from step 0"), r->cfg.run_dir);
	}
	r->log = sk_metrics_open(r->cfg.run_dir, found ? r->step : -1);
	if (!r->log || write_options(r))
		goto fail;
	/* the factors are final (made or resumed): the backend takes them */
	if (sk_model_train_begin(r->m, r->lora))
		goto fail;
	r->on_device = 1;
	int od = sk_model_train_optim_begin(r->m, r->opt);
	if (od < 0)
		goto fail;
	r->optim_on_device = od;
	free(ckpt);
	return r;
fail:
	free(ckpt);
	sk_train_free(r);
	return NULL;
}
