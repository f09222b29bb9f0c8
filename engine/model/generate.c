/* Batched generation: every prompt prefilled in one forward, then one token
 * per live request per step, each request with its own sampler, cache slot
 * and adapter flag; text streams out through a UTF-8-safe decoder. */
#include "engine/model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/error.h"
#include "engine/i18n.h"

#define SK_MAX_STOP (SK_MAX_EOS + 1)

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
static int sk_check_requests(const sk_model *m, const sk_gen_request *reqs, int n, int *ctx_out)
{
	if (n <= 0 || !reqs)
		return sk_fail(_("generate: no requests"));
	int32_t max_pos = sk_model_config(m)->max_position_embeddings;
	if (max_pos <= 0)
		return sk_fail(_("generate: the model has no context length"));
	size_t need = 1;
	for (int i = 0; i < n; i++) {
		const sk_gen_request *r = &reqs[i];
		if (!r->prompt || r->n_prompt == 0)
			return sk_fail(_("request %d: the prompt is empty"), i + 1);
		if (r->n_prompt > (size_t)max_pos)
			return sk_fail(_("request %d: the prompt of %zu tokens exceeds the context of %d tokens"),
			               i + 1, r->n_prompt, (int)max_pos);
		if (r->max_new < 0)
			return sk_fail(_("request %d: negative max_new %d"), i + 1, r->max_new);
		size_t want = r->n_prompt + (size_t)r->max_new;
		if (want > need)
			need = want;
	}
	/* the last sampled token is never fed back, hence no +1 */
	*ctx_out = need > (size_t)max_pos ? (int)max_pos : (int)need;
	return 0;
}

int sk_generate(sk_model *m, const sk_gen_request *reqs, int n, sk_gen_token_fn on_token, void *ctx,
                sk_gen_stats *stats)
{
	int max_ctx = 0;
	if (!m)
		return sk_fail(_("generate: no model"));
	if (sk_check_requests(m, reqs, n, &max_ctx) != 0)
		return -1;
	int32_t vocab = sk_model_vocab(m);
	const sk_tokenizer *tok = sk_model_tokenizer(m);
	int32_t stop[SK_MAX_STOP];
	int n_stop = sk_stop_ids(m, vocab, stop);

	if (stats)
		for (int i = 0; i < n; i++)
			stats[i] = (sk_gen_stats){ .n_prompt_tokens = (int)reqs[i].n_prompt };

	int rc = -1;
	sk_kv_cache *kv = NULL;
	sk_gen_seq *seqs = calloc((size_t)n, sizeof *seqs);
	sk_batch_item *items = calloc((size_t)n, sizeof *items);
	int *item_req = calloc((size_t)n, sizeof *item_req);
	float *logits = malloc((size_t)n * (size_t)vocab * sizeof *logits);
	size_t text_cap = (tok ? sk_tokenizer_max_piece_len(tok) : 0) + 64;
	char *text = malloc(text_cap);
	if (!seqs || !items || !item_req || !logits || !text) {
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
	}
	kv = sk_kv_cache_new(m, n, max_ctx);
	if (!kv)
		goto out;

	double t0 = sk_now(), t_prefill_end = t0;
	int step = 0;
	for (;;) {
		int n_items = 0;
		for (int i = 0; i < n; i++) {
			if (!seqs[i].live)
				continue;
			items[n_items] = (sk_batch_item){
				.seq = i,
				.ids = step == 0 ? reqs[i].prompt : &seqs[i].next,
				.n = step == 0 ? (int)reqs[i].n_prompt : 1,
				.adapter_on = reqs[i].adapter_on,
				.all_logits = 0,
			};
			item_req[n_items++] = i;
		}
		if (n_items == 0)
			break;
		if (sk_model_forward(m, kv, items, n_items, logits) != 0)
			goto out;
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
			float *row = logits + (size_t)k * (size_t)vocab;
			if (r->ignore_eos)
				for (int j = 0; j < n_stop; j++)
					row[stop[j]] = -INFINITY;
			int32_t id = sk_sampler_sample(q->sampler, row, q->hist, q->n_hist);
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
	if (kv)
		sk_kv_cache_free(kv);
	free(seqs);
	free(items);
	free(item_req);
	free(logits);
	free(text);
	return rc;
}
