/* sk_generate on the tiny model fixtures (tests/fixtures/hf/): greedy
 * continuations equal transformers' (ref/manifest.json), also when all the
 * sequences are decoded in one ragged batch; sampled requests in a batch
 * equal the same requests run alone; adapters per request. */
#include <jansson.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/model/generate.h"
#include "engine/model/lora.h"
#include "tests/test.h"

#define MAX_SEQS 8
#define MAX_IDS 64

typedef struct {
	int n;
	int32_t ids[MAX_SEQS][MAX_IDS];
	size_t n_ids[MAX_SEQS];
	int32_t greedy[MAX_SEQS][MAX_IDS];
	int n_greedy[MAX_SEQS];
} manifest;

static int load_manifest(const char *model_dir, manifest *mf)
{
	char rel[512];
	snprintf(rel, sizeof rel, "%s/ref/manifest.json", model_dir);
	json_error_t e;
	json_t *root = json_load_file(sk_test_path(rel), 0, &e);
	if (!root) {
		fprintf(stderr, "  %s: %s\n", rel, e.text);
		return -1;
	}
	memset(mf, 0, sizeof *mf);
	json_t *seqs = json_object_get(root, "sequences");
	for (size_t i = 0; i < json_array_size(seqs) && i < MAX_SEQS; i++) {
		json_t *s = json_array_get(seqs, i);
		json_t *ids = json_object_get(s, "ids"), *g = json_object_get(s, "greedy");
		for (size_t k = 0; k < json_array_size(ids) && k < MAX_IDS; k++)
			mf->ids[i][mf->n_ids[i]++] = (int32_t)json_integer_value(json_array_get(ids, k));
		for (size_t k = 0; k < json_array_size(g) && k < MAX_IDS; k++)
			mf->greedy[i][mf->n_greedy[i]++] = (int32_t)json_integer_value(json_array_get(g, k));
		mf->n++;
	}
	json_decref(root);
	return mf->n > 0 ? 0 : -1;
}

static sk_model *load(const char *rel)
{
	sk_model_opts o = { .device = SK_DEVICE_CPU, .quant_nf4 = 0, .threads = 1 };
	sk_model *m = sk_model_load(sk_test_path(rel), &o);
	if (!m)
		fprintf(stderr, "  %s: %s\n", rel, sk_error());
	return m;
}

typedef struct {
	int32_t ids[MAX_SEQS][MAX_IDS];
	int n[MAX_SEQS];
	int stop_after[MAX_SEQS];
} collected;

static int collect(void *vctx, int i, int32_t id, const char *text)
{
	(void)text;
	collected *c = vctx;
	if (c->n[i] < MAX_IDS)
		c->ids[i][c->n[i]++] = id;
	return c->stop_after[i] && c->n[i] >= c->stop_after[i];
}

static sk_gen_request request(const manifest *mf, int k, int max_new)
{
	sk_gen_request r = { 0 };
	r.prompt = mf->ids[k];
	r.n_prompt = mf->n_ids[k];
	r.max_new = max_new;
	r.ignore_eos = 1;
	sk_sampling_defaults(&r.sampling);
	return r;
}

