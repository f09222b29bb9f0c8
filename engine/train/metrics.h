/* The training metrics log RUN_DIR/metrics.jsonl: one JSON object per line,
 *   {"type":"train","step":10,"epoch":0.05,"loss":2.31,"lr":0.0002,
 *    "grad_norm":0.8,"tokens":4096,"tokens_per_s":812.5,"elapsed_s":50.2,
 *    "memory":{"weights":123,...}}
 *   {"type":"eval","step":100,"epoch":0.5,"eval_loss":2.1,"eval_tokens":9000,
 *    "elapsed_s":120.0}
 * Non-finite numbers are written as null (JSON has no NaN). Lines are
 * flushed as they are written and fsynced on sk_metrics_sync (at
 * checkpoints), so after a crash the log may end in a torn line, which the
 * reader skips; on resume the log is cut back to the checkpoint's step. */
#ifndef SK_METRICS_H
#define SK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define SK_METRICS_FILE "metrics.jsonl"

typedef struct {
	const char *name; /* memory category: "weights", "activations", ... */
	uint64_t bytes;
} sk_metric_mem;

typedef struct {
	int is_eval;
	int64_t step;
	double epoch;
	double elapsed_s;
	/* train */
	double loss, lr, grad_norm;
	int64_t tokens;
	double tokens_per_s;
	const sk_metric_mem *mem;
	size_t nmem;
	/* eval */
	double eval_loss;
	int64_t eval_tokens;
} sk_metric_rec;

typedef struct sk_metrics_log sk_metrics_log;

/* Opens RUN_DIR/metrics.jsonl for appending, after dropping every line
 * whose step is greater than keep_through_step (and torn or unreadable
 * lines); keep_through_step < 0 starts an empty log. The cut is an atomic
 * rewrite, so a crash during it loses nothing. */
sk_metrics_log *sk_metrics_open(const char *run_dir, int64_t keep_through_step);
/* Appends one line and flushes it to the kernel. */
int sk_metrics_append(sk_metrics_log *m, const sk_metric_rec *r);
/* fsync: the lines written so far survive a power loss. */
int sk_metrics_sync(sk_metrics_log *m);
/* Syncs and closes; returns -1 if a write had failed. */
int sk_metrics_close(sk_metrics_log *m);

/* Series read back for plotting. Missing or null numbers are NaN. */
typedef struct {
	size_t n;            /* train records */
	int64_t *step;
	double *loss, *lr, *grad_norm;
	size_t neval;        /* eval records */
	int64_t *eval_step;
	double *eval_loss;
	size_t bad_lines;    /* lines that are not a record (torn tail included) */
} sk_metrics_series;

/* Reads a metrics.jsonl file (at most 1 GiB, lines of at most 1 MiB). An
 * empty log is not an error here (n == neval == 0). */
int sk_metrics_read(const char *path, sk_metrics_series *out);
void sk_metrics_series_free(sk_metrics_series *s);

#endif
