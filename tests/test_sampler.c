/* The sampler's filters on hand-made logits, its RNG's determinism per seed,
 * and the distribution of its draws. */
#include <math.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/model/generate.h"
#include "tests/test.h"

static sk_sampling plain(void)
{
	sk_sampling s;
	sk_sampling_defaults(&s);
	s.top_k = 0;
	s.top_p = 1.0f;
	return s;
}

static int is_kept(const float *l, int i)
{
	return l[i] > -INFINITY;
}

TEST(defaults_are_gemmas)
{
	sk_sampling s;
	sk_sampling_defaults(&s);
	CHECK_EQ_INT(s.greedy, 0);
	CHECK_NEAR(s.temperature, 1.0, 0);
	CHECK_EQ_INT(s.top_k, 64);
	CHECK_NEAR(s.top_p, 0.95, 1e-7);
	CHECK_NEAR(s.min_p, 0.0, 0);
	CHECK_NEAR(s.repeat_penalty, 1.0, 0);
	CHECK_EQ_INT(s.seed, 3407);
}

TEST(greedy_is_argmax_lowest_id_on_ties)
{
	sk_sampling c = plain();
	c.greedy = 1;
	sk_sampler *s = sk_sampler_new(&c, 6);
	float l[6] = { 0.5f, 2.0f, -1.0f, 3.0f, 3.0f, 1.0f };
	CHECK_EQ_INT(sk_sampler_sample(s, l, NULL, 0), 3);
	float l2[6] = { -5.0f, -2.0f, -3.0f, -INFINITY, NAN, -2.5f };
	CHECK_EQ_INT(sk_sampler_sample(s, l2, NULL, 0), 1);
	sk_sampler_free(s);
}

TEST(temperature_zero_is_greedy)
{
	sk_sampling c = plain();
	c.temperature = 0.0f;
	sk_sampler *s = sk_sampler_new(&c, 5);
	for (int k = 0; k < 50; k++) {
		float l[5] = { 1.0f, 1.2f, 0.9f, 1.19f, -3.0f };
		CHECK_EQ_INT(sk_sampler_sample(s, l, NULL, 0), 1);
	}
	sk_sampler_free(s);
}

TEST(temperature_scales_logits)
{
	sk_sampling c = plain();
	c.temperature = 0.5f;
	sk_sampler *s = sk_sampler_new(&c, 3);
	float l[3] = { 1.0f, -2.0f, 0.25f };
	CHECK_EQ_INT(sk_sampler_filter(s, l, NULL, 0, NULL), 3);
	CHECK_NEAR(l[0], 2.0, 1e-6);
	CHECK_NEAR(l[1], -4.0, 1e-6);
	CHECK_NEAR(l[2], 0.5, 1e-6);
	sk_sampler_free(s);
}

TEST(top_k_keeps_k_and_boundary_ties)
{
	sk_sampling c = plain();
	c.top_k = 2;
	sk_sampler *s = sk_sampler_new(&c, 6);
	float l[6] = { 0.1f, 5.0f, 3.0f, -1.0f, 2.0f, 4.0f };
	CHECK_EQ_INT(sk_sampler_filter(s, l, NULL, 0, NULL), 2);
	CHECK(is_kept(l, 1) && is_kept(l, 5));
	CHECK(!is_kept(l, 0) && !is_kept(l, 2) && !is_kept(l, 3) && !is_kept(l, 4));
	/* the 2nd largest value is shared by two tokens: both stay */
	float t[6] = { 1.0f, 4.0f, 3.0f, 3.0f, 0.0f, 2.0f };
	CHECK_EQ_INT(sk_sampler_filter(s, t, NULL, 0, NULL), 3);
	CHECK(is_kept(t, 1) && is_kept(t, 2) && is_kept(t, 3) && !is_kept(t, 5));
	sk_sampler_free(s);
	/* k larger than the vocabulary: nothing removed */
	c.top_k = 100;
	s = sk_sampler_new(&c, 6);
	float u[6] = { 1, 2, 3, 4, 5, 6 };
	CHECK_EQ_INT(sk_sampler_filter(s, u, NULL, 0, NULL), 6);
	sk_sampler_free(s);
}

