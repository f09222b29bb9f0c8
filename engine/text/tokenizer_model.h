/* The tokenizer's internal representation, shared by its loaders
 * (tokenizer.json, GGUF, binary cache) and its encoder/decoders. Not a
 * public header: only engine/tokenizer*.c and engine/text/detok_stream.c use it.
 *
 * A loader fills the "source" fields (pieces, flags, merges in rank order,
 * options) and calls sk_tok_finish, which validates everything and builds
 * the lookup indexes; the cache stores only the source fields. */
#ifndef SK_TOKENIZER_MODEL_H
#define SK_TOKENIZER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/text/tokenizer.h"

/* Bounds on what a file may ask for, so bad input cannot force a huge
 * allocation: ids and merge counts far beyond any real vocabulary. */
#define SK_TOK_MAX_VOCAB (1 << 22)
#define SK_TOK_MAX_MERGES (1 << 24)
#define SK_TOK_MAX_PIECE 4096

/* Per-id flags. */
enum {
	SK_TOKF_PRESENT = 1,  /* the id has a piece */
	SK_TOKF_SPECIAL = 2,  /* skipped by decode(skip_special) */
	SK_TOKF_ADDED = 4,    /* matched in raw text before BPE */
	SK_TOKF_BYTE = 8,     /* <0xXX> byte-fallback token */
	SK_TOKF_MODEL = 16,   /* in the BPE model's vocabulary (not only added) */
};

/* Options (bit mask). */
enum {
	SK_TOKO_SPACE_TO_META = 1, /* normalizer: " " -> "▁" (U+2581) */
	SK_TOKO_BYTE_FALLBACK = 2,
	SK_TOKO_FUSE_UNK = 4,
	SK_TOKO_IGNORE_MERGES = 8, /* a segment that is a whole vocab entry is one token */
	SK_TOKO_ADD_BOS = 16,      /* default of the post-processor (informational) */
	SK_TOKO_META_TO_SPACE = 32 /* decoder: "▁" -> " " */
};

typedef struct {
	int32_t left, right, result;
} sk_tok_merge;

/* Open-addressing hash slots. */
typedef struct {
	uint64_t key;  /* (left << 32) | right; UINT64_MAX = empty */
	uint32_t rank;
	int32_t result;
} sk_tok_merge_slot;

/* Byte trie of the added tokens: edges kept in a hash keyed by (node, byte). */
typedef struct {
	uint32_t node;   /* parent node; UINT32_MAX = empty slot */
	uint32_t child;
	uint8_t byte;
} sk_tok_trie_edge;

struct sk_tokenizer {
	/* ---- source fields (stored in the cache) ---- */
	int32_t n_vocab;        /* ids are 0 .. n_vocab-1 */
	char *text;             /* pieces, concatenated (no separators) */
	uint32_t *off;          /* n_vocab + 1 offsets into text */
	uint8_t *flags;         /* SK_TOKF_* per id */
	size_t text_len;
	sk_tok_merge *merges;   /* in rank order (rank = index) */
	uint32_t n_merges;
	int32_t bos, eos, unk, pad; /* -1 when none */
	uint32_t options;       /* SK_TOKO_* */

	/* ---- derived by sk_tok_finish ---- */
	int32_t *vocab_slots;   /* piece -> id, open addressing, -1 = empty */
	size_t vocab_mask;
	sk_tok_merge_slot *merge_slots;
	size_t merge_mask;
	sk_tok_trie_edge *trie_edges;
	size_t trie_mask;
	int32_t *trie_token;    /* per node: added token id ending here, or -1 */
	uint32_t trie_nodes;
	uint8_t trie_first[256];/* bytes that start some added token */
	int32_t byte_id[256];   /* <0xXX> ids, or -1 */
	size_t max_decoded;     /* longest decoded piece, bytes */
	char *name;             /* for messages */
};

/* Allocates an empty tokenizer with n_vocab ids (pieces all absent). */
sk_tokenizer *sk_tok_alloc(int32_t n_vocab, const char *name);
/* Validates the pieces and builds the piece -> id index (done by
 * sk_tok_finish if not yet; loaders that resolve merges by text call it
 * first). */
int sk_tok_index_vocab(sk_tokenizer *t);
/* Validates the source fields and builds the indexes; on error frees
 * nothing (the caller frees t) and returns -1 with the message set. */
int sk_tok_finish(sk_tokenizer *t);

/* Piece lookups on a finished tokenizer. */
int32_t sk_tok_lookup(const sk_tokenizer *t, const char *s, size_t n);
static inline const char *sk_tok_piece(const sk_tokenizer *t, int32_t id, size_t *len)
{
	*len = t->off[id + 1] - t->off[id];
	return t->text + t->off[id];
}

/* UTF-8 helpers: length of the character at p (1 for an invalid byte);
 * validity of a whole string. */
size_t sk_tok_utf8_len(const unsigned char *p, size_t n);
int sk_tok_valid_utf8(const char *p, size_t n);
/* The byte of a "<0xXX>" piece, or -1. */
int sk_tok_byte_value(const char *p, size_t n);

/* 64-bit hash used for tables and as the cache's content key. */
uint64_t sk_tok_hash_bytes(const void *data, size_t len, uint64_t seed);

/* Builds a tokenizer from tokenizer.json text (no cache). */
sk_tokenizer *sk_tok_from_json(const char *json, size_t len, const char *name);

/* Binary cache: serialized source fields. */
int sk_tok_cache_write(const sk_tokenizer *t, const char *path, uint64_t src_hash, uint64_t src_size);
/* Returns NULL silently (no sk_fail message relied upon) when the file is
 * missing, stale or corrupt. */
sk_tokenizer *sk_tok_cache_read(const char *path, uint64_t src_hash, uint64_t src_size, const char *name);

/* Decoded text of one piece ("▁" -> " " when the decoder says so); writes at
 * most cap bytes, returns the full length. Byte tokens give their byte. */
size_t sk_tok_decoded_piece(const sk_tokenizer *t, int32_t id, char *out, size_t cap);

#endif
