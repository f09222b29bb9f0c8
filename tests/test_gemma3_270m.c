/* sokhan's forward pass on the default model (Gemma 3 270M, GGUF Q4_K_M)
 * against the fp32 reference of Hugging Face transformers over the same
 * dequantized weights (tests/fixtures/gemma3-270m/reference.json, made by
 * make_reference.py beside it), twice: the CPU backend's fp32 path
 * (SK_CPU_EXACT, what training computes), which matches the reference to
 * rounding, and its integer kernels (the inference default), which
 * quantize each activation row to 8 bits in blocks of 32 before every
 * matmul. Needs the model: SK_DEFAULT_MODEL. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/model/generate.h"
#include "engine/model/model.h"
#include "engine/text/tokenizer.h"
#include "tests/test.h"

/* Logit gap (reference top-1 minus the reference logit of sokhan's pick)
 * under which a different argmax counts as a near-tie: both are in fp32
 * over the same weights, so only summation order separates them. */
#define SK_NEAR_TIE 0.5

/* The integer kernels' tolerance. Each matmul output moves by at most half
 * an activation step times Σ|w| per block of 32 (tests/test_q8.c checks
 * every kernel against that bound); over 18 layers this model's logits
 * move by about 0.2 on average and 1.5 at most at the reference's top 8
 * (measured 2026-12-06 on AVX-512 VNNI, AVX2 and the portable kernels:
 * mean 0.20-0.21, max 1.37-1.67, top-1 agreement 122/129, every
 * disagreement and greedy divergence at a reference gap under 0.33, 0.56
 * in an earlier build; 8-bit activations in blocks of 32 are also what
 * llama.cpp computes with for these weights). The checks: mean under
 * 0.35, max under 3, agreement at least 90%, and a different argmax or
 * greedy token only where the reference's own gap is under 1. */
#define SK_Q8_NEAR_TIE 1.0
#define SK_Q8_MEAN_DIFF 0.35
#define SK_Q8_MAX_DIFF 3.0
#define SK_Q8_AGREE_PCT 90

static json_t *ref;            /* the fixture */
static sk_model *models[2];    /* integer kernels, fp32 (exact); NULL when SK_DEFAULT_MODEL is unset */
static int models_tried[2];

static json_t *load_ref(void)
{
	if (!ref) {
		json_error_t err;
		ref = json_load_file(sk_test_path("tests/fixtures/gemma3-270m/reference.json"), 0, &err);
		if (!ref) fprintf(stderr, "  reference.json: %s (line %d)\n", err.text, err.line);
	}
	return ref;
}

static sk_model *get_model(int exact)
{
	if (!models_tried[exact]) {
		models_tried[exact] = 1;
		const char *p = getenv("SK_DEFAULT_MODEL");
		if (p && *p) {
			sk_model_opts o = {.device = SK_DEVICE_CPU, .quant_nf4 = 0, .threads = 0};
			const char *t = getenv("SK_THREADS");
			if (t) o.threads = atoi(t);
			/* the backend reads SK_CPU_EXACT when it is made */
			if (exact) setenv("SK_CPU_EXACT", "1", 1);
			models[exact] = sk_model_load(p, &o);
			if (exact) unsetenv("SK_CPU_EXACT");
			if (!models[exact]) fprintf(stderr, "  %s: %s\n", p, sk_error());
		}
	}
	return models[exact];
}

/* Skips the case (returns NULL) without the model; fails when it is set but
 * does not load. */
static sk_model *need_model_as(int exact)
{
	const char *p = getenv("SK_DEFAULT_MODEL");
	if (!p || !*p) {
		SKIP("SK_DEFAULT_MODEL not set (data/fetch-model.sh)");
		return NULL;
	}
	sk_model *m = get_model(exact);
	CHECK_MSG(m != NULL, "the default model did not load");
	return m;
}

static sk_model *need_model(void)
{
	return need_model_as(0);
}

/* ids of a JSON array of integers into a malloc'd array; n gets the count. */
static int32_t *json_ids(json_t *a, size_t *n)
{
	*n = json_array_size(a);
	int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
	if (!v) return NULL;
	for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, i));
	return v;
}

static int32_t argmax(const float *x, int32_t n)
{
	int32_t b = 0;
	for (int32_t i = 1; i < n; i++)
		if (x[i] > x[b]) b = i;
	return b;
}

