/* Batches of a tokenized dataset for training and evaluation: held-out
 * split, seeded shuffle per epoch, truncation, padding, optional packing,
 * and a position that can be saved and restored so a resumed run sees
 * exactly the batches it would have seen.
 *
 * Determinism. All randomness comes from splitmix64 keyed by the seed and a
 * stream number; the order of epoch e is a Fisher-Yates permutation of the
 * training examples drawn from stream e, so it depends only on (seed, e, the
 * training set): the same seed gives the same order, each epoch a new one,
 * and a resumed run rebuilds it without replaying earlier epochs. The eval
 * split uses its own stream (UINT64_MAX).
 *
 * Eval split. sk_split_make takes round(frac * n) examples (at least 1 when
 * frac > 0 and n >= 2, and always leaving at least 1 for training) chosen by
 * a permutation of all n examples, before any training shuffle; both lists
 * are returned in ascending (file) order, so the split does not depend on
 * the batch size, packing or epochs.
 *
 * Rows. Without packing a row is one example. With packing a row holds
 * consecutive examples of the epoch's order while they fit in max_len
 * (greedy, order kept; an example that does not fit starts the next row).
 * Each example keeps its own mask, so the first token of every packed
 * example (its <bos>) is never a target: nothing is learnt across the seam.
 * Attention, however, is plainly causal over the whole row, as in TRL's
 * simple packing: a token may attend to the earlier examples of its row,
 * and positions run 0..len-1 over the row. seg[] tells which example each
 * token belongs to, for a caller that wants block-diagonal attention or
 * per-example positions instead. An example longer than max_len (possible
 * only when the dataset was loaded with a larger or no limit) is cut to its
 * first max_len tokens.
 *
 * Batches. A batch has up to batch_size rows; the last batch of an epoch may
 * have fewer (batches never mix epochs). It is padded to its longest row
 * (padding per batch) with pad_id; pads have target 0 and seg -1. */
#ifndef SK_BATCHER_H
#define SK_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "engine/train/dataset.h"

typedef struct {
	size_t *train, ntrain;
	size_t *eval, neval;
} sk_split;

/* Splits example indices 0..n-1; frac in [0, 1). */
int sk_split_make(size_t n, double frac, uint64_t seed, sk_split *out);
void sk_split_free(sk_split *s);

typedef struct {
	size_t batch_size; /* rows per batch, >= 1 */
	size_t max_len;    /* row capacity; required with packing; 0: rows as long as their example */
	int packing;
	int shuffle;       /* 0: the subset's order every epoch (evaluation) */
	uint64_t seed;
	size_t epochs;     /* >= 1 */
	int32_t pad_id;    /* Gemma: 0 */
} sk_batcher_opts;

/* batch 1, no packing, shuffle on, seed 0, 1 epoch, pad 0. */
void sk_batcher_opts_init(sk_batcher_opts *o);

/* Where the next batch starts: index-th example of epoch's order. A saved
 * position given back to sk_batcher_seek continues exactly. */
typedef struct {
	size_t epoch, index;
} sk_batch_pos;

typedef struct {
	size_t rows, cols;  /* rows x cols, row-major */
	int32_t *ids;       /* pad_id after each row's length */
	uint8_t *target;    /* the dataset's mask (see dataset.h); 0 on pads */
	int32_t *seg;       /* example number within the row (0, 1, ...); -1 on pads */
	size_t *len;        /* tokens in each row before padding */
	size_t *ex;         /* dataset indices of the examples, in order */
	size_t nex;
	size_t *row_ex;     /* rows + 1: row r holds ex[row_ex[r] .. row_ex[r+1]) */
	size_t tokens, targets; /* real tokens and target tokens in the batch */
	sk_batch_pos pos;   /* where this batch started */
	sk_batch_pos next;  /* where the following one starts (save this) */
} sk_batch;

typedef struct sk_batcher sk_batcher;

/* Batches over the examples subset[0..n) of ds (NULL subset: all of ds),
 * which must outlive the batcher. Copies subset. */
sk_batcher *sk_batcher_new(const sk_dataset *ds, const size_t *subset, size_t n, const sk_batcher_opts *o);
void sk_batcher_free(sk_batcher *b);

/* Fills *out with the next batch (buffers owned by the batcher, valid until
 * the next call). Returns 1, 0 when every epoch is done, -1 on error. */
int sk_batcher_next(sk_batcher *b, sk_batch *out);
sk_batch_pos sk_batcher_tell(const sk_batcher *b);
/* Continues from pos (as saved from sk_batch.next or sk_batcher_tell). */
int sk_batcher_seek(sk_batcher *b, sk_batch_pos pos);
/* Batches in one epoch (with packing it depends on the epoch's order), and
 * in all epochs; for schedules and ETAs. -1 on error. */
long long sk_batcher_epoch_batches(sk_batcher *b, size_t epoch);
long long sk_batcher_total_batches(sk_batcher *b);
/* The order of epoch e: writes n dataset indices to out. */
int sk_batcher_epoch_order(sk_batcher *b, size_t epoch, size_t *out);

#endif
