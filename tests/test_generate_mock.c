/* sk_generate's bookkeeping against a scripted stand-in for the model (this
 * file defines the sk_model / sk_kv_cache functions generate.c calls, so
 * the real ones are not linked): one prefill forward with ragged items, one
 * token per live request per step, stop tokens, ignore_eos, the callback
 * stopping a request, per-request seeds, context checks, streamed text.
 * The next-token rule is made up: the logits peak at (last * 7 + 3) % V,
 * plus a bump on the adapter flag, so every outcome is known in advance. */
#include <math.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/model/generate.h"
#include "tests/test.h"

#define V 384
#define MAX_CALLS 512

struct sk_model {
	sk_config cfg;
	sk_tokenizer *tok;
	float spread;        /* 0: one peak (greedy-like); > 0: flat enough to sample */
	int32_t eos_after;   /* the peak becomes eos (1) once a sequence holds this many tokens; 0 = never */
	int n_calls;
	int call_items[MAX_CALLS];
	int call_tokens[MAX_CALLS];
	int fail_at_call;    /* forward fails on this call (1-based); 0 = never */
	int no_bytes;        /* mask the tiny tokenizer's byte-fallback ids (108..363) */
};

struct sk_kv_cache {
	int n, max_ctx;
	int pos[16];
	int32_t last[16];
};

const sk_config *sk_model_config(const sk_model *m) { return &m->cfg; }
const sk_tokenizer *sk_model_tokenizer(const sk_model *m) { return m->tok; }
int32_t sk_model_vocab(const sk_model *m) { (void)m; return V; }

sk_kv_cache *sk_kv_cache_new(const sk_model *m, int n, int max_ctx)
{
	(void)m;
	if (n > 16) {
		sk_fail("mock: too many sequences");
		return NULL;
	}
	sk_kv_cache *kv = calloc(1, sizeof *kv);
	kv->n = n;
	kv->max_ctx = max_ctx;
	return kv;
}

void sk_kv_cache_free(sk_kv_cache *kv) { free(kv); }

void sk_kv_cache_clear(sk_kv_cache *kv, int seq) { kv->pos[seq] = 0; }

uint64_t sk_kv_cache_bytes(const sk_kv_cache *kv) { (void)kv; return 0; }

/* the mock's cache can be cut anywhere */
int sk_kv_cache_keep(sk_kv_cache *kv, int seq, int n)
{
	if (n < kv->pos[seq])
		kv->pos[seq] = n;
	return kv->pos[seq];
}

/* the mock draws nothing itself: sk_generate samples from its logits */
int sk_model_can_draw(const sk_model *m) { (void)m; return 0; }

int sk_model_forward_draw(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, const sk_draw *draws,
                          int32_t *ids)
{
	(void)m, (void)kv, (void)items, (void)n_items, (void)draws, (void)ids;
	return sk_fail("mock: no drawing");
}

int sk_model_forward(sk_model *m, sk_kv_cache *kv, const sk_batch_item *items, int n_items, float *logits)
{
	if (m->n_calls < MAX_CALLS) {
		m->call_items[m->n_calls] = n_items;
		int t = 0;
		for (int i = 0; i < n_items; i++)
			t += items[i].n;
		m->call_tokens[m->n_calls] = t;
	}
	m->n_calls++;
	if (m->fail_at_call == m->n_calls)
		return sk_fail("mock: forward failed");
	for (int i = 0; i < n_items; i++)
		if (kv->pos[items[i].seq] + items[i].n > kv->max_ctx)
			return sk_fail("mock: context of %d tokens exceeded", kv->max_ctx);
	for (int i = 0; i < n_items; i++) {
		const sk_batch_item *it = &items[i];
		kv->pos[it->seq] += it->n;
		kv->last[it->seq] = it->ids[it->n - 1];
		float *row = logits + (size_t)i * V;
		int32_t peak = (kv->last[it->seq] * 7 + 3) % V;
		if (it->adapter_on)
			peak = (peak + 1) % V;
		if (m->eos_after && kv->pos[it->seq] >= m->eos_after)
			peak = 1;
		for (int j = 0; j < V; j++)
			row[j] = m->spread > 0 ? (float)sin(j * 1.7 + kv->pos[it->seq]) * m->spread : -5.0f;
		row[peak] = 10.0f;
		for (int j = 108; m->no_bytes && j < 364; j++)
			row[j] = -INFINITY;
	}
	return 0;
}