/* Reference logit of id among a row's top-k, or NAN when it is not there. */
static double ref_logit_of(json_t *top_ids, json_t *top_logits, int32_t id)
{
	for (size_t k = 0; k < json_array_size(top_ids); k++)
		if (json_integer_value(json_array_get(top_ids, k)) == id)
			return json_number_value(json_array_get(top_logits, k));
	return NAN;
}

/* The fixture itself is sane: it runs without the model. */
TEST(test_reference_fixture)
{
	json_t *r = load_ref();
	CHECK(r != NULL);
	if (!r) return;
	json_t *ps = json_object_get(r, "prompts");
	CHECK_EQ_INT(json_array_size(ps), 8);
	size_t i;
	json_t *p;
	int n_persian = 0;
	json_array_foreach(ps, i, p) {
		json_t *ids = json_object_get(p, "ids");
		json_t *ti = json_object_get(p, "top_ids"), *tl = json_object_get(p, "top_logits");
		CHECK(json_array_size(ids) >= 3);
		CHECK_EQ_INT(json_integer_value(json_array_get(ids, 0)), 2); /* <bos> */
		CHECK_EQ_INT(json_array_size(ti), json_array_size(ids));
		CHECK_EQ_INT(json_array_size(tl), json_array_size(ids));
		CHECK_EQ_INT(json_array_size(json_object_get(p, "greedy")), 16);
		for (size_t j = 0; j < json_array_size(tl); j++) {
			json_t *row = json_array_get(tl, j);
			CHECK_EQ_INT(json_array_size(row), 8);
			for (size_t k = 1; k < json_array_size(row); k++)
				CHECK(json_number_value(json_array_get(row, k - 1)) >= json_number_value(json_array_get(row, k)));
		}
		const char *name = json_string_value(json_object_get(p, "name"));
		if (name && strncmp(name, "fa_", 3) == 0) n_persian++;
	}
	CHECK_EQ_INT(n_persian, 4);
}

/* sokhan's tokenizer (from the GGUF) gives transformers' ids. */
TEST(test_tokenize_matches_reference)
{
	json_t *r = load_ref();
	sk_model *m = need_model();
	if (!r || !m) return;
	const sk_tokenizer *tok = sk_model_tokenizer(m);
	CHECK(tok != NULL);
	if (!tok) return;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(r, "prompts"), i, p) {
		const char *text = json_string_value(json_object_get(p, "text"));
		size_t n;
		int32_t *want = json_ids(json_object_get(p, "ids"), &n);
		sk_ids got = {0};
		CHECK(want && text);
		if (!want || !text) { free(want); continue; }
		CHECK(sk_tokenizer_encode(tok, text, strlen(text), 1, &got) == 0);
		CHECK_EQ_INT(got.n, n);
		int same = got.n == n && memcmp(got.v, want, n * sizeof *want) == 0;
		CHECK_MSG(same, "%s: ids differ", json_string_value(json_object_get(p, "name")));
		sk_ids_free(&got);
		free(want);
	}
}

/* Every prompt in one forward with all logits: sokhan's argmax against the
 * reference top-1 at every position, and its logits at the reference top-8
 * ids against the reference values. */