TEST(top_p_keeps_smallest_set_reaching_p)
{
	/* probabilities 0.5, 0.25, 0.15, 0.10 (ids 2, 0, 3, 1) */
	float base[4] = { logf(0.25f), logf(0.10f), logf(0.5f), logf(0.15f) };
	struct { float p; int kept; } cases[] = {
		{ 0.4f, 1 },   /* 0.5 alone reaches 0.4 */
		{ 0.5f, 1 },   /* exactly reached by the top token (rounding may add the 2nd) */
		{ 0.6f, 2 },   /* 0.5 + 0.25 */
		{ 0.8f, 3 },   /* 0.5 + 0.25 + 0.15 = 0.9 */
		{ 0.95f, 4 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		sk_sampling c = plain();
		c.top_p = cases[k].p;
		sk_sampler *s = sk_sampler_new(&c, 4);
		float l[4];
		memcpy(l, base, sizeof l);
		sk_sample_cand *cand;
		int n = sk_sampler_filter(s, l, NULL, 0, &cand);
		int want = cases[k].kept;
		/* p = 0.5 exactly: the top token's 0.5 reaches it (up to float rounding) */
		if (cases[k].p == 0.5f)
			CHECK(n == 1 || n == 2);
		else
			CHECK_MSG(n == want, "top_p %g kept %d, want %d", (double)cases[k].p, n, want);
		CHECK_EQ_INT(cand[0].id, 2);
		CHECK(is_kept(l, 2));
		if (n >= 2) CHECK(is_kept(l, 0));
		if (n == 2) CHECK(!is_kept(l, 3) && !is_kept(l, 1));
		if (n == 3) CHECK(is_kept(l, 3) && !is_kept(l, 1));
		sk_sampler_free(s);
	}
}

TEST(top_p_always_keeps_one)
{
	sk_sampling c = plain();
	c.top_p = 1e-6f;
	sk_sampler *s = sk_sampler_new(&c, 3);
	float l[3] = { 0.0f, 0.0f, 0.0f };
	CHECK_EQ_INT(sk_sampler_filter(s, l, NULL, 0, NULL), 1);
	CHECK(is_kept(l, 0) && !is_kept(l, 1) && !is_kept(l, 2)); /* lowest id first on ties */
	sk_sampler_free(s);
}

TEST(min_p_relative_to_max_prob)
{
	/* probs 0.6, 0.25, 0.1, 0.05: with min_p 0.2 the bar is 0.12 */
	sk_sampling c = plain();
	c.min_p = 0.2f;
	sk_sampler *s = sk_sampler_new(&c, 4);
	float l[4] = { logf(0.1f), logf(0.6f), logf(0.05f), logf(0.25f) };
	CHECK_EQ_INT(sk_sampler_filter(s, l, NULL, 0, NULL), 2);
	CHECK(is_kept(l, 1) && is_kept(l, 3) && !is_kept(l, 0) && !is_kept(l, 2));
	sk_sampler_free(s);
	/* the same ratios at a lower max: the bar moves with the max */
	c.min_p = 0.5f;
	s = sk_sampler_new(&c, 4);
	float m[4] = { logf(0.3f), logf(0.3f), logf(0.2f), logf(0.14f) }; /* 0.2/0.3 >= 0.5, 0.14/0.3 < 0.5 */
	CHECK_EQ_INT(sk_sampler_filter(s, m, NULL, 0, NULL), 3);
	CHECK(!is_kept(m, 3));
	sk_sampler_free(s);
}

TEST(filters_apply_in_transformers_order)
{
	/* temperature before top-p: at T = 0.25 the top token holds 0.9 of the
	 * mass, so top-p 0.85 keeps only it; at T = 1 (0.6) it keeps two. */
	sk_sampling c = plain();
	c.temperature = 0.25f;
	c.top_p = 0.85f;
	sk_sampler *s = sk_sampler_new(&c, 3);
	float l[3] = { logf(0.6f), logf(0.35f), logf(0.05f) };
	CHECK_EQ_INT(sk_sampler_filter(s, l, NULL, 0, NULL), 1);
	sk_sampler_free(s);
	c.temperature = 1.0f;
	s = sk_sampler_new(&c, 3);
	float m[3] = { logf(0.6f), logf(0.35f), logf(0.05f) };
	CHECK_EQ_INT(sk_sampler_filter(s, m, NULL, 0, NULL), 2);
	sk_sampler_free(s);
	/* top-k before top-p: top-k 2 renormalizes 0.5/0.3 to 0.625/0.375, so
	 * top-p 0.6 keeps one token; top-p alone would keep two (0.5 < 0.6). */
	c = plain();
	c.top_k = 2;
	c.top_p = 0.6f;
	s = sk_sampler_new(&c, 3);
	float k[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
	CHECK_EQ_INT(sk_sampler_filter(s, k, NULL, 0, NULL), 1);
	sk_sampler_free(s);
	/* repetition penalty before everything: it can change the winner */
	c = plain();
	c.greedy = 1;
	c.repeat_penalty = 2.0f;
	s = sk_sampler_new(&c, 3);
	float g[3] = { 3.0f, 2.0f, -1.0f };
	int32_t hist[] = { 0, 0, 2 };
	CHECK_EQ_INT(sk_sampler_sample(s, g, hist, 3), 1);
	sk_sampler_free(s);
}

TEST(repeat_penalty_ctrl_rule_once_per_id)
{
	sk_sampling c = plain();
	c.repeat_penalty = 1.5f;
	sk_sampler *s = sk_sampler_new(&c, 5);
	float l[5] = { 3.0f, -3.0f, 1.5f, 0.75f, -0.3f };
	int32_t hist[] = { 0, 1, 0, 0, 1, 4, 99, -7 }; /* repeats count once; out-of-range ids ignored */
	CHECK_EQ_INT(sk_sampler_filter(s, l, hist, 8, NULL), 5);
	CHECK_NEAR(l[0], 2.0, 1e-6);
	CHECK_NEAR(l[1], -4.5, 1e-6);
	CHECK_NEAR(l[2], 1.5, 0);
	CHECK_NEAR(l[3], 0.75, 0);
	CHECK_NEAR(l[4], -0.45, 1e-6);
	/* the distinct-id bookkeeping is reset between calls */
	float m[5] = { 3.0f, -3.0f, 1.5f, 0.75f, -0.3f };
	int32_t h2[] = { 2 };
	sk_sampler_filter(s, m, h2, 1, NULL);
	CHECK_NEAR(m[0], 3.0, 0);
	CHECK_NEAR(m[2], 1.0, 1e-6);
	sk_sampler_free(s);
}

TEST(masked_out_everything_is_an_error)
{
	sk_sampling c = plain();
	sk_sampler *s = sk_sampler_new(&c, 3);
	float l[3] = { -INFINITY, NAN, -INFINITY };
	sk_error_clear();
	CHECK_EQ_INT(sk_sampler_sample(s, l, NULL, 0), -1);
	CHECK(strstr(sk_error(), "masked") != NULL);
	c.greedy = 1;
	sk_sampler *g = sk_sampler_new(&c, 3);
	float m[3] = { -INFINITY, NAN, -INFINITY };
	CHECK_EQ_INT(sk_sampler_sample(g, m, NULL, 0), -1);
	sk_sampler_free(g);
	sk_sampler_free(s);
}

TEST(masked_tokens_are_never_drawn)
{
	sk_sampling c = plain();
	c.seed = 11;
	sk_sampler *s = sk_sampler_new(&c, 4);
	for (int k = 0; k < 2000; k++) {
		float l[4] = { 0.0f, -INFINITY, 0.0f, NAN };
		int32_t id = sk_sampler_sample(s, l, NULL, 0);
		CHECK(id == 0 || id == 2);
	}
	sk_sampler_free(s);
}

TEST(invalid_settings_rejected)
{
	sk_sampling c = plain();
	c.top_p = 0.0f;
	CHECK(sk_sampler_new(&c, 10) == NULL);
	c = plain();
	c.temperature = -1.0f;
	CHECK(sk_sampler_new(&c, 10) == NULL);
	c = plain();
	c.repeat_penalty = 0.0f;
	CHECK(sk_sampler_new(&c, 10) == NULL);
	c = plain();
	c.min_p = 1.5f;
	CHECK(sk_sampler_new(&c, 10) == NULL);
	c = plain();
	CHECK(sk_sampler_new(&c, 0) == NULL);
}

static void draw_seq(uint64_t seed, int32_t *out, int n)
{
	sk_sampling c;
	sk_sampling_defaults(&c); /* top-k 64, top-p 0.95 */
	c.seed = seed;
	enum { V = 300 };
	sk_sampler *s = sk_sampler_new(&c, V);
	float l[V];
	for (int k = 0; k < n; k++) {
		for (int i = 0; i < V; i++)
			l[i] = (float)sin(i * 0.37) * 0.8f; /* fairly flat: many candidates */
		out[k] = sk_sampler_sample(s, l, out, (size_t)k);
	}
	sk_sampler_free(s);
}

TEST(same_seed_same_draws_different_seed_different)
{
	int32_t a[64], b[64], d[64];
	draw_seq(42, a, 64);
	draw_seq(42, b, 64);
	draw_seq(43, d, 64);
	CHECK(memcmp(a, b, sizeof a) == 0);
	CHECK(memcmp(a, d, sizeof a) != 0);
	/* reseeding restarts the stream */
	sk_sampling c = plain();
	c.seed = 5;
	sk_sampler *s = sk_sampler_new(&c, 2);
	double u1 = sk_sampler_uniform(s), u2 = sk_sampler_uniform(s);
	sk_sampler_reseed(s, 5);
	CHECK(sk_sampler_uniform(s) == u1);
	CHECK(sk_sampler_uniform(s) == u2);
	CHECK(u1 != u2 && u1 >= 0.0 && u1 < 1.0);
	sk_sampler_free(s);
}

TEST(seed_independent_of_other_samplers)
{
	/* interleaving another sampler's draws does not change this one's */
	int32_t alone[32];
	draw_seq(7, alone, 32);
	sk_sampling c;
	sk_sampling_defaults(&c);
	c.seed = 7;
	sk_sampler *a = sk_sampler_new(&c, 300);
	c.seed = 8;
	sk_sampler *b = sk_sampler_new(&c, 300);
	int32_t got[32], other[32];
	float l[300];
	for (int k = 0; k < 32; k++) {
		for (int i = 0; i < 300; i++)
			l[i] = (float)sin(i * 0.37) * 0.8f;
		other[k] = sk_sampler_sample(b, l, other, (size_t)k);
		for (int i = 0; i < 300; i++)
			l[i] = (float)sin(i * 0.37) * 0.8f;
		got[k] = sk_sampler_sample(a, l, got, (size_t)k);
	}
	CHECK(memcmp(alone, got, sizeof got) == 0);
	sk_sampler_free(a);
	sk_sampler_free(b);
}

TEST(distribution_matches_probabilities)
{
	/* 10,000 draws from p = (0.5, 0.3, 0.2): each frequency within 0.02
	 * (about 4 standard deviations). */
	sk_sampling c = plain();
	c.seed = 1234;
	sk_sampler *s = sk_sampler_new(&c, 3);
	int counts[3] = { 0 };
	const int N = 10000;
	for (int k = 0; k < N; k++) {
		float l[3] = { logf(0.5f) + 7.0f, logf(0.3f) + 7.0f, logf(0.2f) + 7.0f };
		int32_t id = sk_sampler_sample(s, l, NULL, 0);
		CHECK(id >= 0 && id < 3);
		if (id >= 0 && id < 3)
			counts[id]++;
	}
	CHECK_NEAR(counts[0] / (double)N, 0.5, 0.02);
	CHECK_NEAR(counts[1] / (double)N, 0.3, 0.02);
	CHECK_NEAR(counts[2] / (double)N, 0.2, 0.02);
	sk_sampler_free(s);
}

TEST(distribution_after_temperature_and_top_k)
{
	/* logits log(0.4, 0.3, 0.2, 0.1) at T = 2 with top-k 3: probabilities
	 * proportional to sqrt(0.4), sqrt(0.3), sqrt(0.2), the 4th never. */
	sk_sampling c = plain();
	c.seed = 99;
	c.temperature = 2.0f;
	c.top_k = 3;
	sk_sampler *s = sk_sampler_new(&c, 4);
	int counts[4] = { 0 };
	const int N = 10000;
	for (int k = 0; k < N; k++) {
		float l[4] = { logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f) };
		int32_t id = sk_sampler_sample(s, l, NULL, 0);
		if (id >= 0 && id < 4)
			counts[id]++;
	}
	double z = sqrt(0.4) + sqrt(0.3) + sqrt(0.2);
	CHECK_EQ_INT(counts[3], 0);
	CHECK_NEAR(counts[0] / (double)N, sqrt(0.4) / z, 0.02);
	CHECK_NEAR(counts[1] / (double)N, sqrt(0.3) / z, 0.02);
	CHECK_NEAR(counts[2] / (double)N, sqrt(0.2) / z, 0.02);
	sk_sampler_free(s);
}

TEST(uniform_is_uniform)
{
	sk_sampling c = plain();
	c.seed = 0;
	sk_sampler *s = sk_sampler_new(&c, 1);
	int bins[10] = { 0 };
	double sum = 0;
	for (int k = 0; k < 100000; k++) {
		double u = sk_sampler_uniform(s);
		CHECK(u >= 0.0 && u < 1.0);
		bins[(int)(u * 10)]++;
		sum += u;
	}
	for (int b = 0; b < 10; b++)
		CHECK_NEAR(bins[b] / 100000.0, 0.1, 0.005);
	CHECK_NEAR(sum / 100000.0, 0.5, 0.005);
	sk_sampler_free(s);
}

TEST(large_vocab_top_k)
{
	/* Gemma-sized vocabulary: top-k 64 picks exactly the 64 largest */
	enum { V = 262144 };
	float *l = malloc(V * sizeof *l);
	for (int i = 0; i < V; i++)
		l[i] = (float)((i * 2654435761u) % 1000003u) / 1000.0f; /* distinct, scattered */
	sk_sampling c = plain();
	c.top_k = 64;
	sk_sampler *s = sk_sampler_new(&c, V);
	float *copy = malloc(V * sizeof *copy);
	memcpy(copy, l, V * sizeof *l);
	sk_sample_cand *cand;
	int n = sk_sampler_filter(s, copy, NULL, 0, &cand);
	CHECK_EQ_INT(n, 64);
	int above = 0;
	for (int i = 0; i < V; i++)
		if (l[i] > cand[0].logit)
			above++;
	CHECK_EQ_INT(above, 0); /* cand[0] is the maximum */
	float minkept = INFINITY;
	for (int i = 0; i < V; i++)
		if (copy[i] > -INFINITY && copy[i] < minkept)
			minkept = copy[i];
	int larger = 0;
	for (int i = 0; i < V; i++)
		if (l[i] >= minkept)
			larger++;
	CHECK_EQ_INT(larger, 64);
	sk_sampler_free(s);
	free(copy);
	free(l);
}

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x < y) - (x > y);
}

