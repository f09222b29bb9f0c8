/* Batched generation: every prompt prefilled in one forward (long prompts
 * first in chunks of 1,024 tokens, so that a forward's
 * activations stay small whatever the context), then one token
 * per live request per step, each request with its own sampler, cache slot
 * and adapter flag; text streams out through a UTF-8-safe decoder. On a
 * backend that draws tokens itself (the GPU) the logits never leave it:
 * each step sends the sampler's settings and one uniform number from the
 * request's own RNG, and gets the ids back. Caches may outlive a call
 * (sk_gen_cache), so a chat turn prefills only its new tokens. */
#include "engine/model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/error.h"
#include "engine/i18n.h"

#define SK_MAX_STOP (SK_MAX_EOS + 1)
/* prompt tokens a forward at most: a forward's workspace grows with its
 * rows (the MLP's are 16,384 floats a row in E4B), its speed hardly does
 * past a thousand rows */
#define SK_PREFILL_CHUNK 1024
static int prefill_chunk = SK_PREFILL_CHUNK;

void sk_generate_prefill_chunk(int tokens)
{
	prefill_chunk = tokens > 0 ? tokens : SK_PREFILL_CHUNK;
}

int sk_prefill_leading(sk_model *m, sk_kv_cache *kv, sk_batch_item *it)
{
	if (it->n <= prefill_chunk)
		return 0;
	float *drop = malloc((size_t)sk_model_vocab(m) * sizeof *drop);
	if (!drop)
		return sk_fail(_("generate: out of memory"));
	int rc = 0;
	while (rc == 0 && it->n > prefill_chunk) {
		sk_batch_item c = *it;
		c.n = prefill_chunk;
		c.all_logits = 0;
		if ((rc = sk_model_forward(m, kv, &c, 1, drop)) == 0) {
			it->ids += prefill_chunk;
			it->n -= prefill_chunk;
		}
	}
	free(drop);
	return rc;
}

struct sk_gen_cache {
	sk_model *m;
	sk_kv_cache *kv;
	int n_slots, max_ctx;
	int32_t **ids;      /* per slot: the ids its cache holds */
	size_t *n_ids, *cap_ids;
	int *adapter_on;    /* per slot: the flag its cache was made with */
};

typedef struct {
	sk_sampler *sampler;
	int32_t *hist;      /* prompt then generated ids */
	size_t n_hist;
	sk_detok_stream ds;
	int live;
	int32_t next;       /* the token to feed at the next step */
} sk_gen_seq;

static double sk_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int sk_stop_ids(const sk_model *m, int32_t vocab, int32_t *stop)
{
	const sk_config *c = sk_model_config(m);
	int n = 0;
	for (int i = 0; i < c->n_eos && i < SK_MAX_EOS; i++)
		if (c->eos_token_ids[i] >= 0 && c->eos_token_ids[i] < vocab)
			stop[n++] = c->eos_token_ids[i];
	const sk_tokenizer *t = sk_model_tokenizer(m);
	int32_t eot = t ? sk_tokenizer_find(t, "<end_of_turn>") : -1;
	if (eot >= 0 && eot < vocab && !sk_config_is_eos(c, eot))
		stop[n++] = eot;
	return n;
}

static int sk_is_stop(const int32_t *stop, int n, int32_t id)
{
	for (int i = 0; i < n; i++)
		if (stop[i] == id)
			return 1;
	return 0;
}

/* Everything the requests ask for is checked before any work. */
static int sk_check_requests(const sk_gen_cache *c, const int *slots, const sk_gen_request *reqs, int n)
{
	if (n <= 0 || !reqs)
		return sk_fail(_("generate: no requests"));
	if (n > c->n_slots)
		return sk_fail(_("generate: %d requests for %d cache slots"), n, c->n_slots);
	for (int i = 0; i < n; i++) {
		const sk_gen_request *r = &reqs[i];
		if (slots[i] < 0 || slots[i] >= c->n_slots)
			return sk_fail(_("request %d: cache slot %d is out of range"), i + 1, slots[i]);
		for (int j = 0; j < i; j++)
			if (slots[j] == slots[i])
				return sk_fail(_("request %d: cache slot %d is taken by request %d"), i + 1, slots[i], j + 1);
		if (!r->prompt || r->n_prompt == 0)
			return sk_fail(_("request %d: the prompt is empty"), i + 1);
		if (r->n_prompt > (size_t)c->max_ctx)
			return sk_fail(_("request %d: the prompt of %zu tokens exceeds the context of %d tokens"),
			               i + 1, r->n_prompt, c->max_ctx);
		if (r->max_new < 0)
			return sk_fail(_("request %d: negative max_new %d"), i + 1, r->max_new);
	}
	return 0;
}