static void mock_init(sk_model *m)
{
	memset(m, 0, sizeof *m);
	sk_config_defaults(&m->cfg, SK_ARCH_GEMMA3N);
	m->cfg.vocab_size = V;
	m->cfg.max_position_embeddings = 64;
	m->cfg.n_eos = 2;
	m->cfg.eos_token_ids[0] = 1;
	m->cfg.eos_token_ids[1] = 106;
}

typedef struct {
	int32_t ids[8][128];
	int n[8];
	char text[8][1024];
	int stop_after[8];   /* callback returns 1 after this many tokens; 0 = never */
	int saw_null_text;
} collected;

static int collect(void *vctx, int i, int32_t id, const char *text)
{
	collected *c = vctx;
	if (c->n[i] < 128)
		c->ids[i][c->n[i]++] = id;
	if (!text)
		c->saw_null_text = 1;
	else
		strncat(c->text[i], text, sizeof c->text[i] - strlen(c->text[i]) - 1);
	return c->stop_after[i] && c->n[i] >= c->stop_after[i];
}

static sk_gen_request greedy_req(const int32_t *prompt, size_t n, int max_new)
{
	sk_gen_request r = { 0 };
	r.prompt = prompt;
	r.n_prompt = n;
	r.max_new = max_new;
	sk_sampling_defaults(&r.sampling);
	r.sampling.greedy = 1;
	return r;
}

static int32_t next_of(int32_t t) { return (t * 7 + 3) % V; }

TEST(one_prefill_then_one_token_per_live_request)
{
	sk_model m;
	mock_init(&m);
	int32_t p0[] = { 2, 10, 11 }, p1[] = { 2, 20 }, p2[] = { 2, 30, 31, 32, 33 };
	sk_gen_request r[3] = { greedy_req(p0, 3, 4), greedy_req(p1, 2, 2), greedy_req(p2, 5, 6) };
	collected c = { 0 };
	sk_gen_stats st[3];
	CHECK_EQ_INT(sk_generate(&m, r, 3, collect, &c, st), 0);
	/* prefill: 3 ragged items, 10 tokens; then 3, 3 (p1 done after 2), ... */
	CHECK_EQ_INT(m.call_items[0], 3);
	CHECK_EQ_INT(m.call_tokens[0], 10);
	CHECK_EQ_INT(m.call_items[1], 3);
	CHECK_EQ_INT(m.call_items[2], 2);
	CHECK_EQ_INT(m.call_items[3], 2);
	CHECK_EQ_INT(m.call_items[4], 1);
	CHECK_EQ_INT(m.n_calls, 6); /* the 6th token of p2 is sampled without a forward */
	CHECK_EQ_INT(c.n[0], 4);
	CHECK_EQ_INT(c.n[1], 2);
	CHECK_EQ_INT(c.n[2], 6);
	int32_t t = 11;
	for (int k = 0; k < 4; k++) {
		t = next_of(t);
		CHECK_EQ_INT(c.ids[0][k], t);
	}
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(st[i].stopped_by, 0);
		CHECK_EQ_INT(st[i].n_generated, c.n[i]);
		CHECK_EQ_INT(st[i].n_prompt_tokens, (int)r[i].n_prompt);
		CHECK(st[i].prefill_s >= 0.0 && st[i].decode_s >= 0.0);
	}
	CHECK(c.saw_null_text); /* no tokenizer: text is NULL */
}

TEST(stop_token_ends_request_and_is_not_passed)
{
	sk_model m;
	mock_init(&m);
	m.eos_after = 6; /* the 6th position predicts eos */
	int32_t p[] = { 2, 10, 11 };
	sk_gen_request r = greedy_req(p, 3, 20);
	collected c = { 0 };
	sk_gen_stats st;
	CHECK_EQ_INT(sk_generate(&m, &r, 1, collect, &c, &st), 0);
	CHECK_EQ_INT(c.n[0], 3); /* positions 3, 4, 5 yield tokens; at 6 eos */
	for (int k = 0; k < c.n[0]; k++)
		CHECK(c.ids[0][k] != 1);
	CHECK_EQ_INT(st.stopped_by, 1);
	CHECK_EQ_INT(st.n_generated, 3);
}

TEST(ignore_eos_masks_stop_tokens)
{
	sk_model m;
	mock_init(&m);
	m.eos_after = 6;
	int32_t p[] = { 2, 10, 11 };
	sk_gen_request r = greedy_req(p, 3, 10);
	r.ignore_eos = 1;
	collected c = { 0 };
	sk_gen_stats st;
	CHECK_EQ_INT(sk_generate(&m, &r, 1, collect, &c, &st), 0);
	CHECK_EQ_INT(c.n[0], 10);
	CHECK_EQ_INT(st.stopped_by, 0);
	for (int k = 0; k < c.n[0]; k++)
		CHECK(c.ids[0][k] != 1 && c.ids[0][k] != 106);
}

