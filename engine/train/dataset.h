/* Training data: a JSONL file of conversations, rendered through the Gemma
 * chat template into token ids and a per-token loss mask.
 *
 * One conversation per line, in any of three shapes (extra keys ignored):
 *   {"messages": [{"role": "system"|"user"|"assistant"|"model", "content": "..."}, ...]}
 *   {"conversations": [{"from": "system"|"human"|"user"|"gpt"|"assistant"|"model", "value": "..."}, ...]}
 *   {"text": "..."}
 * When several are present, "messages" wins over "conversations" over
 * "text". Conversations go through sk_chat_render without a generation
 * prompt: an optional leading system message, then user and assistant turns
 * alternating, starting with user and ending with assistant. "text" is
 * tokenized with <bos> first and no <eos>; all its tokens are trainable
 * whatever the loss mode. Blank lines are ignored; a UTF-8 byte order mark
 * at the start of the file is skipped.
 *
 * The loss mask. For an example of n tokens ids[0..n), target[i] (one byte
 * per token) says whether the token AT position i is a label: the loss
 * includes -log p(ids[i] | ids[0..i)), i.e. the logits computed at position
 * i-1 scored against ids[i] (the usual causal-LM shift; in Hugging Face
 * terms labels[i] = target[i] ? ids[i] : -100, shifted inside the model).
 * target[0] is always 0, since nothing predicts the first token.
 *   SK_LOSS_ALL:       target[i] = 1 for every i >= 1 (the seed run's choice).
 *   SK_LOSS_RESPONSES: target[i] = 1 for the model turns' content tokens and
 *                      their <end_of_turn> (SK_CHAT_LABEL_RESPONSE from the
 *                      chat template); 0 for <bos>, system and user text,
 *                      the turn scaffolding and the "\n" after <end_of_turn>.
 *
 * Truncation: max_len > 0 keeps the first max_len tokens of a longer example
 * (and their mask) and drops the rest; the end of the conversation is lost,
 * never its start. An example left with no target token (possible with
 * SK_LOSS_RESPONSES when truncation cuts every response) is dropped and
 * counted in stats.no_target.
 *
 * Bad rows (invalid JSON, not an object, none of the three keys, missing or
 * non-string fields, unknown roles, roles out of order, a conversation not
 * ending with the assistant, empty or whitespace-only content, invalid
 * UTF-8, a line longer than max_line bytes) follow the policy:
 *   SK_BAD_ROWS_SKIP: skipped and counted; sk_dataset_bad_rows_message gives
 *                     one line with the count and the first few line numbers
 *                     and reasons.
 *   SK_BAD_ROWS_FAIL: loading stops at the first one with
 *                     "FILE:LINE: what is wrong".
 * Whole-file errors whatever the policy: the file cannot be read, it holds a
 * NUL byte or starts with a UTF-16/UTF-32 byte order mark (not UTF-8 text),
 * it holds no conversation (empty, only blank lines, or only bad rows). */
#ifndef SK_DATASET_H
#define SK_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

typedef enum {
	SK_LOSS_ALL = 0,
	SK_LOSS_RESPONSES = 1,
} sk_loss_on;

typedef enum {
	SK_BAD_ROWS_SKIP = 0,
	SK_BAD_ROWS_FAIL = 1,
} sk_bad_rows;

/* "all" / "responses"; "skip" / "fail". Errors name the value. */
int sk_loss_on_parse(const char *s, sk_loss_on *out);
int sk_bad_rows_parse(const char *s, sk_bad_rows *out);

/* The default bound on one line: 16 MiB. */
#define SK_DATASET_MAX_LINE ((size_t)16 << 20)
/* How many bad rows are remembered with their reason. */
#define SK_DATASET_BAD_KEPT 5

typedef struct {
	sk_loss_on loss_on;
	sk_bad_rows bad_rows;
	size_t max_len;  /* 0: no truncation */
	size_t max_line; /* 0: SK_DATASET_MAX_LINE */
} sk_dataset_opts;

/* opts with the defaults: loss on all, skip bad rows, no truncation. */
void sk_dataset_opts_init(sk_dataset_opts *o);