sk_gen_cache *sk_gen_cache_new(sk_model *m, int n_slots, int max_ctx)
{
	int32_t max_pos = m ? sk_model_config(m)->max_position_embeddings : 0;
	if (!m || max_pos <= 0) {
		sk_fail(_("generate: the model has no context length"));
		return NULL;
	}
	if (max_ctx <= 0 || max_ctx > max_pos)
		max_ctx = max_pos;
	sk_gen_cache *c = calloc(1, sizeof *c);
	if (!c) {
		sk_fail(_("generate: out of memory"));
		return NULL;
	}
	c->m = m;
	c->n_slots = n_slots;
	c->max_ctx = max_ctx;
	c->ids = calloc((size_t)n_slots, sizeof *c->ids);
	c->n_ids = calloc((size_t)n_slots, sizeof *c->n_ids);
	c->cap_ids = calloc((size_t)n_slots, sizeof *c->cap_ids);
	c->adapter_on = calloc((size_t)n_slots, sizeof *c->adapter_on);
	if (!c->ids || !c->n_ids || !c->cap_ids || !c->adapter_on) {
		sk_gen_cache_free(c);
		sk_fail(_("generate: out of memory"));
		return NULL;
	}
	c->kv = sk_kv_cache_new(m, n_slots, max_ctx);
	if (!c->kv) {
		sk_gen_cache_free(c);
		return NULL;
	}
	return c;
}

void sk_gen_cache_free(sk_gen_cache *c)
{
	if (!c)
		return;
	for (int i = 0; c->ids && i < c->n_slots; i++)
		free(c->ids[i]);
	free(c->ids);
	free(c->n_ids);
	free(c->cap_ids);
	free(c->adapter_on);
	sk_kv_cache_free(c->kv);
	free(c);
}

void sk_gen_cache_forget(sk_gen_cache *c, int slot)
{
	for (int i = 0; i < c->n_slots; i++)
		if (slot < 0 || slot == i) {
			sk_kv_cache_clear(c->kv, i);
			c->n_ids[i] = 0;
		}
}

uint64_t sk_gen_cache_bytes(const sk_gen_cache *c)
{
	return sk_kv_cache_bytes(c->kv);
}

int sk_gen_cache_slots(const sk_gen_cache *c)
{
	return c->n_slots;
}

static int slot_push(sk_gen_cache *c, int s, int32_t id)
{
	if (c->n_ids[s] == c->cap_ids[s]) {
		size_t nc = c->cap_ids[s] ? 2 * c->cap_ids[s] : 256;
		int32_t *p = realloc(c->ids[s], nc * sizeof *p);
		if (!p)
			return sk_fail(_("generate: out of memory"));
		c->ids[s] = p;
		c->cap_ids[s] = nc;
	}
	c->ids[s][c->n_ids[s]++] = id;
	return 0;
}

/* How much of request r slot s can keep: the longest prefix its ids share
 * with the prompt, short of the prompt's last token (whose logits are
 * needed), if the cache can be cut back to it; the slot is cut there. */
static size_t slot_reuse(sk_gen_cache *c, int s, const sk_gen_request *r)
{
	size_t k = 0, n = c->n_ids[s];
	if (c->adapter_on[s] == (r->adapter_on != 0))
		while (k < n && k + 1 < r->n_prompt && c->ids[s][k] == r->prompt[k])
			k++;
	k = (size_t)sk_kv_cache_keep(c->kv, s, (int)k);
	c->n_ids[s] = k;
	c->adapter_on[s] = r->adapter_on != 0;
	return k;
}

/* The draw settings of one step of request r (the GPU's sampler). */
static void step_draw(sk_sampler *smp, const sk_gen_request *r, sk_draw *d)
{
	const sk_sampling *sp = sk_sampler_settings(smp);
	d->greedy = sp->greedy || sp->temperature <= 0.0f;
	d->temperature = sp->temperature;
	d->top_k = sp->top_k;
	d->top_p = sp->top_p;
	d->min_p = sp->min_p;
	d->repeat_penalty = sp->repeat_penalty;
	/* the CPU sampler draws one number a token, greedy none: the same stream */
	d->u = d->greedy ? 0.0 : sk_sampler_uniform(smp);
	(void)r;
}

