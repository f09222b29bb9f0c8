/* Gemma tokenizer: SentencePiece-style BPE with byte fallback, "▁" for
 * spaces, added/special tokens matched before BPE. Loaded from a Hugging
 * Face tokenizer.json or from a GGUF's tokenizer.ggml.* vocabulary into one
 * internal representation. Encoding is exactly that of HF `tokenizers`. */
#ifndef SK_TOKENIZER_H
#define SK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

struct sk_gguf;

typedef struct {
	int32_t *v;
	size_t n, cap;
} sk_ids;

int sk_ids_push(sk_ids *ids, int32_t id);
void sk_ids_free(sk_ids *ids);

typedef struct sk_tokenizer sk_tokenizer;

/* tokenizer.json; a binary cache is kept in the user's cache directory. */
sk_tokenizer *sk_tokenizer_load(const char *tokenizer_json_path);
/* tokenizer.json text already in memory; no cache. name is for messages. */
sk_tokenizer *sk_tokenizer_load_mem(const char *json, size_t len, const char *name);
/* Any of: a tokenizer.json, a .gguf file, or a directory holding
 * tokenizer.json. */
sk_tokenizer *sk_tokenizer_open(const char *path);
sk_tokenizer *sk_tokenizer_from_gguf(const struct sk_gguf *g, const char *name);
void sk_tokenizer_free(sk_tokenizer *t);

int32_t sk_tokenizer_vocab_size(const sk_tokenizer *t);
int32_t sk_tokenizer_bos(const sk_tokenizer *t);   /* -1 when none */
int32_t sk_tokenizer_eos(const sk_tokenizer *t);
/* Id of a token given by its exact piece text (e.g. "<end_of_turn>"), or -1. */
int32_t sk_tokenizer_find(const sk_tokenizer *t, const char *piece);
/* Whether id is a special (control) token: "special" in tokenizer.json,
 * token type 3 (control) in GGUF. */
int sk_tokenizer_is_special(const sk_tokenizer *t, int32_t id);
/* Whether the file asks for <bos> first (post-processor / add_bos_token). */
int sk_tokenizer_add_bos_default(const sk_tokenizer *t);
/* Longest decoded text of one token, in bytes. */
size_t sk_tokenizer_max_piece_len(const sk_tokenizer *t);

/* Appends the ids of text[0..len) to out; add_bos puts <bos> first. */
int sk_tokenizer_encode(const sk_tokenizer *t, const char *text, size_t len, int add_bos, sk_ids *out);
/* Text of ids (malloc'd, NUL-terminated; special tokens written as their
 * pieces unless skip_special). An id out of range is an error. */
int sk_tokenizer_decode(const sk_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                        char **out, size_t *out_len);

/* Streaming decoder for generation: emits text only at UTF-8 character
 * boundaries, holding back an incomplete sequence until it completes. */
typedef struct {
	unsigned char pending[8];
	size_t npending;
} sk_detok_stream;

/* Feeds one id; writes the complete characters now available to out
 * (NUL-terminated) and returns their length, or -1 for an id out of range
 * or a cap too small. cap >= sk_tokenizer_max_piece_len(t) + 16 is always
 * enough (64 for Gemma, whose longest piece is 48 bytes). */
int sk_detok_stream_push(const sk_tokenizer *t, sk_detok_stream *s, int32_t id, char *out, size_t cap);
/* Flushes what is left (an incomplete sequence becomes U+FFFD). */
int sk_detok_stream_flush(sk_detok_stream *s, char *out, size_t cap);

#endif
