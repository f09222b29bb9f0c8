/* The engine thread: the whole public face of the engine for the TUI.
 *
 * One thread owns the model (and the device). The UI submits commands,
 * which never block (they are copied into a queue), and polls events; a
 * file descriptor becomes readable while events wait, for poll() in the
 * UI's main loop. Chat generation has priority over training: the thread
 * runs a training micro-step only when no generation is queued, so a user
 * can talk to the live adapter while it trains.
 *
 * Cancelling is not queued: it takes effect inside the running sk_generate
 * at the next sampled token, and also drops matching generations still
 * waiting in the queue. */
#ifndef SK_ENGINE_H
#define SK_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/text/chat_template.h"
#include "engine/error.h"
#include "engine/model/generate.h"
#include "engine/train/train.h"

typedef struct sk_engine sk_engine;

typedef struct {
	sk_device device;     /* where the model runs (SK_DEVICE_AUTO: the GPU when usable) */
	int threads;          /* CPU threads for the model; 0 = one per core */
	int quant_nf4;        /* quantize the base to NF4 at load */
	int token_delay_us;   /* testing aid: sleep after each generated token (0 = off) */
} sk_engine_opts;

/* Starts the thread. NULL + sk_error() when it cannot. */
sk_engine *sk_engine_start(const sk_engine_opts *opts);
/* Cancels what runs, drops what waits, joins the thread and frees
 * everything, including events never polled. NULL is a no-op. */
void sk_engine_stop(sk_engine *e);
/* Readable while at least one event waits (a pipe; the UI never reads it:
 * sk_engine_poll drains it). */
int sk_engine_fd(const sk_engine *e);

typedef enum {
	SK_ECMD_LOAD_MODEL,     /* path */
	SK_ECMD_LOAD_ADAPTER,   /* path: a PEFT adapter directory for the loaded model */
	SK_ECMD_UNLOAD_ADAPTER,
	SK_ECMD_GENERATE,       /* gen */
	SK_ECMD_CANCEL,         /* session (-1: every generation) */
	SK_ECMD_TRAIN_START,    /* train */
	SK_ECMD_TRAIN_PAUSE,
	SK_ECMD_TRAIN_RESUME,
	SK_ECMD_TRAIN_STOP,
	SK_ECMD_EVAL,           /* during a run: its held-out split (else path); otherwise path:
	                           a dataset file, scored with the base model and the adapter */
	SK_ECMD_MEMORY,         /* asks for a memory event */
	SK_ECMD_REPLAY_METRICS, /* path: a run's metrics.jsonl (or its directory), sent
	                           again as train step and eval events (view a past run) */
} sk_engine_cmd_type;

/* One answer of a generate command. */
typedef struct {
	int session;            /* chosen by the UI; echoed in token/done events */
	const sk_chat_msg *msgs;/* the conversation, ending with a user turn */
	size_t n_msgs;
	int adapter_on;         /* ignored (off) when no adapter is loaded */
} sk_engine_answer;

/* At most two answers: a compare request is base and adapter in ONE
 * batched sk_generate call, with the same sampling (and seed) on both. */
#define SK_ENGINE_MAX_ANSWERS 2

typedef struct {
	sk_engine_answer answers[SK_ENGINE_MAX_ANSWERS];
	int n_answers;
	sk_sampling sampling;
	int max_new;            /* tokens per answer at most */
	int ctx;                /* context budget in tokens (0: the model's) */
} sk_engine_gen;

typedef struct {
	const char *data;       /* dataset JSONL */
	const char *out_dir;    /* run directory */
	const char *recipe;     /* NULL, "seed", "seed-run" or "quick" (seed, 30 steps, max length 256);
	                           the fields below that are > 0 override it */
	int steps;              /* optimizer steps (0: one epoch) */
	int batch, grad_accum, rank;
	float lr, alpha;
	int eval_every;
	int max_len;            /* tokens per example at most */
	float eval_frac;        /* share of the data held out for evaluation (e key) */
	const sk_train_config *config; /* when set, the whole run's configuration, used as it is
	                                  (`sokhan train --tui`); the fields above are ignored */
} sk_engine_train;

typedef struct {
	sk_engine_cmd_type type;
	const char *path;
	int session;
	sk_engine_gen gen;
	sk_engine_train train;
} sk_engine_cmd;

/* Copies everything cmd points to and queues it; never blocks on the model.
 * Returns 0, or -1 + sk_error() (out of memory, a malformed command, the
 * engine stopping). */
