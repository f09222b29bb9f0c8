/* The QLoRA training loop: a run object that loads the data, builds a
 * trainable adapter and its optimizer, and advances one micro-step per call
 * so that a caller (the CLI, or the TUI's engine thread between chat
 * requests) keeps control. Events (log lines, optimizer steps, evaluations,
 * checkpoints) go through a callback.
 *
 * Loss normalisation follows transformers' Trainer with gradient
 * accumulation: an optimizer step's loss is the sum of the target-token
 * losses of all its micro-batches divided by their total target count, so
 * every micro-batch runs with grad_scale = 1 / (that count), known before
 * the first micro-batch because the batcher is read ahead and rewound.
 *
 * Determinism. Everything stochastic is derived from (seed, step, micro):
 * the data order (batcher.h), the dropout seed of each micro-step; the rest
 * is restored from the checkpoint (adapter bits, optimizer state, data
 * position). With the same thread count a resumed run therefore repeats
 * the uninterrupted one bit for bit.
 *
 * Stop requests (signals) are honoured between micro-steps: a partly
 * accumulated optimizer step is dropped, and a checkpoint of the last
 * complete step is written. The run directory holds metrics.jsonl,
 * checkpoint-STEP/ directories, options.json (the resolved configuration,
 * for --resume before the first checkpoint), and at the end adapter/ and
 * loss.svg. */
#ifndef SK_TRAIN_H
#define SK_TRAIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/train/dataset.h"
#include "engine/model/lora.h"
#include "engine/train/lr_schedule.h"
#include "engine/model/model.h"
#include "engine/train/optim.h"

#define SK_TRAIN_PATH_MAX 4096

typedef struct {
	char model[SK_TRAIN_PATH_MAX];   /* recorded; the caller loads the model */
	char data[SK_TRAIN_PATH_MAX];
	char run_dir[SK_TRAIN_PATH_MAX];
	int r;
	double alpha, dropout;
	unsigned targets;      /* SK_LORA_MASK_* bits */
	int rslora;
	int quant_nf4;         /* recorded; applied by the caller at load */
	int grad_ckpt;
	sk_optim_kind optim;
	double weight_decay;
	sk_lr_kind sched;
	int64_t warmup;
	double lr;
	int grad_accum;
	double max_grad_norm;  /* <= 0: no clipping */
	int epochs;
	int batch;
	uint64_t seed;
	sk_loss_on loss_on;
	int64_t max_len;       /* 0: whole examples */
	int packing;
	int64_t merge_tokens;  /* a step's micro-batches computed in one pass while they hold at most
	                        * this many tokens (without dropout; the same gradient): 0 off,
	                        * -1 the backend's default (sk_train_merge_default) */
	double eval_frac;      /* 0: no evaluation */
	int64_t eval_every;    /* 0: only at the end */
	sk_bad_rows bad_rows;
	int64_t save_every;    /* 0: only at the end (and on stop) */
	int keep;              /* checkpoints kept; 0 = all */
	int64_t max_steps;     /* 0: the epochs decide */
	int threads;           /* recorded (determinism needs the same count) */
} sk_train_config;

/* The defaults: the seed report's recipe with loss on responses and
 * examples cut at 2048 tokens, checkpoints every 100 steps, 3 kept. */
void sk_train_config_default(sk_train_config *c);
/* Applies a named recipe over c: "seed" (the seed report's table) or
 * "seed-run" (the run's notebook: MLP-only targets, loss on all tokens,
 * max length 4000). -1 + sk_error() for an unknown name. */
int sk_train_config_recipe(sk_train_config *c, const char *name);
/* "q,k,v,o,gate,up,down" (any subset, comma-separated), "attn", "mlp",
 * "all" -> mask. -1 + sk_error(). */
int sk_train_targets_parse(const char *s, unsigned *mask);
/* The mask as "q,k,v,o,gate,up,down" (buf of at least 32 bytes). */
void sk_train_targets_format(unsigned mask, char *buf, size_t cap);

/* The configuration as a JSON object (stored in trainer_state.json and
 * options.json), and back: every key optional, each checked. */
