/* Pieces of the engine thread shared between its files (not for the UI). */
#ifndef SK_ENGINE_INTERNAL_H
#define SK_ENGINE_INTERNAL_H

#include <pthread.h>

#include "engine/engine.h"
#include "engine/error.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"

/* A queued command with everything it points to owned. */
typedef struct sk_qcmd {
	sk_engine_cmd cmd;
	uint64_t seq;            /* submission order, for cancels */
	char *path;
	char *strs[4];
	sk_train_config *train_config; /* owned copy of cmd.train.config */
	sk_chat_msg *msgs[SK_ENGINE_MAX_ANSWERS];
	struct sk_qcmd *next;
} sk_qcmd;

typedef struct sk_evnode {
	sk_engine_event ev;
	struct sk_evnode *next;
} sk_evnode;

typedef struct {
	uint64_t seq;            /* cancels commands submitted before it */
	int session;             /* -1: all */
} sk_cancel_rec;

struct sk_engine_trainer;

#define SK_ENGINE_CACHE_SLOTS 4

struct sk_engine {
	sk_engine_opts opts;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pipefd[2];
	int stopping;            /* under mu */
	uint64_t next_seq;       /* under mu */
	sk_qcmd *qhead, *qtail;  /* under mu */
	sk_evnode *ehead, *etail;/* under mu */
	sk_cancel_rec *cancels;  /* under mu */
	size_t ncancels, capcancels;
	/* engine thread only */
	sk_model *model;
	sk_lora *lora;           /* loaded with SK_ECMD_LOAD_ADAPTER */
	char *lora_path;
	char *model_path;
	uint64_t last_kv_bytes;  /* KV cache of the last generation */
	/* conversations' KV caches kept between turns: a slot per session */
	struct sk_gen_cache *gcache;
	int gcache_ctx;
	int slot_session[SK_ENGINE_CACHE_SLOTS];
	uint64_t adapter_gen, gcache_adapter_gen; /* bumped when the loaded adapter changes */
	struct sk_engine_trainer *trainer;
	int train_state;
};

/* Queues an event (takes ownership of text, which may be NULL). */
void sk_engine_emit(sk_engine *e, sk_engine_event *ev);
void sk_engine_log(sk_engine *e, int level, const char *fmt, ...) SK_PRINTF(3, 4);
/* An error event (text from sk_error() unless fmt is given). */
void sk_engine_error(sk_engine *e, int session, const char *msg);
/* Whether a generation submitted as seq for session was cancelled since. */
int sk_engine_cancelled(sk_engine *e, uint64_t seq, int session);

/* The adapter that "adapter on" means now: a training run's live one
 * while a run exists, else the loaded one (NULL: none). */
const sk_lora *sk_engine_adapter(const sk_engine *e);
/* Sends SK_EV_ADAPTER_LOADED describing sk_engine_adapter(). */
void sk_engine_adapter_event(sk_engine *e);
/* Drops the kept conversation caches (before the model goes). */
void sk_engine_drop_caches(sk_engine *e);
/* Sends SK_EV_MEMORY. */
void sk_engine_memory(sk_engine *e);

/* engine_gen.c: runs a generate command on the engine thread. */
void sk_engine_run_generate(sk_engine *e, const sk_qcmd *q);

/* engine_train.c: the bridge to the training loop. */
void sk_engine_train_cmd(sk_engine *e, const sk_qcmd *q);
/* Runs one micro-step when a run is active; returns 1 if it did work. */
int sk_engine_train_tick(sk_engine *e);
void sk_engine_train_free(sk_engine *e);
/* The live adapter and the memory of the run (NULL / zeros without one). */
const sk_lora *sk_engine_train_adapter(const sk_engine *e);
void sk_engine_train_memory(const sk_engine *e, uint64_t *adapter, uint64_t *optimizer);
const char *sk_engine_train_dir(const sk_engine *e);
/* Replays RUN_DIR/metrics.jsonl (or a metrics file) as step and eval events. */
void sk_engine_replay_metrics(sk_engine *e, const char *path);

#endif