typedef struct {
	size_t off; /* into the dataset's token pool */
	size_t n;   /* tokens kept (after truncation) */
	size_t full_n; /* tokens before truncation */
	size_t line;   /* 1-based line in the file; 0 when added by sk_dataset_add */
	size_t turns;  /* messages, system included; 1 for "text" */
	size_t ntargets;
} sk_example;

typedef struct {
	size_t lines;         /* lines read, blank ones included */
	size_t conversations; /* examples kept */
	size_t turns;         /* messages in kept examples, system included */
	size_t system_msgs;   /* kept examples that have a system message */
	size_t tokens;        /* after truncation */
	size_t targets;       /* target tokens (sum of the masks) */
	size_t min_len, max_len; /* per example, after truncation */
	size_t max_full_len;  /* longest example before truncation */
	double mean_len;
	size_t truncated;     /* examples cut at max_len */
	size_t no_target;     /* examples dropped for having no target token */
	size_t bad;           /* bad rows skipped */
	size_t fmt_messages, fmt_sharegpt, fmt_text;
} sk_dataset_stats;

typedef struct {
	size_t line;
	char reason[256];
} sk_dataset_bad_row;

typedef struct {
	char *path;
	sk_example *ex;
	size_t n, cap;
	int32_t *ids;    /* token pool */
	uint8_t *target; /* mask pool, parallel to ids */
	size_t pool_n, pool_cap;
	sk_dataset_stats stats;
	sk_dataset_bad_row bad[SK_DATASET_BAD_KEPT]; /* the first bad rows */
	size_t nbad_kept;
} sk_dataset;

/* Reads and tokenizes the whole file. Returns NULL with sk_error() set on a
 * whole-file error, or (policy fail) at the first bad row. */
sk_dataset *sk_dataset_load(const char *path, const sk_tokenizer *tok, const sk_dataset_opts *opts);
void sk_dataset_free(sk_dataset *ds);

/* An empty dataset, filled with sk_dataset_add (for tests and for callers
 * that build examples themselves). name is used in messages. */
sk_dataset *sk_dataset_new(const char *name);
/* Appends a copy of one example (target may be NULL: all but the first
 * token are targets). */
int sk_dataset_add(sk_dataset *ds, const int32_t *ids, const uint8_t *target, size_t n, size_t line);

/* Example i's tokens and mask (pointers into the dataset, valid while it
 * lives). Returns the token count, 0 for i out of range. */
size_t sk_dataset_example(const sk_dataset *ds, size_t i, const int32_t **ids, const uint8_t **target);

/* "FILE: skipped 3 bad rows of 120: line 2: invalid JSON ...; line 5: ...;
 * and 1 more" in buf (truncated to cap); "" when there were none. Returns
 * the number of bad rows. */
size_t sk_dataset_bad_rows_message(const sk_dataset *ds, char *buf, size_t cap);
/* One line of statistics for logs and the UI:
 * "120 conversations, 412 turns, 35012 tokens (20111 targets), length mean
 * 291.8 max 1002, 2 truncated". */
void sk_dataset_stats_line(const sk_dataset *ds, char *buf, size_t cap);

/* ---- one row, without tokenizing (used by the loader, and fuzzed) ---- */

typedef enum {
	SK_ROW_MESSAGES = 0,
	SK_ROW_SHAREGPT = 1,
	SK_ROW_TEXT = 2,
} sk_row_format;

typedef struct {
	sk_row_format format;
	void *json;         /* the parsed row (json_t *), owns the strings */
	size_t nmsgs;
	sk_chat_msg *msgs;  /* nmsgs, malloc'd, for conversations */
	const char *text;   /* for SK_ROW_TEXT */
	size_t text_len;
} sk_dataset_row;

/* Parses one line (without its newline). On a bad row returns -1 with the
 * reason in sk_error() (no file or line prefix). */
int sk_dataset_row_parse(const char *line, size_t len, sk_dataset_row *row);
void sk_dataset_row_free(sk_dataset_row *row);

#endif