TEST(end_of_turn_from_the_tokenizer_stops)
{
	sk_model m;
	mock_init(&m);
	m.cfg.n_eos = 1; /* only <eos>; <end_of_turn> comes from the tokenizer */
	m.tok = sk_tokenizer_load(sk_test_path("tests/fixtures/hf/tiny-gemma3n/tokenizer.json"));
	CHECK(m.tok != NULL);
	if (!m.tok)
		return;
	int32_t eot = sk_tokenizer_find(m.tok, "<end_of_turn>");
	CHECK_EQ_INT(eot, 106);
	/* next_of(t) == 106 for t = 103 + 384k / 7 ... find a t with it */
	int32_t t = -1;
	for (int32_t x = 0; x < V; x++)
		if (next_of(x) == 106)
			t = x;
	CHECK(t >= 0);
	int32_t p[] = { 2, t };
	sk_gen_request r = greedy_req(p, 2, 5);
	collected c = { 0 };
	sk_gen_stats st;
	CHECK_EQ_INT(sk_generate(&m, &r, 1, collect, &c, &st), 0);
	CHECK_EQ_INT(c.n[0], 0);
	CHECK_EQ_INT(st.stopped_by, 1);
	sk_tokenizer_free(m.tok);
}

TEST(callback_stops_only_its_request)
{
	sk_model m;
	mock_init(&m);
	int32_t p[] = { 2, 40 };
	sk_gen_request r[2] = { greedy_req(p, 2, 8), greedy_req(p, 2, 8) };
	collected c = { 0 };
	c.stop_after[0] = 2;
	sk_gen_stats st[2];
	CHECK_EQ_INT(sk_generate(&m, r, 2, collect, &c, st), 0);
	CHECK_EQ_INT(c.n[0], 2);
	CHECK_EQ_INT(c.n[1], 8);
	CHECK_EQ_INT(st[0].stopped_by, 2);
	CHECK_EQ_INT(st[1].stopped_by, 0);
	/* request 0 left the batch at once: the 3rd forward has one item */
	CHECK_EQ_INT(m.call_items[1], 2);
	CHECK_EQ_INT(m.call_items[2], 1);
}

TEST(adapter_flag_per_request)
{
	sk_model m;
	mock_init(&m);
	int32_t p[] = { 2, 40 };
	sk_gen_request r[2] = { greedy_req(p, 2, 3), greedy_req(p, 2, 3) };
	r[1].adapter_on = 1;
	collected c = { 0 };
	CHECK_EQ_INT(sk_generate(&m, r, 2, collect, &c, NULL), 0);
	CHECK_EQ_INT(c.ids[0][0], next_of(40));
	CHECK_EQ_INT(c.ids[1][0], (next_of(40) + 1) % V);
}

static void sampled_run(int n_req, const uint64_t *seeds, collected *c)
{
	sk_model m;
	mock_init(&m);
	m.spread = 3.0f;
	static const int32_t p[] = { 2, 50, 51 };
	sk_gen_request r[4];
	for (int i = 0; i < n_req; i++) {
		r[i] = greedy_req(p, 3, 24);
		r[i].sampling.greedy = 0;
		r[i].sampling.top_k = 0;
		r[i].sampling.top_p = 1.0f;
		r[i].sampling.seed = seeds[i];
	}
	memset(c, 0, sizeof *c);
	CHECK_EQ_INT(sk_generate(&m, r, n_req, collect, c, NULL), 0);
}

TEST(seeds_per_request_independent_of_batch)
{
	uint64_t s3[3] = { 100, 101, 102 };
	collected batch, one, again;
	sampled_run(3, s3, &batch);
	for (int i = 0; i < 3; i++) {
		sampled_run(1, &s3[i], &one);
		CHECK_EQ_INT(one.n[0], 24);
		CHECK(memcmp(one.ids[0], batch.ids[i], sizeof one.ids[0]) == 0);
	}
	sampled_run(1, &s3[0], &again);
	sampled_run(1, &s3[0], &one);
	CHECK(memcmp(again.ids[0], one.ids[0], sizeof one.ids[0]) == 0);
	CHECK(memcmp(batch.ids[0], batch.ids[1], sizeof batch.ids[0]) != 0);
}