static void greedy_matches(const char *dir)
{
	manifest mf;
	CHECK(load_manifest(dir, &mf) == 0);
	sk_model *m = load(dir);
	CHECK(m != NULL);
	if (!m || mf.n == 0)
		return;
	/* every sequence alone, then all together in one ragged batch */
	sk_gen_request r[MAX_SEQS];
	for (int k = 0; k < mf.n; k++) {
		r[k] = request(&mf, k, mf.n_greedy[k]);
		r[k].sampling.greedy = 1;
		collected c = { 0 };
		sk_gen_stats st;
		CHECK_EQ_INT(sk_generate(m, &r[k], 1, collect, &c, &st), 0);
		CHECK_EQ_INT(c.n[0], mf.n_greedy[k]);
		CHECK_MSG(memcmp(c.ids[0], mf.greedy[k], sizeof(int32_t) * (size_t)mf.n_greedy[k]) == 0,
		          "%s: sequence %d alone differs from transformers' greedy", dir, k);
		CHECK_EQ_INT(st.n_generated, mf.n_greedy[k]);
		CHECK_EQ_INT(st.n_prompt_tokens, (int)mf.n_ids[k]);
		CHECK_EQ_INT(st.stopped_by, 0);
	}
	collected c = { 0 };
	CHECK_EQ_INT(sk_generate(m, r, mf.n, collect, &c, NULL), 0);
	for (int k = 0; k < mf.n; k++)
		CHECK_MSG(c.n[k] == mf.n_greedy[k] &&
		              memcmp(c.ids[k], mf.greedy[k], sizeof(int32_t) * (size_t)mf.n_greedy[k]) == 0,
		          "%s: sequence %d in the batch differs from transformers' greedy", dir, k);
	/* the same batch with the prompts prefilled in chunks of 5 tokens */
	sk_generate_prefill_chunk(5);
	collected ch = { 0 };
	CHECK_EQ_INT(sk_generate(m, r, mf.n, collect, &ch, NULL), 0);
	sk_generate_prefill_chunk(0);
	for (int k = 0; k < mf.n; k++)
		CHECK_MSG(ch.n[k] == mf.n_greedy[k] &&
		              memcmp(ch.ids[k], mf.greedy[k], sizeof(int32_t) * (size_t)mf.n_greedy[k]) == 0,
		          "%s: sequence %d prefilled in chunks differs from transformers' greedy", dir, k);
	sk_model_free(m);
}

TEST(greedy_equals_transformers_gemma3n)
{
	greedy_matches("tests/fixtures/hf/tiny-gemma3n");
}

TEST(greedy_equals_transformers_gemma3)
{
	greedy_matches("tests/fixtures/hf/tiny-gemma3");
}

TEST(sampled_batch_equals_separate_runs)
{
	const char *dir = "tests/fixtures/hf/tiny-gemma3n";
	manifest mf;
	CHECK(load_manifest(dir, &mf) == 0);
	sk_model *m = load(dir);
	if (!m)
		return;
	/* different prompts and seeds, one request stopped early by its callback */
	sk_gen_request r[3];
	for (int k = 0; k < 3; k++) {
		r[k] = request(&mf, k % mf.n, 10);
		r[k].sampling.temperature = 1.5f;
		r[k].sampling.top_k = 0;
		r[k].sampling.top_p = 0.98f;
		r[k].sampling.seed = 1000 + (uint64_t)k;
	}
	collected batch = { 0 };
	batch.stop_after[1] = 4;
	sk_gen_stats st[3];
	CHECK_EQ_INT(sk_generate(m, r, 3, collect, &batch, st), 0);
	CHECK_EQ_INT(batch.n[1], 4);
	CHECK_EQ_INT(st[1].stopped_by, 2);
	for (int k = 0; k < 3; k++) {
		collected one = { 0 };
		CHECK_EQ_INT(sk_generate(m, &r[k], 1, collect, &one, NULL), 0);
		int n = k == 1 ? 4 : 10;
		CHECK_EQ_INT(one.n[0], 10);
		CHECK_MSG(memcmp(one.ids[0], batch.ids[k], sizeof(int32_t) * (size_t)n) == 0,
		          "request %d: batch and separate run differ", k);
	}
	/* the same seed twice gives the same ids; another seed (very likely) not */
	collected a = { 0 }, b = { 0 }, d = { 0 };
	sk_generate(m, &r[0], 1, collect, &a, NULL);
	sk_generate(m, &r[0], 1, collect, &b, NULL);
	r[0].sampling.seed = 77;
	sk_generate(m, &r[0], 1, collect, &d, NULL);
	CHECK(memcmp(a.ids[0], b.ids[0], sizeof a.ids[0]) == 0);
	CHECK(memcmp(a.ids[0], d.ids[0], sizeof a.ids[0]) != 0);
	sk_model_free(m);
}