json_t *sk_train_config_to_json(const sk_train_config *c);
int sk_train_config_from_json(sk_train_config *c, const json_t *o, const char *name);
/* Human-readable, several lines ("  key  value\n"). */
void sk_train_config_describe(const sk_train_config *c, char *buf, size_t cap);
/* Checks ranges and combinations; -1 + sk_error() naming the option. */
int sk_train_config_check(const sk_train_config *c);

/* Reads the configuration of a run directory to resume: the newest
 * complete checkpoint's options, else RUN_DIR/options.json. Returns 1 when
 * found, 0 when the directory holds neither, -1 on error. */
int sk_train_config_load_run(const char *run_dir, sk_train_config *c);

typedef enum {
	SK_TRAIN_EV_LOG,        /* text: one line of information */
	SK_TRAIN_EV_WARN,       /* text: a warning */
	SK_TRAIN_EV_MICRO,      /* a micro-step done (micro of n_micro in step + 1) */
	SK_TRAIN_EV_STEP,       /* an optimizer step done */
	SK_TRAIN_EV_EVAL,       /* an evaluation done */
	SK_TRAIN_EV_CHECKPOINT, /* text: the checkpoint directory */
	SK_TRAIN_EV_DONE,       /* the run ended (stopped or finished) */
} sk_train_event_kind;

typedef struct {
	sk_train_event_kind kind;
	const char *text;
	int64_t step, total_steps; /* optimizer steps done / planned */
	int micro, n_micro;
	double epoch;
	double loss, lr, grad_norm;
	int64_t tokens;            /* tokens seen so far */
	double tokens_per_s;       /* over the last step */
	double elapsed_s;          /* training time, resumed segments included */
	double eta_s;              /* NaN until a step of this session is done */
	double eval_loss;
	int64_t eval_tokens;
	int stopped;               /* DONE: 1 when a stop request ended it */
} sk_train_event;

typedef void (*sk_train_event_fn)(void *ctx, const sk_train_event *ev);

typedef struct sk_train_run sk_train_run;

/* Starts (or with resume, continues) a run of model m (borrowed; loaded by
 * the caller with cfg->quant_nf4) as cfg says. Loads and splits the data,
 * builds the adapter and optimizer, restores the newest complete checkpoint
 * when resuming (none: starts afresh), opens the metrics log and writes
 * options.json. NULL + sk_error(). */
sk_train_run *sk_train_start(sk_model *m, const sk_train_config *cfg, int resume, sk_train_event_fn fn,
			     void *ctx);
/* One micro-step, with the optimizer step, metrics line, evaluation and
 * checkpoint that fall due after it; when the steps are done (or a stop
 * was requested) the end of the run: final evaluation, checkpoint, adapter
 * and chart. Returns 1 while there is more to do, 0 when the run has
 * ended, -1 on error (the run can only be freed then). */
int sk_train_step(sk_train_run *r);
/* Asks the run to stop after the current micro-step; async-signal-safe. */
void sk_train_request_stop(sk_train_run *r);
int sk_train_stopped(const sk_train_run *r);
int64_t sk_train_steps_done(const sk_train_run *r);
int64_t sk_train_total_steps(const sk_train_run *r);
const sk_lora *sk_train_adapter(const sk_train_run *r);
/* Bytes the run holds: its adapter (values and gradients) and its optimizer's state. */
void sk_train_memory(const sk_train_run *r, uint64_t *adapter, uint64_t *optimizer);
/* Evaluates the held-out split now, between micro-steps (an EVAL event and a
 * metrics line at the current step; the accumulated gradients are kept).
 * 0, 1 when the run holds nothing out (eval_frac 0), -1 + sk_error(). */
int sk_train_evaluate_now(sk_train_run *r);
void sk_train_free(sk_train_run *r);

/* Mean loss over the examples subset[0..n) of ds (NULL: all) with the
 * adapter (NULL: the base model), in batches of batch rows, no gradients.
 * *loss_sum and *n_targets receive the totals. */
int sk_train_evaluate(sk_model *m, sk_lora *adapter, const sk_dataset *ds, const size_t *subset, size_t n,
		      size_t batch, double *loss_sum, int64_t *n_targets);

/* splitmix64 of (seed, step, micro): the dropout seed of a micro-step. */
uint64_t sk_train_micro_seed(uint64_t seed, int64_t step, int micro);

#endif