static void top1_agreement(int exact)
{
	json_t *r = load_ref();
	sk_model *m = need_model_as(exact);
	if (!r || !m) return;
	const char *label = exact ? "fp32" : "integer kernels";
	double near_tie = exact ? SK_NEAR_TIE : SK_Q8_NEAR_TIE;
	int32_t V = sk_model_vocab(m);
	CHECK_EQ_INT(V, 262144);
	int total = 0, agree = 0, clear_disagree = 0;
	double max_diff = 0, sum_diff = 0;
	int n_diff = 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(r, "prompts"), i, p) {
		size_t n;
		int32_t *ids = json_ids(json_object_get(p, "ids"), &n);
		float *logits = ids ? malloc(n * (size_t)V * sizeof *logits) : NULL;
		sk_kv_cache *kv = sk_kv_cache_new(m, 1, 0);
		CHECK(ids && logits && kv);
		if (!ids || !logits || !kv) {
			free(ids), free(logits), sk_kv_cache_free(kv);
			continue;
		}
		sk_batch_item it = {.seq = 0, .ids = ids, .n = (int)n, .adapter_on = 0, .all_logits = 1};
		int rc = sk_model_forward(m, kv, &it, 1, logits);
		CHECK_MSG(rc == 0, "forward: %s", sk_error());
		if (rc == 0) {
			CHECK_EQ_INT(sk_kv_cache_pos(kv, 0), n);
			json_t *ti = json_object_get(p, "top_ids"), *tl = json_object_get(p, "top_logits");
			for (size_t j = 0; j < n; j++) {
				const float *row = logits + j * (size_t)V;
				json_t *rid = json_array_get(ti, j), *rlg = json_array_get(tl, j);
				int32_t want = (int32_t)json_integer_value(json_array_get(rid, 0));
				int32_t got = argmax(row, V);
				total++;
				if (got == want) {
					agree++;
				} else {
					double gap = json_number_value(json_array_get(rlg, 0)) - ref_logit_of(rid, rlg, got);
					fprintf(stderr, "  # %s: %s pos %zu: sokhan %d, reference %d, reference gap %.4f\n", label,
					        json_string_value(json_object_get(p, "name")), j, got, want, gap);
					if (!(gap < near_tie)) clear_disagree++;
				}
				for (size_t k = 0; k < json_array_size(rid); k++) {
					int32_t id = (int32_t)json_integer_value(json_array_get(rid, k));
					double d = fabs(row[id] - json_number_value(json_array_get(rlg, k)));
					if (d > max_diff) max_diff = d;
					sum_diff += d;
					n_diff++;
				}
			}
		}
		sk_kv_cache_free(kv);
		free(ids);
		free(logits);
	}
	double mean_diff = n_diff ? sum_diff / n_diff : 0.0;
	printf("# %s: top-1 agreement: %d/%d positions (%.2f%%), %d outside near-ties\n", label, agree, total,
	       total ? 100.0 * agree / total : 0.0, clear_disagree);
	printf("# %s: |logit - reference| at the reference top-8: max %.4f, mean %.4f\n", label, max_diff, mean_diff);
	CHECK(total > 100);
	CHECK_EQ_INT(clear_disagree, 0);
	if (exact) {
		CHECK_MSG(agree * 100 >= total * 99, "%d/%d", agree, total);
		/* Same weights, both fp32: measured max 0.0001 (2026-11); a wrong
		 * norm, rope or mask moves them by units. */
		CHECK_MSG(max_diff < 0.25, "max diff %g", max_diff);
	} else {
		CHECK_MSG(agree * 100 >= total * SK_Q8_AGREE_PCT, "%d/%d", agree, total);
		CHECK_MSG(max_diff < SK_Q8_MAX_DIFF, "max diff %g", max_diff);
		CHECK_MSG(mean_diff < SK_Q8_MEAN_DIFF, "mean diff %g", mean_diff);
	}
}

TEST(test_top1_agreement)
{
	top1_agreement(1);
}

TEST(test_top1_agreement_integer)
{
	top1_agreement(0);
}

/* Greedy decoding through the KV cache (prefill, then one token per forward)
 * against the reference's full recompute. A divergence is accepted only
 * after a near-tie in the reference. */
static void greedy_continuation(int exact)
{
	json_t *r = load_ref();
	sk_model *m = need_model_as(exact);
	if (!r || !m) return;
	const char *label = exact ? "fp32" : "integer kernels";
	double near_tie = exact ? SK_NEAR_TIE : SK_Q8_NEAR_TIE;
	int32_t V = sk_model_vocab(m);
	float *logits = malloc((size_t)V * sizeof *logits);
	CHECK(logits != NULL);
	if (!logits) return;
	int matched = 0, total = 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(r, "prompts"), i, p) {
		const char *name = json_string_value(json_object_get(p, "name"));
		size_t n, ng;
		int32_t *ids = json_ids(json_object_get(p, "ids"), &n);
		int32_t *want = json_ids(json_object_get(p, "greedy"), &ng);
		sk_kv_cache *kv = sk_kv_cache_new(m, 1, 0);
		CHECK(ids && want && kv);
		if (!ids || !want || !kv) {
			free(ids), free(want), sk_kv_cache_free(kv);
			continue;
		}
		sk_batch_item it = {.seq = 0, .ids = ids, .n = (int)n, .adapter_on = 0, .all_logits = 0};
		int rc = sk_model_forward(m, kv, &it, 1, logits);
		CHECK_MSG(rc == 0, "%s: prefill: %s", name, sk_error());
		size_t k = 0;
		for (; rc == 0 && k < ng; k++) {
			int32_t got = argmax(logits, V);
			if (got != want[k]) {
				json_t *rid = json_array_get(json_object_get(p, "greedy_top_ids"), k);
				json_t *rlg = json_array_get(json_object_get(p, "greedy_top_logits"), k);
				double gap = ref_logit_of(rid, rlg, want[k]) - ref_logit_of(rid, rlg, got);
				fprintf(stderr, "  # %s: %s: diverges at token %zu: sokhan %d, reference %d, reference gap %.4f\n",
				        label, name, k, got, want[k], gap);
				CHECK_MSG(gap < near_tie, "%s: divergence at token %zu is not a near-tie (gap %g)", name, k,
				          gap);
				break;
			}
			if (k + 1 == ng) {
				k++;
				break;
			}
			it.ids = &want[k];
			it.n = 1;
			rc = sk_model_forward(m, kv, &it, 1, logits);
			CHECK_MSG(rc == 0, "%s: decode: %s", name, sk_error());
		}
		printf("# %s: %s: %zu/%zu greedy tokens match before the first divergence\n", label, name, k, ng);
		matched += (int)k;
		total += (int)ng;
		sk_kv_cache_free(kv);
		free(ids);
		free(want);
	}
	printf("# %s: greedy: %d/%d tokens match in all\n", label, matched, total);
	/* Near-ties can end a prompt early, but not most of them in fp32; the
	 * integer kernels' noise meets more of them, each checked above. */
	if (exact)
		CHECK(matched * 4 >= total * 3);
	free(logits);
}