TEST(adapter_per_request)
{
	const char *dir = "tests/fixtures/hf/tiny-gemma3n";
	manifest mf;
	CHECK(load_manifest(dir, &mf) == 0);
	sk_model *m = load(dir);
	if (!m)
		return;
	sk_lora *l = sk_lora_load(sk_test_path("tests/fixtures/hf/tiny-gemma3n/ref/adapter_all"), sk_model_config(m));
	CHECK(l != NULL);
	if (!l) {
		fprintf(stderr, "  %s\n", sk_error());
		sk_model_free(m);
		return;
	}
	sk_model_set_adapter(m, l);
	sk_gen_request r[2] = { request(&mf, 0, 12), request(&mf, 0, 12) };
	r[0].sampling.greedy = r[1].sampling.greedy = 1;
	r[1].adapter_on = 1;
	collected both = { 0 }, off = { 0 }, on = { 0 };
	CHECK_EQ_INT(sk_generate(m, r, 2, collect, &both, NULL), 0);
	CHECK_EQ_INT(sk_generate(m, &r[0], 1, collect, &off, NULL), 0);
	CHECK_EQ_INT(sk_generate(m, &r[1], 1, collect, &on, NULL), 0);
	CHECK(memcmp(both.ids[0], off.ids[0], sizeof off.ids[0]) == 0);
	CHECK(memcmp(both.ids[1], on.ids[0], sizeof on.ids[0]) == 0);
	/* adapter off = the base model's greedy continuation */
	CHECK(memcmp(off.ids[0], mf.greedy[0], sizeof(int32_t) * 12) == 0);
	/* the adapter changes the distribution: the same seed draws other tokens */
	for (int k = 0; k < 2; k++) {
		r[k].sampling.greedy = 0;
		r[k].sampling.temperature = 1.5f;
		r[k].sampling.top_k = 0;
		r[k].sampling.top_p = 1.0f;
		r[k].sampling.seed = 4242;
	}
	collected s = { 0 };
	CHECK_EQ_INT(sk_generate(m, r, 2, collect, &s, NULL), 0);
	CHECK(memcmp(s.ids[0], s.ids[1], sizeof s.ids[0]) != 0);
	sk_model_set_adapter(m, NULL);
	sk_lora_free(l);
	sk_model_free(m);
}

/* A kept cache: turn 2's prompt extends turn 1's prompt and answer, so
 * only its new tokens are prefilled, and the answer is the one a fresh
 * cache gives; a prompt that departs early, the adapter flag changing, and
 * forgetting all prefill from scratch (and still agree). */
