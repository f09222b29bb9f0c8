/* Training checkpoints: RUN_DIR/checkpoint-STEP/ holds the adapter (a
 * PEFT-loadable directory, adapter_write.h), the optimizer state (written
 * by a callback) and trainer_state.json, with a `complete` marker written
 * last; the whole directory is committed atomically (atomic_dir.h). The
 * final adapter goes to RUN_DIR/adapter/.
 *
 * Resume takes the newest checkpoint-N that is complete: named exactly
 * checkpoint-DIGITS, a directory, marker present, trainer_state.json parses
 * with step N, and every file listed in it exists with the recorded size.
 * Anything else (temporary dirs of an interrupted save, a directory without
 * the marker, a garbled state) is ignored, reported through the log
 * callback and left on disk for a human to look at: deleting what we do not
 * understand is not this code's call. */
#ifndef SK_CHECKPOINT_H
#define SK_CHECKPOINT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/train/adapter_write.h"

#define SK_CKPT_MAX_RNG 16
#define SK_CKPT_MAX_RNG_BYTES (1u << 20)
#define SK_CKPT_MAX_LOSS_HISTORY 100000

typedef struct {
	char name[48];       /* "data", "dropout", ... */
	unsigned char *data; /* saved as a hex string */
	size_t len;
} sk_ckpt_rng;

typedef struct {
	int64_t step;        /* optimizer steps done */
	double epoch;        /* fractional epochs done */
	int64_t data_epoch;  /* epoch the data loader is in */
	int64_t data_pos;    /* examples of that epoch already consumed */
	int64_t tokens_seen;
	double elapsed_s;    /* training time so far */
	sk_ckpt_rng rng[SK_CKPT_MAX_RNG];
	int nrng;
	json_t *options;     /* the run's options (an object); may be NULL */
	int64_t *loss_steps; /* loss history tail: step and loss */
	double *losses;      /* non-finite losses are stored as null, read back as NaN */
	size_t nloss;
} sk_trainer_state;

/* Frees what sk_checkpoint_read_state allocated (rng data, options,
 * history) and zeroes the struct. */
void sk_trainer_state_free(sk_trainer_state *st);

/* Writes the optimizer state into dir (a file of its own choosing). */
typedef int (*sk_ckpt_optimizer_fn)(void *ctx, const char *dir);
/* Receives one line of information ("ignoring ...", "removed ..."). */
typedef void (*sk_ckpt_log_fn)(void *ctx, const char *line);

typedef struct {
	const sk_adapter_info *info;
	const sk_adapter_pair *pairs;
	size_t npairs;
	sk_ckpt_optimizer_fn save_optimizer; /* NULL: no optimizer file */
	void *optimizer_ctx;
	const sk_trainer_state *state;
} sk_checkpoint;

#define SK_CKPT_STATE_FILE "trainer_state.json"
#define SK_CKPT_MARKER "complete"

/* Writes RUN_DIR/checkpoint-STEP atomically (replacing one of the same
 * step). *out_dir (optional) receives its path, malloc'd. */
int sk_checkpoint_save(const char *run_dir, const sk_checkpoint *c, char **out_dir);

/* Keeps the newest `keep` complete checkpoints and deletes older complete
 * ones (renamed away first, so a crash mid-delete never leaves a directory
 * that looks complete). keep < 1 keeps everything. Returns the number
 * deleted, or -1. */
int sk_checkpoint_prune(const char *run_dir, int keep, sk_ckpt_log_fn log, void *ctx);

/* The newest complete checkpoint: 1 with *dir (malloc'd) and *step set,
 * 0 when there is none (or RUN_DIR does not exist), -1 on error. */
int sk_checkpoint_find_latest(const char *run_dir, char **dir, int64_t *step, sk_ckpt_log_fn log, void *ctx);

/* Checks a checkpoint directory as discovery does: 0 when complete, else -1
 * + sk_error() saying why. */
int sk_checkpoint_verify(const char *ckpt_dir, int64_t expect_step);

/* Reads CKPT_DIR/trainer_state.json (every field bounds-checked). */
int sk_checkpoint_read_state(const char *ckpt_dir, sk_trainer_state *st);
/* The same from text in memory; name prefixes errors. */
int sk_checkpoint_parse_state(const char *json, size_t len, const char *name, sk_trainer_state *st);

/* Writes RUN_DIR/adapter atomically: the final adapter of a run. */
int sk_checkpoint_save_final(const char *run_dir, const sk_adapter_info *info, const sk_adapter_pair *pairs,
			     size_t n);

#endif