TEST(prompt_longer_than_context_fails_before_work)
{
	sk_model m;
	mock_init(&m);
	int32_t p[65];
	for (int i = 0; i < 65; i++)
		p[i] = 5;
	sk_gen_request r[2] = { greedy_req(p, 3, 4), greedy_req(p, 65, 4) };
	collected c = { 0 };
	sk_error_clear();
	CHECK_EQ_INT(sk_generate(&m, r, 2, collect, &c, NULL), -1);
	CHECK(strstr(sk_error(), "request 2") && strstr(sk_error(), "65") && strstr(sk_error(), "64"));
	CHECK_EQ_INT(m.n_calls, 0);
	CHECK_EQ_INT(c.n[0], 0);
	/* empty prompts, no requests */
	sk_gen_request e = greedy_req(p, 0, 4);
	CHECK_EQ_INT(sk_generate(&m, &e, 1, collect, &c, NULL), -1);
	CHECK_EQ_INT(sk_generate(&m, r, 0, collect, &c, NULL), -1);
	CHECK_EQ_INT(m.n_calls, 0);
}

TEST(generation_stops_at_context_end)
{
	sk_model m;
	mock_init(&m);
	int32_t p[60];
	for (int i = 0; i < 60; i++)
		p[i] = 5;
	sk_gen_request r = greedy_req(p, 60, 100);
	collected c = { 0 };
	sk_gen_stats st;
	CHECK_EQ_INT(sk_generate(&m, &r, 1, collect, &c, &st), 0);
	CHECK_EQ_INT(c.n[0], 4); /* 60 + 4 = the 64-token context */
	CHECK_EQ_INT(st.stopped_by, 0);
}

TEST(max_new_zero_and_forward_errors)
{
	sk_model m;
	mock_init(&m);
	int32_t p[] = { 2, 7 };
	sk_gen_request r = greedy_req(p, 2, 0);
	collected c = { 0 };
	sk_gen_stats st;
	CHECK_EQ_INT(sk_generate(&m, &r, 1, collect, &c, &st), 0);
	CHECK_EQ_INT(m.n_calls, 0);
	CHECK_EQ_INT(st.n_generated, 0);
	m.fail_at_call = 3;
	r.max_new = 10;
	sk_error_clear();
	CHECK_EQ_INT(sk_generate(&m, &r, 1, collect, &c, &st), -1);
	CHECK(strstr(sk_error(), "forward failed") != NULL);
	CHECK_EQ_INT(st.n_generated, 2);
}

TEST(streamed_text_equals_decoded_ids)
{
	sk_model m;
	mock_init(&m);
	m.spread = 3.0f;
	/* random byte tokens make invalid UTF-8, where the streaming decoder
	 * and a whole-text decode may replace differently: keep to pieces */
	m.no_bytes = 1;
	m.tok = sk_tokenizer_load(sk_test_path("tests/fixtures/hf/tiny-gemma3n/tokenizer.json"));
	CHECK(m.tok != NULL);
	if (!m.tok)
		return;
	int32_t p[] = { 2, 60 };
	sk_gen_request r = greedy_req(p, 2, 40);
	r.sampling.greedy = 0;
	r.sampling.top_k = 0;
	r.sampling.top_p = 1.0f;
	r.ignore_eos = 1;
	collected c = { 0 };
	CHECK_EQ_INT(sk_generate(&m, &r, 1, collect, &c, NULL), 0);
	CHECK_EQ_INT(c.n[0], 40);
	char *want = NULL;
	size_t wl = 0;
	CHECK_EQ_INT(sk_tokenizer_decode(m.tok, c.ids[0], (size_t)c.n[0], 0, &want, &wl), 0);
	CHECK(want && wl > 0 && strcmp(want, c.text[0]) == 0);
	if (want && strcmp(want, c.text[0]))
		fprintf(stderr, "  streamed '%s'\n  decoded  '%s'\n", c.text[0], want);
	free(want);
	CHECK(!c.saw_null_text);
	sk_tokenizer_free(m.tok);
}

int main(void)
{
	RUN(one_prefill_then_one_token_per_live_request);
	RUN(stop_token_ends_request_and_is_not_passed);
	RUN(ignore_eos_masks_stop_tokens);
	RUN(end_of_turn_from_the_tokenizer_stops);
	RUN(callback_stops_only_its_request);
	RUN(adapter_flag_per_request);
	RUN(seeds_per_request_independent_of_batch);
	RUN(prompt_longer_than_context_fails_before_work);
	RUN(generation_stops_at_context_end);
	RUN(max_new_zero_and_forward_errors);
	RUN(streamed_text_equals_decoded_ids);
	TEST_EXIT();
}