int sk_generate_cached(sk_model *m, sk_gen_cache *c, const int *slots, const sk_gen_request *reqs, int n,
                       sk_gen_token_fn on_token, void *ctx, sk_gen_stats *stats)
{
	if (!m || !c || c->m != m)
		return sk_fail(_("generate: no model, or a cache of another model"));
	if (sk_check_requests(c, slots, reqs, n) != 0)
		return -1;
	int max_ctx = c->max_ctx;
	int32_t vocab = sk_model_vocab(m);
	const sk_tokenizer *tok = sk_model_tokenizer(m);
	int32_t stop[SK_MAX_STOP];
	int n_stop = sk_stop_ids(m, vocab, stop);
	/* the GPU draws unless a request bans the stop tokens (--ignore-eos): that needs the logits */
	int draw = sk_model_can_draw(m);
	for (int i = 0; i < n; i++)
		if (reqs[i].ignore_eos && n_stop > 0)
			draw = 0;

	int rc = -1;
	sk_gen_seq *seqs = calloc((size_t)n, sizeof *seqs);
	sk_batch_item *items = calloc((size_t)n, sizeof *items);
	sk_draw *draws = calloc((size_t)n, sizeof *draws);
	int32_t *drawn = calloc((size_t)n, sizeof *drawn);
	int *item_req = calloc((size_t)n, sizeof *item_req);
	size_t *reused = calloc((size_t)n, sizeof *reused);
	float *logits = draw ? NULL : malloc((size_t)n * (size_t)vocab * sizeof *logits);
	size_t text_cap = (tok ? sk_tokenizer_max_piece_len(tok) : 0) + 64;
	char *text = malloc(text_cap);
	if (!seqs || !items || !draws || !drawn || !item_req || !reused || (!draw && !logits) || !text) {
		sk_fail(_("generate: out of memory"));
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const sk_gen_request *r = &reqs[i];
		sk_gen_seq *q = &seqs[i];
		q->sampler = sk_sampler_new(&r->sampling, vocab);
		q->hist = malloc((r->n_prompt + (size_t)r->max_new) * sizeof *q->hist);
		if (!q->sampler || !q->hist) {
			if (q->sampler)
				sk_fail(_("generate: out of memory"));
			goto out;
		}
		memcpy(q->hist, r->prompt, r->n_prompt * sizeof *q->hist);
		q->n_hist = r->n_prompt;
		q->live = r->max_new > 0;
		reused[i] = slot_reuse(c, slots[i], r);
		if (stats)
			stats[i] = (sk_gen_stats){ .n_prompt_tokens = (int)(r->n_prompt - reused[i]),
				                   .n_reused = (int)reused[i] };
	}

	double t0 = sk_now(), t_prefill_end = t0;
	/* all but the last chunk of each long prompt, one request at a time */
	for (int i = 0; i < n; i++) {
		if (!seqs[i].live)
			continue;
		const int32_t *from = reqs[i].prompt + reused[i];
		sk_batch_item it = { .seq = slots[i], .ids = from, .n = (int)(reqs[i].n_prompt - reused[i]),
			             .adapter_on = reqs[i].adapter_on, .all_logits = 0 };
		if (sk_prefill_leading(m, c->kv, &it) != 0) {
			sk_gen_cache_forget(c, it.seq); /* some chunks may be in the cache */
			goto out;
		}
		for (const int32_t *p = from; p < it.ids; p++)
			if (slot_push(c, it.seq, *p) != 0)
				goto out;
		reused[i] += (size_t)(it.ids - from);
	}
	int step = 0;
	for (;;) {
		int n_items = 0;
		for (int i = 0; i < n; i++) {
			if (!seqs[i].live)
				continue;
			items[n_items] = (sk_batch_item){
				.seq = slots[i],
				.ids = step == 0 ? reqs[i].prompt + reused[i] : &seqs[i].next,
				.n = step == 0 ? (int)(reqs[i].n_prompt - reused[i]) : 1,
				.adapter_on = reqs[i].adapter_on,
				.all_logits = 0,
			};
			if (draw)
				step_draw(seqs[i].sampler, &reqs[i], &draws[n_items]);
			item_req[n_items++] = i;
		}
		if (n_items == 0)
			break;
		int frc = draw ? sk_model_forward_draw(m, c->kv, items, n_items, draws, drawn)
		               : sk_model_forward(m, c->kv, items, n_items, logits);
		if (frc != 0) {
			for (int k = 0; k < n_items; k++) /* the slot no longer matches its ids */
				sk_gen_cache_forget(c, items[k].seq);
			goto out;
		}
		for (int k = 0; k < n_items; k++) {
			const int32_t *fed = items[k].ids;
			for (int j = 0; j < items[k].n; j++)
				if (slot_push(c, items[k].seq, fed[j]) != 0)
					goto out;
		}
		if (step == 0) {
			t_prefill_end = sk_now();
			if (stats)
				for (int i = 0; i < n; i++)
					stats[i].prefill_s = t_prefill_end - t0;
		}
		step++;

		for (int k = 0; k < n_items; k++) {
			int i = item_req[k];
			const sk_gen_request *r = &reqs[i];
			sk_gen_seq *q = &seqs[i];
			int32_t id;
			if (draw) {
				id = drawn[k];
				if (id < 0)
					sk_fail(_("sampler: every token has been masked out"));
			} else {
				float *row = logits + (size_t)k * (size_t)vocab;
				if (r->ignore_eos)
					for (int j = 0; j < n_stop; j++)
						row[stop[j]] = -INFINITY;
				id = sk_sampler_sample(q->sampler, row, q->hist, q->n_hist);
			}
			if (id < 0) {
				sk_fail_prefix(_("generate"));
				goto out;
			}
			int stop_reason = -1;
			if (!r->ignore_eos && sk_is_stop(stop, n_stop, id)) {
				stop_reason = 1;
			} else {
				q->hist[q->n_hist++] = id;
				int n_gen = (int)(q->n_hist - r->n_prompt);
				if (stats)
					stats[i].n_generated = n_gen;
				int last = n_gen >= r->max_new || q->n_hist >= (size_t)max_ctx;
				const char *t = NULL;
				if (tok) {
					text[0] = '\0';
					if (id < sk_tokenizer_vocab_size(tok)) {
						int len = sk_detok_stream_push(tok, &q->ds, id, text, text_cap);
						if (len < 0)
							goto out;
						if (last && sk_detok_stream_flush(&q->ds, text + len, text_cap - (size_t)len) < 0)
							goto out;
					}
					t = text;
				}
				if (on_token && on_token(ctx, i, id, t) != 0)
					stop_reason = 2;
				else if (last)
					stop_reason = 0;
				q->next = id;
			}
			if (stop_reason >= 0) {
				q->live = 0;
				if (stats) {
					stats[i].stopped_by = stop_reason;
					stats[i].decode_s = sk_now() - t_prefill_end;
				}
			}
		}
	}
	rc = 0;
out:
	for (int i = 0; i < n && seqs; i++) {
		sk_sampler_free(seqs[i].sampler);
		free(seqs[i].hist);
	}
	free(seqs);
	free(items);
	free(draws);
	free(drawn);
	free(item_req);
	free(reused);
	free(logits);
	free(text);
	return rc;
}