TEST(top_p_and_min_p_large_vocab_match_a_full_sort)
{
	/* many candidates (the histogram path): the kept set is exactly the
	 * smallest top set reaching p, computed here by sorting everything */
	enum { V = 50000 };
	float *l = malloc(V * sizeof *l), *sorted = malloc(V * sizeof *l), *work = malloc(V * sizeof *l);
	for (int i = 0; i < V; i++)
		l[i] = (float)(3.0 * sin(i * 12.9898) + 2.0 * cos(i * 0.0137)); /* spread over ~10 logits */
	const float ps[] = { 0.3f, 0.8f, 0.95f, 0.999f };
	for (size_t t = 0; t < sizeof ps / sizeof ps[0]; t++) {
		memcpy(sorted, l, V * sizeof *l);
		qsort(sorted, V, sizeof *sorted, cmp_desc);
		double total = 0.0, above = 0.0;
		for (int i = 0; i < V; i++)
			total += exp((double)sorted[i] - sorted[0]);
		int want = 0;
		while (want < V && (want == 0 || above < ps[t] * total))
			above += exp((double)sorted[want++] - sorted[0]);
		sk_sampling c = plain();
		c.top_p = ps[t];
		sk_sampler *s = sk_sampler_new(&c, V);
		memcpy(work, l, V * sizeof *l);
		sk_sample_cand *cand;
		int n = sk_sampler_filter(s, work, NULL, 0, &cand);
		CHECK_MSG(n == want, "top_p %g: kept %d, want %d", (double)ps[t], n, want);
		int kept = 0;
		for (int i = 0; i < V; i++)
			kept += work[i] > -INFINITY;
		CHECK_EQ_INT(kept, n);
		for (int j = 1; j < n; j++)
			CHECK(cand[j - 1].logit >= cand[j].logit);
		CHECK(n < 1 || cand[n - 1].logit == sorted[n - 1]);
		sk_sampler_free(s);
	}
	/* min-p alone (no sort) and after top-p */
	int want = 0;
	float mx = -INFINITY;
	for (int i = 0; i < V; i++)
		mx = l[i] > mx ? l[i] : mx;
	for (int i = 0; i < V; i++)
		want += exp((double)l[i] - mx) >= 0.2;
	sk_sampling c = plain();
	c.min_p = 0.2f;
	sk_sampler *s = sk_sampler_new(&c, V);
	memcpy(work, l, V * sizeof *l);
	sk_sample_cand *cand;
	CHECK_EQ_INT(sk_sampler_filter(s, work, NULL, 0, &cand), want);
	CHECK(cand[0].logit == mx);
	sk_sampler_free(s);
	c.top_p = 0.999f;
	s = sk_sampler_new(&c, V);
	memcpy(work, l, V * sizeof *l);
	CHECK_EQ_INT(sk_sampler_filter(s, work, NULL, 0, &cand), want);
	sk_sampler_free(s);
	free(l);
	free(sorted);
	free(work);
}

int main(void)
{
	RUN(defaults_are_gemmas);
	RUN(greedy_is_argmax_lowest_id_on_ties);
	RUN(temperature_zero_is_greedy);
	RUN(temperature_scales_logits);
	RUN(top_k_keeps_k_and_boundary_ties);
	RUN(top_p_keeps_smallest_set_reaching_p);
	RUN(top_p_always_keeps_one);
	RUN(min_p_relative_to_max_prob);
	RUN(filters_apply_in_transformers_order);
	RUN(repeat_penalty_ctrl_rule_once_per_id);
	RUN(masked_out_everything_is_an_error);
	RUN(masked_tokens_are_never_drawn);
	RUN(invalid_settings_rejected);
	RUN(same_seed_same_draws_different_seed_different);
	RUN(seed_independent_of_other_samplers);
	RUN(distribution_matches_probabilities);
	RUN(distribution_after_temperature_and_top_k);
	RUN(uniform_is_uniform);
	RUN(large_vocab_top_k);
	RUN(top_p_and_min_p_large_vocab_match_a_full_sort);
	TEST_EXIT();
}
