/* Token sampling: repetition penalty, temperature, top-k, top-p and min-p,
 * applied in that order (the order transformers' generate() applies its
 * processors), then a draw from the renormalized distribution with the
 * sampler's own seeded RNG. */
#include "engine/model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/splitmix.h"

struct sk_sampler {
	sk_sampling cfg;
	int32_t vocab;
	uint64_t rng[4];     /* xoshiro256** state */
	uint8_t *seen;       /* vocab flags, for distinct ids of the history */
	sk_sample_cand *cand; /* vocab candidates */
};

void sk_sampling_defaults(sk_sampling *s)
{
	memset(s, 0, sizeof *s);
	s->greedy = 0;
	s->temperature = 1.0f;
	s->top_k = 64;
	s->top_p = 0.95f;
	s->min_p = 0.0f;
	s->repeat_penalty = 1.0f;
	s->seed = 3407;
}

static uint64_t sk_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t sk_xoshiro_next(uint64_t *s)
{
	uint64_t r = sk_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = sk_rotl(s[3], 45);
	return r;
}

void sk_sampler_reseed(sk_sampler *s, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		s->rng[i] = sk_splitmix64(&x); /* nearby seeds S, S+1 give unrelated streams */
	s->cfg.seed = seed;
}

double sk_sampler_uniform(sk_sampler *s)
{
	/* 53 random bits: uniform in [0, 1) */
	return (double)(sk_xoshiro_next(s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

sk_sampler *sk_sampler_new(const sk_sampling *cfg, int32_t vocab)
{
	if (vocab <= 0) {
		sk_fail(_("sampler: vocabulary size %d is not positive"), (int)vocab);
		return NULL;
	}
	if (!(cfg->temperature >= 0.0f) || !isfinite(cfg->temperature) || cfg->top_k < 0 ||
	    !(cfg->top_p > 0.0f && cfg->top_p <= 1.0f) || !(cfg->min_p >= 0.0f && cfg->min_p <= 1.0f) ||
	    !(cfg->repeat_penalty > 0.0f) || !isfinite(cfg->repeat_penalty)) {
		sk_fail(_("sampler: invalid settings (temperature %g, top-k %d, top-p %g, min-p %g, "
		          "repetition penalty %g)"),
		        (double)cfg->temperature, cfg->top_k, (double)cfg->top_p, (double)cfg->min_p,
		        (double)cfg->repeat_penalty);
		return NULL;
	}
	sk_sampler *s = calloc(1, sizeof *s);
	if (!s) {
		sk_fail(_("sampler: out of memory"));
		return NULL;
	}
	s->cfg = *cfg;
	s->vocab = vocab;
	s->seen = calloc((size_t)vocab, 1);
	s->cand = malloc((size_t)vocab * sizeof *s->cand);
	if (!s->seen || !s->cand) {
		sk_sampler_free(s);
		sk_fail(_("sampler: out of memory"));
		return NULL;
	}
	sk_sampler_reseed(s, cfg->seed);
	return s;
}

void sk_sampler_free(sk_sampler *s)
{
	if (!s)
		return;
	free(s->seen);
	free(s->cand);
	free(s);
}

const sk_sampling *sk_sampler_settings(const sk_sampler *s)
{
	return &s->cfg;
}

/* CTRL's rule: a seen token's logit is divided by the penalty when positive,
 * multiplied when negative, once per distinct id. */
static void sk_apply_repeat_penalty(sk_sampler *s, float *logits, const int32_t *h, size_t n)
{
	float pen = s->cfg.repeat_penalty;
	if (pen == 1.0f || !h)
		return;
	for (size_t i = 0; i < n; i++) {
		int32_t id = h[i];
		if (id < 0 || id >= s->vocab || s->seen[id])
			continue;
		s->seen[id] = 1;
		logits[id] = logits[id] > 0.0f ? logits[id] / pen : logits[id] * pen;
	}
	for (size_t i = 0; i < n; i++)
		if (h[i] >= 0 && h[i] < s->vocab)
			s->seen[h[i]] = 0;
}

/* The lowest id of the largest logit, like torch.argmax (NaN never wins;
 * -1 when nothing beats -inf). Two passes: the maximum in 8 independent
 * lanes the compiler vectorizes, then the first id that holds it; over a
 * 262,144-token vocabulary that is several times faster than one
 * compare-and-branch chain. */
static int32_t sk_argmax(const float *logits, int32_t vocab)
{
	float m[8] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY };
	int32_t i = 0;
	for (; i + 8 <= vocab; i += 8)
		for (int k = 0; k < 8; k++)
			m[k] = logits[i + k] > m[k] ? logits[i + k] : m[k];
	float bv = -INFINITY;
	for (int k = 0; k < 8; k++)
		bv = m[k] > bv ? m[k] : bv;
	for (; i < vocab; i++)
		bv = logits[i] > bv ? logits[i] : bv;
	if (!(bv > -INFINITY))
		return -1;
	for (i = 0; i < vocab; i++)
		if (logits[i] == bv)
			return i;
	return -1;
}

/* Descending by logit, ties by increasing id (a deterministic order). */
static int sk_cand_cmp(const void *a, const void *b)
{
	const sk_sample_cand *x = a, *y = b;
	if (x->logit > y->logit)
		return -1;
	if (x->logit < y->logit)
		return 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Min-heap on logit (root = smallest of the k kept so far). */
static void sk_heap_down(sk_sample_cand *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && h[l].logit < h[m].logit)
			m = l;
		if (r < n && h[r].logit < h[m].logit)
			m = r;
		if (m == i)
			return;
		sk_sample_cand t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* The k-th largest of the finite logits (k <= count of finite ones). */
static float sk_kth_largest(sk_sampler *s, const float *logits, int32_t k)
{
	sk_sample_cand *h = s->cand;
	size_t n = 0;
	for (int32_t i = 0; i < s->vocab; i++) {
		float v = logits[i];
		if (!(v > -INFINITY))
			continue;
		if (n < (size_t)k) {
			h[n++] = (sk_sample_cand){ v, i };
			if (n == (size_t)k)
				for (size_t j = n / 2; j-- > 0;)
					sk_heap_down(h, n, j);
		} else if (v > h[0].logit) {
			h[0] = (sk_sample_cand){ v, i };
			sk_heap_down(h, n, 0);
		}
	}
	return h[0].logit;
}

/* Top-p over the n candidates (unsorted; maxl their largest logit): the
 * smallest top set whose mass reaches p, i.e. a token stays while the mass
 * strictly above it is below p. Only the tokens that can be in that set are
 * sorted: a histogram of the mass over (max - logit) finds the bin where the
 * running mass reaches p, and everything past that bin is dropped unsorted
 * (a full sort of a 262144-token vocabulary costs ~100 ms a token). Leaves
 * the kept candidates sorted, most likely first. */
static size_t sk_top_p(sk_sampler *s, float *logits, size_t n, double maxl)
{
	enum { NBINS = 1024, PER_UNIT = 32 }; /* bins 1/32 of a logit wide, up to 32 below the max */
	sk_sample_cand *cand = s->cand;
	double total = 0.0;
	for (size_t j = 0; j < n; j++)
		total += exp((double)cand[j].logit - maxl);
	double p = (double)s->cfg.top_p * total;
	if (n > 2048) {
		double mass[NBINS] = { 0 };
		for (size_t j = 0; j < n; j++) {
			double d = (maxl - cand[j].logit) * PER_UNIT;
			int b = d < NBINS - 1 ? (int)d : NBINS - 1;
			mass[b] += exp((double)cand[j].logit - maxl);
		}
		double acc = 0.0;
		int last = NBINS - 1;
		for (int b = 0; b < NBINS; b++) {
			acc += mass[b];
			if (acc >= p) {
				last = b;
				break;
			}
		}
		size_t k = 0;
		for (size_t j = 0; j < n; j++) {
			double d = (maxl - cand[j].logit) * PER_UNIT;
			int b = d < NBINS - 1 ? (int)d : NBINS - 1;
			if (b <= last)
				cand[k++] = cand[j];
			else
				logits[cand[j].id] = -INFINITY;
		}
		n = k;
	}
	qsort(cand, n, sizeof *cand, sk_cand_cmp);
	double above = 0.0;
	size_t keep = 0;
	while (keep < n && (keep == 0 || above < p)) {
		above += exp((double)cand[keep].logit - maxl);
		keep++;
	}
	for (size_t j = keep; j < n; j++)
		logits[cand[j].id] = -INFINITY;
	return keep;
}

int sk_sampler_filter(sk_sampler *s, float *logits, const int32_t *history, size_t n_history,
                      sk_sample_cand **out)
{
	const sk_sampling *c = &s->cfg;
	sk_apply_repeat_penalty(s, logits, history, n_history);

	/* NaN counts as removed: it can never be drawn. A +inf logit takes all
	 * the mass: the +inf tokens share it evenly. */
	int32_t n_finite = 0, n_inf = 0;
	for (int32_t i = 0; i < s->vocab; i++) {
		if (isnan(logits[i]))
			logits[i] = -INFINITY;
		if (logits[i] > -INFINITY)
			n_finite++;
		if (logits[i] == INFINITY)
			n_inf++;
	}
	if (n_finite == 0)
		return sk_fail(_("sampler: every token has been masked out"));
	if (n_inf > 0)
		for (int32_t i = 0; i < s->vocab; i++)
			logits[i] = logits[i] == INFINITY ? 0.0f : -INFINITY;

	if (c->temperature != 1.0f && c->temperature > 0.0f) {
		for (int32_t i = 0; i < s->vocab; i++)
			logits[i] /= c->temperature;
	}

	/* top-k keeps every token at least as likely as the k-th, so ties at
	 * the boundary all stay (as transformers' `scores < kth` mask does). */
	if (c->top_k > 0 && c->top_k < n_finite) {
		float kth = sk_kth_largest(s, logits, c->top_k);
		for (int32_t i = 0; i < s->vocab; i++)
			if (logits[i] < kth)
				logits[i] = -INFINITY;
	}

	size_t n = 0;
	size_t m = 0;
	for (int32_t i = 0; i < s->vocab; i++)
		if (logits[i] > -INFINITY) {
			if (n == 0 || logits[i] > s->cand[m].logit)
				m = n;
			s->cand[n++] = (sk_sample_cand){ logits[i], i };
		}
	double maxl = s->cand[m].logit;

	if (c->top_p < 1.0f) {
		n = sk_top_p(s, logits, n, maxl);
	} else if (c->min_p > 0.0f) {
		/* min-p alone needs no order: p / p_max = exp(logit - max logit) */
		size_t keep = 0;
		for (size_t j = 0; j < n; j++) {
			if (exp((double)s->cand[j].logit - maxl) >= (double)c->min_p)
				s->cand[keep++] = s->cand[j];
			else
				logits[s->cand[j].id] = -INFINITY;
		}
		n = keep;
	}
	if (c->top_p < 1.0f && c->min_p > 0.0f) {
		/* sorted by now: the kept tokens are a prefix */
		size_t keep = 1;
		while (keep < n && exp((double)s->cand[keep].logit - maxl) >= (double)c->min_p)
			keep++;
		for (size_t j = keep; j < n; j++)
			logits[s->cand[j].id] = -INFINITY;
		n = keep;
	}
	if (c->top_p >= 1.0f) {
		/* unsorted is fine for the draw; only the maximum goes first */
		size_t mx = 0;
		for (size_t j = 1; j < n; j++)
			if (s->cand[j].logit > s->cand[mx].logit)
				mx = j;
		sk_sample_cand t = s->cand[0];
		s->cand[0] = s->cand[mx];
		s->cand[mx] = t;
	}
	if (out)
		*out = s->cand;
	return (int)n;
}

int32_t sk_sampler_sample(sk_sampler *s, float *logits, const int32_t *history, size_t n_history)
{
	if (s->cfg.greedy || s->cfg.temperature <= 0.0f) {
		sk_apply_repeat_penalty(s, logits, history, n_history);
		int32_t id = sk_argmax(logits, s->vocab);
		if (id < 0)
			sk_fail(_("sampler: every token has been masked out"));
		return id;
	}
	sk_sample_cand *cand;
	int n = sk_sampler_filter(s, logits, history, n_history, &cand);
	if (n < 0)
		return -1;
	double maxl = cand[0].logit, total = 0.0;
	for (int j = 0; j < n; j++)
		total += exp((double)cand[j].logit - maxl);
	double u = sk_sampler_uniform(s) * total, acc = 0.0;
	for (int j = 0; j < n; j++) {
		acc += exp((double)cand[j].logit - maxl);
		if (u < acc)
			return cand[j].id;
	}
	return cand[n - 1].id; /* rounding left u just past the sum */
}