TEST(kept_cache_prefills_only_new_tokens)
{
	const char *dirs[] = { "tests/fixtures/hf/tiny-gemma3n", "tests/fixtures/hf/tiny-gemma3" };
	for (int d = 0; d < 2; d++) {
		manifest mf;
		CHECK(load_manifest(dirs[d], &mf) == 0);
		sk_model *m = load(dirs[d]);
		if (!m)
			continue;
		/* a context of 40 tokens runs past the fixtures' sliding window of 8 */
		sk_gen_cache *gc = sk_gen_cache_new(m, 2, 40);
		CHECK(gc != NULL);
		int slot = 1;
		sk_gen_request r = request(&mf, 0, 6);
		r.n_prompt = 12;
		r.sampling.greedy = 1;
		collected t1 = { 0 };
		sk_gen_stats st;
		CHECK_EQ_INT(sk_generate_cached(m, gc, &slot, &r, 1, collect, &t1, &st), 0);
		CHECK_EQ_INT(st.n_reused, 0);
		CHECK_EQ_INT(st.n_prompt_tokens, 12);
		/* turn 2: turn 1's prompt, its answer, then new tokens */
		int32_t p2[40];
		size_t n2 = 0;
		for (size_t i = 0; i < r.n_prompt; i++)
			p2[n2++] = r.prompt[i];
		for (int i = 0; i < t1.n[0]; i++)
			p2[n2++] = t1.ids[0][i];
		for (int i = 0; i < 7; i++)
			p2[n2++] = mf.ids[1][i];
		sk_gen_request r2 = r;
		r2.prompt = p2;
		r2.n_prompt = n2;
		collected kept = { 0 }, fresh = { 0 };
		CHECK_EQ_INT(sk_generate_cached(m, gc, &slot, &r2, 1, collect, &kept, &st), 0);
		/* the cache held prompt 1 and all but the last answer token */
		CHECK_EQ_INT(st.n_reused, 12 + t1.n[0] - 1);
		CHECK_EQ_INT(st.n_prompt_tokens, (int)n2 - st.n_reused);
		CHECK_EQ_INT(sk_generate(m, &r2, 1, collect, &fresh, NULL), 0);
		CHECK(kept.n[0] == fresh.n[0] && memcmp(kept.ids[0], fresh.ids[0], sizeof(int32_t) * (size_t)fresh.n[0]) == 0);
		printf("# %s: turn 2 prefilled %d of %zu tokens, the same answer as a fresh cache\n", dirs[d],
		       st.n_prompt_tokens, n2);
		/* departing at token 3: cut back to 3 tokens (within the rollback budget) */
		p2[3] = (p2[3] + 1) % 300;
		collected cut = { 0 }, cut_fresh = { 0 };
		CHECK_EQ_INT(sk_generate_cached(m, gc, &slot, &r2, 1, collect, &cut, &st), 0);
		CHECK_EQ_INT(st.n_reused, 3);
		CHECK_EQ_INT(sk_generate(m, &r2, 1, collect, &cut_fresh, NULL), 0);
		CHECK(memcmp(cut.ids[0], cut_fresh.ids[0], sizeof(int32_t) * (size_t)cut_fresh.n[0]) == 0);
		/* another adapter flag, or forgetting, starts over */
		r2.adapter_on = 1;
		CHECK_EQ_INT(sk_generate_cached(m, gc, &slot, &r2, 1, collect, &cut, &st), 0);
		CHECK_EQ_INT(st.n_reused, 0);
		r2.adapter_on = 0;
		sk_gen_cache_forget(gc, -1);
		CHECK_EQ_INT(sk_generate_cached(m, gc, &slot, &r2, 1, collect, &cut, &st), 0);
		CHECK_EQ_INT(st.n_reused, 0);
		/* the slot is checked */
		int bad = 2;
		CHECK_EQ_INT(sk_generate_cached(m, gc, &bad, &r2, 1, collect, &cut, &st), -1);
		sk_gen_cache_free(gc);
		sk_model_free(m);
	}
}

TEST(prompt_longer_than_context_is_an_error)
{
	sk_model *m = load("tests/fixtures/hf/tiny-gemma3n");
	if (!m)
		return;
	int32_t max_pos = sk_model_config(m)->max_position_embeddings;
	int32_t *p = malloc(((size_t)max_pos + 1) * sizeof *p);
	for (int32_t i = 0; i <= max_pos; i++)
		p[i] = 5 + i % 50;
	sk_gen_request r = { 0 };
	r.prompt = p;
	r.n_prompt = (size_t)max_pos + 1;
	r.max_new = 1;
	sk_sampling_defaults(&r.sampling);
	collected c = { 0 };
	sk_error_clear();
	CHECK_EQ_INT(sk_generate(m, &r, 1, collect, &c, NULL), -1);
	CHECK(strstr(sk_error(), "exceeds the context") != NULL);
	CHECK_EQ_INT(c.n[0], 0);
	free(p);
	sk_model_free(m);
}

int main(void)
{
	RUN(greedy_equals_transformers_gemma3n);
	RUN(greedy_equals_transformers_gemma3);
	RUN(sampled_batch_equals_separate_runs);
	RUN(adapter_per_request);
	RUN(kept_cache_prefills_only_new_tokens);
	RUN(prompt_longer_than_context_is_an_error);
	TEST_EXIT();
}
