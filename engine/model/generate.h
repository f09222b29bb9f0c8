/* Sampling and generation: several sequences decoded together in one batch,
 * each with its own sampler state and adapter flag; tokens stream out
 * through a callback as soon as they are sampled. */
#ifndef SK_GENERATE_H
#define SK_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/model.h"

typedef struct {
	int greedy;            /* argmax, ignoring the rest */
	float temperature;     /* 1 = unchanged */
	int top_k;             /* 0 = off */
	float top_p;           /* 1 = off */
	float min_p;           /* 0 = off */
	float repeat_penalty;  /* 1 = off (CTRL-style, over the whole sequence so far) */
	uint64_t seed;
} sk_sampling;

/* temperature 1, top_k 64, top_p 0.95, min_p 0, repeat_penalty 1, seed 3407
 * (Gemma's generation_config defaults). */
void sk_sampling_defaults(sk_sampling *s);

/* One sampler per sequence: its own seeded RNG (xoshiro256** seeded through
 * splitmix64), so the same seed gives the same text whatever else is in
 * the batch. */
typedef struct sk_sampler sk_sampler;
sk_sampler *sk_sampler_new(const sk_sampling *s, int32_t vocab);
void sk_sampler_free(sk_sampler *s);
/* history: ids of the sequence so far (for the repetition penalty).
 * logits is modified in place. */
int32_t sk_sampler_sample(sk_sampler *s, float *logits, const int32_t *history, size_t n_history);

/* A token still in the running after the filters. */
typedef struct {
	float logit;
	int32_t id;
} sk_sample_cand;

/* The filters of a non-greedy draw, in transformers' order: repetition
 * penalty, temperature, top-k, top-p, min-p. logits is left scaled by the
 * temperature with every removed token at -inf (NaN counts as removed; +inf
 * tokens share all the mass). Returns the number of tokens kept and, in
 * *cand (may be NULL; owned by the sampler, valid until its next call), the
 * kept tokens, the most likely first (all sorted, most likely first, when
 * top-p is on); -1 when every token was masked out. */
int sk_sampler_filter(sk_sampler *s, float *logits, const int32_t *history, size_t n_history,
                      sk_sample_cand **cand);
/* Restarts the RNG stream as if the sampler were new with this seed. */
void sk_sampler_reseed(sk_sampler *s, uint64_t seed);
/* The next number of the sampler's RNG, uniform in [0, 1). */
double sk_sampler_uniform(sk_sampler *s);
const sk_sampling *sk_sampler_settings(const sk_sampler *s);

typedef struct {
	const int32_t *prompt;
	size_t n_prompt;
	int max_new;           /* tokens to generate at most */
	int adapter_on;
	int ignore_eos;        /* mask the stop tokens out and always produce max_new tokens */
	sk_sampling sampling;
} sk_gen_request;

typedef struct {
	int n_prompt_tokens, n_generated;
	int n_reused;                /* prompt tokens a kept cache already held (not prefilled again) */
	double prefill_s, decode_s;  /* wall time of the prefill and decode phases */
	int stopped_by;              /* 0 max_new, 1 a stop token, 2 the callback */
} sk_gen_stats;

/* Called for every sampled token of request i: text is the UTF-8 that became
 * complete with it (possibly ""), from a streaming decoder; NULL when the
 * model has no tokenizer. Return non-zero to stop request i. */
typedef int (*sk_gen_token_fn)(void *ctx, int i, int32_t id, const char *text);

/* Generates for n requests together (one KV cache slot each, from a fresh
 * cache). Stop tokens: the config's eos ids plus <end_of_turn> when the
 * tokenizer has it; they end a request and are not passed to the callback.
 * stats (may be NULL) gets one entry per request. */
/* The prefill is one sk_model_forward over every prompt (ragged items), then
 * one forward per step with one token per live request. The KV cache holds
 * the longest prompt + max_new (at most max_position_embeddings); a prompt
 * longer than the context is an error before any work, and a request that
 * reaches the context's end stops as if by max_new. Text an unfinished UTF-8
 * character still holds back is flushed (as U+FFFD) with a request's last
 * token when it ends by max_new, and dropped when a stop token or the
 * callback ends it. Returns 0, or -1 with sk_error() (stats then hold what
 * was done). */
/* Prompt tokens a prefill forward takes at most (longer prompts go in
 * chunks; tokens <= 0: the default, 1,024). Process-wide; for tests. */
void sk_generate_prefill_chunk(int tokens);
/* Forwards all but the last chunk of a long prompt (it->n over the chunk
 * size) into kv, their logits dropped, and leaves the rest in *it: what
 * every prefill does first, so that a forward's workspace is sized for a
 * chunk, not for the prompt. 0, or -1 with sk_error(). */
int sk_prefill_leading(sk_model *m, sk_kv_cache *kv, sk_batch_item *it);

int sk_generate(sk_model *m, const sk_gen_request *reqs, int n, sk_gen_token_fn on_token, void *ctx,
                sk_gen_stats *stats);

/* Conversations whose KV caches outlive a generation: slot s remembers the
 * ids its cache holds, so the next request on it prefills only what the
 * new prompt adds after the longest prefix it shares with them (a chat
 * turn: the new messages). The cache is dropped when the prompt departs
 * from it further back than the caches can be cut (sk_kv_cache_keep), when
 * the request's adapter flag differs from the slot's last, and by
 * sk_gen_cache_forget. */
typedef struct sk_gen_cache sk_gen_cache;
/* max_ctx 0: the model's context. NULL + sk_error(). */
sk_gen_cache *sk_gen_cache_new(sk_model *m, int n_slots, int max_ctx);
void sk_gen_cache_free(sk_gen_cache *c);
/* Empties one slot (-1: every slot), e.g. when the adapter's weights changed. */
void sk_gen_cache_forget(sk_gen_cache *c, int slot);
int sk_gen_cache_slots(const sk_gen_cache *c);
/* Bytes of K and V the cache holds allocated. */
uint64_t sk_gen_cache_bytes(const sk_gen_cache *c);
/* sk_generate on kept caches: request i continues in slot slots[i]
 * (distinct slots). Requests longer than the cache's context fail as in
 * sk_generate. */
int sk_generate_cached(sk_model *m, sk_gen_cache *c, const int *slots, const sk_gen_request *reqs, int n,
                       sk_gen_token_fn on_token, void *ctx, sk_gen_stats *stats);

#endif