int sk_generate(sk_model *m, const sk_gen_request *reqs, int n, sk_gen_token_fn on_token, void *ctx,
                sk_gen_stats *stats)
{
	if (!m)
		return sk_fail(_("generate: no model"));
	if (n <= 0 || !reqs)
		return sk_fail(_("generate: no requests"));
	int32_t max_pos = sk_model_config(m)->max_position_embeddings;
	if (max_pos <= 0)
		return sk_fail(_("generate: the model has no context length"));
	/* a fresh cache as long as the longest request needs (the last sampled
	 * token is never fed back, hence no +1) */
	size_t need = 1;
	for (int i = 0; i < n; i++) {
		if (reqs[i].n_prompt > (size_t)max_pos)
			return sk_fail(_("request %d: the prompt of %zu tokens exceeds the context of %d tokens"), i + 1,
			               reqs[i].n_prompt, (int)max_pos);
		size_t want = reqs[i].n_prompt + (size_t)(reqs[i].max_new > 0 ? reqs[i].max_new : 0);
		if (want > need)
			need = want;
	}
	int *slots = calloc((size_t)n, sizeof *slots);
	sk_gen_cache *c = slots ? sk_gen_cache_new(m, n, need > (size_t)max_pos ? (int)max_pos : (int)need) : NULL;
	if (!slots || !c) {
		if (!slots)
			sk_fail(_("generate: out of memory"));
		free(slots);
		return -1;
	}
	for (int i = 0; i < n; i++)
		slots[i] = i;
	int rc = sk_generate_cached(m, c, slots, reqs, n, on_token, ctx, stats);
	sk_gen_cache_free(c);
	free(slots);
	return rc;
}