int sk_engine_submit(sk_engine *e, const sk_engine_cmd *cmd);
/* Shorthands. */
int sk_engine_cancel(sk_engine *e, int session);

typedef enum {
	SK_EV_MODEL_LOADED,     /* text: path; info */
	SK_EV_ADAPTER_LOADED,   /* text: path (NULL after unloading); info.adapter_*; also sent when a
	                           training run's live adapter takes over (info.adapter_live) and
	                           when it ends (the loaded adapter, if any, is back) */
	SK_EV_TOKEN,            /* session, text: the piece (complete UTF-8) */
	SK_EV_GEN_DONE,         /* session, gen */
	SK_EV_TRAIN_STEP,       /* step (fields of metrics.jsonl) */
	SK_EV_TRAIN_STATE,      /* state: SK_TRAIN_* ; text: a short note */
	SK_EV_EVAL,             /* step.eval_loss (a run's held-out split, or a dataset: text names
	                           it, step.loss holds the base model's loss or NaN) */
	SK_EV_MEMORY,           /* mem */
	SK_EV_LOG,              /* level, text */
	SK_EV_ERROR,            /* text (also: session of a failed generation, else -1) */
} sk_engine_event_type;

enum { SK_LOG_DEBUG, SK_LOG_INFO, SK_LOG_WARN, SK_LOG_ERROR };
enum { SK_TRAIN_IDLE, SK_TRAIN_RUNNING, SK_TRAIN_PAUSED, SK_TRAIN_DONE, SK_TRAIN_UNAVAILABLE };

/* What each number measures (bytes):
 * WEIGHTS      the base model's weight tensors as the forward reads them (stored
 *              type, or NF4 after --quant nf4); file-mapped, so not all resident;
 * ADAPTER      LoRA factors in use (a training run's: values and gradients);
 * KV_CACHE     the KV cache of the last answer (it is freed after each answer);
 * OPTIMIZER    the optimizer state of the training run (0 without one);
 * PROCESS      the whole process' resident set (host RSS, /proc/self/statm);
 * ACTIVATIONS  the forward/backward workspace reserved now (it grows to the
 *              largest batch seen and is kept);
 * HOST_TABLE   the per-layer-embedding table a GPU backend keeps in pinned host
 *              memory (counted in WEIGHTS too; 0 on the CPU);
 * DEVICE_USED, DEVICE_TOTAL  the GPU's memory in use (by every process) and in
 *              all (0 on the CPU). */
enum {
	SK_MEM_WEIGHTS, SK_MEM_ADAPTER, SK_MEM_KV_CACHE, SK_MEM_OPTIMIZER, SK_MEM_PROCESS, SK_MEM_ACTIVATIONS,
	SK_MEM_HOST_TABLE, SK_MEM_DEVICE_USED, SK_MEM_DEVICE_TOTAL,
	SK_MEM_NCAT
};
/* "weights", "adapter", ... */
const char *sk_engine_mem_name(int cat);

typedef struct {
	char arch[32];
	int n_layers, hidden, vocab, max_ctx;
	int has_tokenizer;
	int adapter_rank, adapter_pairs;  /* 0 when none */
	int adapter_live;                 /* the adapter is a training run's, as it trains */
	char device[160];                 /* where it runs: "cpu" or "cuda: <the GPU>" */
} sk_engine_model_info;

typedef struct {
	int n_prompt, n_generated;
	double prefill_tps, decode_tps;
	double prefill_s, decode_s;
	int stopped_by;                   /* 0 max_new, 1 stop token, 2 cancelled */
} sk_engine_gen_info;

typedef struct {
	int64_t step, total_steps;
	double epoch, elapsed_s, eta_s;
	double loss, lr, grad_norm, tokens_per_s;
	int64_t tokens;
	double eval_loss;
} sk_engine_step_info;

typedef struct {
	sk_engine_event_type type;
	int session;
	int level;
	int state;
	char *text;                       /* malloc'd or NULL */
	sk_engine_model_info info;
	sk_engine_gen_info gen;
	sk_engine_step_info step;
	uint64_t mem[SK_MEM_NCAT];
} sk_engine_event;

/* Takes the oldest waiting event: 1 (ev filled; free it with
 * sk_engine_event_free), 0 when none waits. Never blocks. */
int sk_engine_poll(sk_engine *e, sk_engine_event *ev);
void sk_engine_event_free(sk_engine_event *ev);

/* The training loop is linked in (engine/train/train.h); otherwise the train
 * commands answer with SK_TRAIN_UNAVAILABLE. */
int sk_engine_can_train(void);

#endif