TEST(test_greedy_continuation)
{
	greedy_continuation(1);
}

TEST(test_greedy_continuation_integer)
{
	greedy_continuation(0);
}

struct gen_text {
	char buf[4096];
	size_t len;
};

static int on_token(void *ctx, int i, int32_t id, const char *text)
{
	(void)i, (void)id;
	struct gen_text *g = ctx;
	size_t l = text ? strlen(text) : 0;
	if (g->len + l < sizeof g->buf) {
		memcpy(g->buf + g->len, text, l);
		g->len += l;
		g->buf[g->len] = '\0';
	}
	return 0;
}

static void generate_print(sk_model *m, const char *prompt, int max_new, struct gen_text *g)
{
	sk_ids ids = {0};
	g->len = 0;
	g->buf[0] = '\0';
	const sk_tokenizer *tok = sk_model_tokenizer(m);
	CHECK(tok && sk_tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids) == 0);
	sk_gen_request rq = {.prompt = ids.v, .n_prompt = ids.n, .max_new = max_new, .adapter_on = 0,
	                     .ignore_eos = 0};
	sk_sampling_defaults(&rq.sampling);
	rq.sampling.greedy = 1;
	sk_gen_stats st = {0};
	int rc = sk_generate(m, &rq, 1, on_token, g, &st);
	CHECK_MSG(rc == 0, "generate: %s", sk_error());
	printf("# %s|%s\n", prompt, g->buf);
	if (st.decode_s > 0 && st.n_generated > 1)
		printf("# (%d prompt tokens, %d generated, prefill %.3f s, decode %.1f tokens/s)\n",
		       st.n_prompt_tokens, st.n_generated, st.prefill_s, (st.n_generated - 1) / st.decode_s);
	sk_ids_free(&ids);
}

/* A readable continuation through sk_generate (greedy), printed for a human
 * to judge; the checks are the facts a working model gets right. */
TEST(test_generate_coherent)
{
	sk_model *m = need_model();
	if (!m) return;
	static struct gen_text g;
	generate_print(m, "The capital of France is", 24, &g);
	/* The reference's greedy text: " the capital of the country of France. It is ..." */
	CHECK_MSG(strstr(g.buf, "France") != NULL, "no France in %s", g.buf);
	generate_print(m, "Once upon a time, in a small village by the sea, there lived", 40, &g);
	CHECK(g.len > 40);
	generate_print(m, "پایتخت ایران", 24, &g);
	/* Persian text out: Arabic-script letters (lead bytes 0xD8..0xDB), and
	 * never a replacement character from a split UTF-8 sequence. */
	int arabic = 0;
	for (size_t i = 0; i + 1 < g.len; i++)
		if ((unsigned char)g.buf[i] >= 0xD8 && (unsigned char)g.buf[i] <= 0xDB) arabic++;
	CHECK_MSG(arabic >= 10, "%s", g.buf);
	CHECK(strstr(g.buf, "\xEF\xBF\xBD") == NULL);
}

int main(void)
{
	RUN(test_reference_fixture);
	RUN(test_tokenize_matches_reference);
	RUN(test_top1_agreement);
	RUN(test_top1_agreement_integer);
	RUN(test_greedy_continuation);
	RUN(test_greedy_continuation_integer);
	RUN(test_generate_coherent);
	sk_model_free(models[0]);
	sk_model_free(models[1]);
	json_decref(ref);
	TEST_EXIT();
}
