/* Whole-model LoRA gradients (train_grad.h) against Hugging Face + PEFT
 * autograd (tests/fixtures/hf/,  made by tests/fixtures/make_fixtures.py):
 * loss and every gradient tensor of the fixture adapters on tiny Gemma 3n
 * (sparsity layers, KV-shared layers, sliding window) and Gemma 3, with and
 * without gradient checkpointing; loss-only mode against the forward's
 * logits; central finite differences on chosen parameters (fp32 and NF4
 * bases, with dropout); batching; trainable adapter creation. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend/backend_cpu_exact.h"
#include "engine/error.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"
#include "engine/model/model_internal.h" /* the model's backend, for the out-of-memory case */
#include "engine/format/safetensors.h"
#include "engine/train/train_grad.h"
#include "tests/test.h"

#define GN "tests/fixtures/hf/tiny-gemma3n"
#define G3 "tests/fixtures/hf/tiny-gemma3"

typedef struct {
	char tag[32], dir[64], file[64];
	int32_t ids[64];
	int n, k;
	double loss;
} grad_ref;

static int load_grad_refs(const char *model, grad_ref *out, int cap)
{
	char p[4400];
	snprintf(p, sizeof p, "%s/ref/manifest.json", sk_test_path(model));
	json_error_t e;
	json_t *root = json_load_file(p, 0, &e);
	if (!root)
		return -1;
	int n = 0;
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(root, "adapters"), i, a) {
		json_t *g = json_object_get(a, "grad");
		if (!g || n >= cap)
			continue;
		grad_ref *r = &out[n++];
		memset(r, 0, sizeof *r);
		snprintf(r->tag, sizeof r->tag, "%s", json_string_value(json_object_get(a, "tag")));
		snprintf(r->dir, sizeof r->dir, "%s", json_string_value(json_object_get(a, "dir")));
		snprintf(r->file, sizeof r->file, "%s", json_string_value(json_object_get(g, "file")));
		size_t k;
		json_t *v;
		json_array_foreach(json_object_get(g, "ids"), k, v) {
			if (r->n < 64)
				r->ids[r->n++] = (int32_t)json_integer_value(v);
		}
		r->k = (int)json_integer_value(json_object_get(g, "mask_prefix"));
		r->loss = json_real_value(json_object_get(g, "loss"));
	}
	json_decref(root);
	return n;
}

static sk_model *load_model(const char *rel, int nf4)
{
	sk_model_opts o = { SK_DEVICE_CPU, nf4, 2 };
	sk_model *m = sk_model_load(sk_test_path(rel), &o);
	if (!m)
		fprintf(stderr, "  load %s: %s\n", rel, sk_error());
	return m;
}

static sk_lora *load_adapter(const char *model, const char *dir, const sk_model *m)
{
	char p[4400];
	snprintf(p, sizeof p, "%s/ref/%s", sk_test_path(model), dir);
	sk_lora *l = sk_lora_load(p, sk_model_config(m));
	if (!l)
		fprintf(stderr, "  adapter %s: %s\n", p, sk_error());
	else if (sk_lora_make_trainable(l) != 0) {
		sk_lora_free(l);
		l = NULL;
	}
	return l;
}

static double rel_l2(const float *a, const float *ref, size_t n)
{
	double d = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		d += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
		s += (double)ref[i] * ref[i];
	}
	return s > 0 ? sqrt(d / s) : (d > 0 ? INFINITY : 0);
}

/* labels = ids with the first k ignored (HF shifts: target i ≥ k) */
static void make_seq(const grad_ref *r, uint8_t *target, sk_train_seq *s)
{
	for (int i = 0; i < r->n; i++)
		target[i] = i >= r->k;
	s->ids = r->ids;
	s->target = target;
	s->n = r->n;
}

/* Gradients of every pair against the PEFT file; returns the worst relative
 * L2 error, and the number of tensors compared in *count. */
static double compare_grads(sk_lora *l, const char *model, const grad_ref *r, int *count, int verbose)
{
	char p[4400];
	snprintf(p, sizeof p, "%s/ref/%s", sk_test_path(model), r->file);
	sk_st_file *f = sk_st_open(p);
	CHECK(f != NULL);
	if (!f)
		return INFINITY;
	double worst = 0;
	*count = 0;
	for (int i = 0; i < sk_lora_pair_count(l); i++) {
		int layer;
		sk_lora_module mod;
		sk_lora_pair *pr = sk_lora_pair_at(l, i, &layer, &mod);
		for (int b = 0; b < 2; b++) {
			const char *name = sk_lora_key_name(l, layer, mod, b);
			const sk_tensor_view *t = name ? sk_st_find(f, name) : NULL;
			CHECK_MSG(t != NULL, "no reference for %s", name ? name : "?");
			if (!t)
				continue;
			size_t n = b ? (size_t)pr->out * pr->r : (size_t)pr->r * pr->in;
			CHECK(t->dtype == SK_DT_F32 && (size_t)sk_tensor_view_numel(t) == n);
			if (t->dtype != SK_DT_F32 || (size_t)sk_tensor_view_numel(t) != n)
				continue;
			float *ref = malloc(n * sizeof *ref);
			memcpy(ref, t->data, n * sizeof *ref);
			const float *g = b ? sk_lora_grad_B(l, i) : sk_lora_grad_A(l, i);
			double e = rel_l2(g, ref, n);
			if (verbose)
				printf("#   %-58s rel L2 %.2e\n", name, e);
			CHECK_MSG(e < 1e-3, "%s: rel L2 %g", name, e);
			if (e > worst || isnan(e))
				worst = e;
			(*count)++;
			free(ref);
		}
	}
	/* every reference tensor has a pair here */
	CHECK_EQ_INT(*count, (int)sk_st_count(f));
	sk_st_close(f);
	return worst;
}

static void check_model_grads(const char *model, const char *label, int ckpt)
{
	grad_ref refs[4];
	int nr = load_grad_refs(model, refs, 4);
	CHECK(nr > 0);
	sk_model *m = load_model(model, 0);
	CHECK(m != NULL);
	if (!m)
		return;
	for (int a = 0; a < nr; a++) {
		grad_ref *r = &refs[a];
		sk_lora *l = load_adapter(model, r->dir, m);
		CHECK(l != NULL);
		if (!l)
			continue;
		uint8_t target[64];
		sk_train_seq s;
		make_seq(r, target, &s);
		int64_t nt = r->n - r->k;
		sk_train_opts o = { 0.0f, 0, ckpt, (float)(1.0 / (double)nt), 1, 0, 0 };
		double loss = 0;
		int64_t n_t = 0;
		int rc = sk_model_loss_grad(m, l, &s, 1, &o, &loss, &n_t);
		CHECK_MSG(rc == 0, "%s", sk_error());
		CHECK_EQ_INT(n_t, nt);
		double mean = loss / (double)nt, le = fabs(mean - r->loss) / fabs(r->loss);
		int count = 0;
		double worst = compare_grads(l, model, r, &count, ckpt && a == 0 && getenv("SK_GRAD_VERBOSE"));
		printf("# %s adapter %s (ckpt %d): loss %.7f vs PEFT %.7f (rel %.1e); %d gradient tensors, worst rel L2 "
		       "%.2e\n",
		       label, r->tag, ckpt, mean, r->loss, le, count, worst);
		CHECK_MSG(le < 1e-4, "loss rel error %g", le);
		sk_lora_free(l);
	}
	sk_model_free(m);
}

TEST(gemma3n_grads_match_peft)
{
	check_model_grads(GN, "tiny-gemma3n", 1);
}

TEST(gemma3n_grads_match_peft_no_ckpt)
{
	check_model_grads(GN, "tiny-gemma3n", 0);
}

TEST(gemma3_grads_match_peft)
{
	check_model_grads(G3, "tiny-gemma3", 1);
	check_model_grads(G3, "tiny-gemma3", 0);
}

/* Loss-only mode equals the cross-entropy of the forward's logits. */
static void check_loss_only(const char *model)
{
	grad_ref refs[4];
	CHECK(load_grad_refs(model, refs, 4) > 0);
	sk_model *m = load_model(model, 0);
	CHECK(m != NULL);
	if (!m)
		return;
	sk_lora *l = load_adapter(model, refs[0].dir, m);
	CHECK(l != NULL);
	grad_ref *r = &refs[0];
	int V = sk_model_vocab(m);
	float *logits = malloc((size_t)r->n * V * sizeof *logits);
	sk_kv_cache *kv = sk_kv_cache_new(m, 1, 0);
	sk_model_set_adapter(m, l);
	sk_batch_item it = { 0, r->ids, r->n, 1, 1 };
	CHECK(sk_model_forward(m, kv, &it, 1, logits) == 0);
	sk_model_set_adapter(m, NULL);
	double ref = 0;
	for (int i = r->k; i < r->n; i++) {
		const float *z = logits + (size_t)(i - 1) * V;
		double mx = -INFINITY, s = 0;
		for (int j = 0; j < V; j++)
			mx = z[j] > mx ? z[j] : mx;
		for (int j = 0; j < V; j++)
			s += exp(z[j] - mx);
		ref += mx + log(s) - z[r->ids[i]];
	}
	uint8_t target[64];
	sk_train_seq s;
	make_seq(r, target, &s);
	sk_train_opts o = { 0.0f, 0, 1, 1.0f, 0, 0, 0 };
	double loss = -1;
	int64_t nt = 0;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &nt) == 0);
	printf("# %s loss-only %.7f, from forward logits %.7f\n", model, loss, ref);
	CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref));
	/* loss-only mode leaves the gradients alone */
	for (int i = 0; i < sk_lora_pair_count(l); i++)
		CHECK(sk_lora_grad_A(l, i)[0] == 0.0f && sk_lora_grad_B(l, i)[0] == 0.0f);
	sk_kv_cache_free(kv);
	free(logits);
	sk_lora_free(l);
	sk_model_free(m);
}

TEST(loss_only_matches_forward_logits)
{
	check_loss_only(GN);
	check_loss_only(G3);
}

/* ---- central differences ----
 *
 * Noise. A loss evaluation is a double sum of token losses computed from
 * fp32 activations, so it carries rounding noise, whose size depends on the
 * model and on the kernels this machine runs (AVX-512, AVX2 or portable;
 * OpenBLAS's choice). fd_noise measures it: the rms residual s_n of a
 * least-squares quartic through L at 17 nearby points (0.2 to 0.6 u|L| on
 * the tiny fixtures, 1.2 to 2 u|L| on the default model, u = 2^-24; single
 * residuals reach 3 s_n). σ = FD_NOISE s_n bounds the error of one
 * evaluation; the bounds below add such errors at their worst (all at +σ
 * or -σ, in whichever direction hurts), about twice their typical sum, which
 * leaves room for s_n's own spread (12 degrees of freedom).
 *
 * Step. An entry θ of scale s = max(|θ|, rms of its tensor) is perturbed by
 * t = k·h, k in {±1, ±2, ±4, ±8}, rounded to float (the offsets used are the
 * rounded ones, exactly), first with h = s/2: on the parameter's own scale,
 * where the change in L stands far above its noise.
 *
 * Estimate. D = p'(0), p the quartic through t in {0, ±h, ±2h}: truncation
 * O(h^4 L^(5)); noise at most σ Σ|w_j| ≈ 1.5σ/h (w_j the weights of p'(0)).
 *
 * Kinks. Gemma 3n's sparsity cutoff relu(g - (mean + z·std)) makes the loss
 * only piecewise smooth in parameters upstream of it: a perturbation that
 * crosses a kink (a slope jump J) shifts D by up to J/2. With
 * q(δ) = 6δ^3 |L[-2δ,-δ,0,δ,2δ]| (a fourth divided difference; |Δ^4 L| / 4δ
 * for equal spacing), for one kink anywhere in [-8h, 8h] the shift of D is
 * at most max(q(2h), q(4h)): both are J/2 for a kink at 0, and no position
 * does worse (checked numerically; q(2h) or q(4h) alone is blind at some
 * positions). For a smooth loss q(δ) is δ^3 |L''''| / 4, the next-order
 * term, so it also covers truncation while h |L^(5)| / |L''''| stays
 * moderate. q is measured through the same noise, at most σ Σ|c_j| (c_j
 * its weights; 2σ/h for q(2h), σ/h for q(4h)), which is added to it.
 *
 * Bound. |D - g| ≤ σ Σ|w_j| + max over q of (q + σ Σ|c_j|) + 1e-4 |g|, the
 * last term for the analytic gradient's own rounding (1e-5 against PEFT).
 * While the bound exceeds FD_MAX_REL |D|, h is halved (fewer kinks in reach,
 * less truncation, more noise), up to nsteps times; an entry that cannot be
 * measured to that precision is passed over for the next candidate, in
 * order of |g|·s, and each tensor needs one measured entry. */
#define FD_NOISE 3.0
#define FD_MAX_REL 5e-3
#define FD_CANDIDATES 16
#define FD_STEPS 6

/* The index of the adapter's pair at (layer, module), or -1. */
static int pair_index(sk_lora *l, int layer, sk_lora_module module)
{
	for (int i = 0; i < sk_lora_pair_count(l); i++) {
		int ly;
		sk_lora_module md;
		sk_lora_pair_at(l, i, &ly, &md);
		if (ly == layer && md == module)
			return i;
	}
	return -1;
}

static double loss_of(sk_model *m, sk_lora *l, const sk_train_seq *s, int ns, float dropout)
{
	sk_train_opts o = { dropout, 77, 1, 1.0f, 0, 0, 0 };
	double loss = 0;
	int64_t nt;
	if (sk_model_loss_grad(m, l, s, ns, &o, &loss, &nt) != 0)
		return NAN;
	return loss;
}

typedef struct {
	sk_model *m;
	sk_lora *l;
	const sk_train_seq *s;
	float dropout;
	double L0;    /* the loss at the unperturbed parameters */
	double sigma; /* bound of one evaluation's rounding error (fd_noise) */
	double h0;    /* the first step, a fraction of the entry's scale (0: 1/2) */
} fd_ctx;

/* Over the five nodes t[idx[0..4]] (one of them 0): the derivative at 0 of
 * the quartic through them (deriv 1) or the fourth divided difference
 * (deriv 0), and in *wsum the sum of the weights' magnitudes. */
static double fd_combine(const double *t, const double *y, const int *idx, int deriv, double *wsum)
{
	double r = 0;
	*wsum = 0;
	for (int a = 0; a < 5; a++) {
		double tj = t[idx[a]], w = 1;
		if (deriv && tj == 0) {
			w = 0;
			for (int b = 0; b < 5; b++)
				if (b != a)
					w -= 1.0 / t[idx[b]];
		} else {
			for (int b = 0; b < 5; b++) {
				if (b == a)
					continue;
				w /= tj - t[idx[b]];
				if (deriv && t[idx[b]] != 0)
					w *= -t[idx[b]];
			}
		}
		r += w * y[idx[a]];
		*wsum += fabs(w);
	}
	return r;
}

/* Sets c->sigma from the rms residual of a least-squares quartic through L
 * at t = k·h, k = -8..8, for the entry *val (restored). */
static void fd_noise(fd_ctx *c, float *val, double h)
{
	float keep = *val;
	double a[5][6] = { { 0 } }, t[17], y[17];
	for (int k = 0; k < 17; k++) {
		*val = (float)((double)keep + (k - 8) * h);
		t[k] = ((double)*val - (double)keep) / (8 * h); /* in [-1, 1], for conditioning */
		y[k] = k == 8 ? c->L0 : loss_of(c->m, c->l, c->s, 1, c->dropout);
		double p[5] = { 1, t[k], t[k] * t[k], t[k] * t[k] * t[k], t[k] * t[k] * t[k] * t[k] };
		for (int i = 0; i < 5; i++) {
			for (int j = 0; j < 5; j++)
				a[i][j] += p[i] * p[j];
			a[i][5] += p[i] * (y[k] - c->L0);
		}
	}
	*val = keep;
	for (int i = 0; i < 5; i++)
		for (int r = i + 1; r < 5; r++)
			for (int j = 5; j >= i; j--)
				a[r][j] -= a[r][i] / a[i][i] * a[i][j];
	double x[5], rss = 0;
	for (int i = 4; i >= 0; i--) {
		x[i] = a[i][5];
		for (int j = i + 1; j < 5; j++)
			x[i] -= a[i][j] * x[j];
		x[i] /= a[i][i];
	}
	for (int k = 0; k < 17; k++) {
		double v = y[k] - c->L0, p = 1;
		for (int i = 0; i < 5; i++, p *= t[k])
			v -= x[i] * p;
		rss += v * v;
	}
	double sn = sqrt(rss / (17 - 5));
	c->sigma = FD_NOISE * sn;
	printf("# noise of the loss: rms %.2e = %.2f u|L|; sigma %.2e\n", sn, sn / (0x1p-24 * fabs(c->L0)), c->sigma);
}

/* Central difference at step h for *val: the estimate in *d and the bound
 * of its error, but for the gradient's own rounding, in *bound. The entry
 * is restored. */
static void fd_step(const fd_ctx *c, float *val, double h, double *d, double *bound)
{
	static const int mult[9] = { -8, -4, -2, -1, 0, 1, 2, 4, 8 };
	static const int mid[5] = { 2, 3, 4, 5, 6 }, wide[5] = { 1, 2, 4, 6, 7 }, wider[5] = { 0, 1, 4, 7, 8 };
	float keep = *val;
	double t[9], y[9];
	for (int i = 0; i < 9; i++) {
		*val = (float)((double)keep + mult[i] * h);
		t[i] = (double)*val - (double)keep;
		y[i] = mult[i] ? loss_of(c->m, c->l, c->s, 1, c->dropout) : c->L0;
	}
	*val = keep;
	double wd, w2, w4;
	*d = fd_combine(t, y, mid, 1, &wd);
	double q2 = 48 * h * h * h * (fabs(fd_combine(t, y, wide, 0, &w2)) + c->sigma * w2);
	double q4 = 384 * h * h * h * (fabs(fd_combine(t, y, wider, 0, &w4)) + c->sigma * w4);
	*bound = c->sigma * wd + (q2 > q4 ? q2 : q4);
}

/* The ncand (at most FD_CANDIDATES) entries of the n values val with the
 * largest |g|·s, where the signal stands furthest above the noise, into
 * cand; returns how many; *rms gets the values' rms. */
static int fd_candidates(const float *val, const float *g, size_t n, int ncand, size_t *cand, double *rms)
{
	double r = 0, key[FD_CANDIDATES];
	for (size_t i = 0; i < n; i++)
		r += (double)val[i] * val[i];
	*rms = r = sqrt(r / (double)n);
	int nc = 0;
	for (size_t i = 0; i < n; i++) {
		double k = fabs(g[i]) * fmax(fabs(val[i]), r);
		int at = nc;
		if (nc < ncand)
			nc++;
		else if (!(k > key[nc - 1]))
			continue;
		else
			at = nc - 1;
		for (; at > 0 && key[at - 1] < k; at--) {
			key[at] = key[at - 1];
			cand[at] = cand[at - 1];
		}
		key[at] = k;
		cand[at] = i;
	}
	return nc;
}

/* Checks the gradient g of the n values val by central differences on the
 * first measurable of ncand candidate entries, trying nsteps steps on each;
 * label names the tensor in messages. */
static void fd_tensor(const fd_ctx *c, float *val, const float *g, size_t n, int ncand, int nsteps, const char *label)
{
	size_t cand[FD_CANDIDATES];
	double rms;
	int nc = fd_candidates(val, g, n, ncand, cand, &rms);
	for (int ci = 0; ci < nc; ci++) {
		size_t i = cand[ci];
		double d = 0, bound = INFINITY, s = fmax(fabs(val[i]), rms), h = s * (c->h0 > 0 ? c->h0 : 0.5);
		for (int k = 0; k < nsteps && !(bound <= FD_MAX_REL * fabs(d)); k++, h /= 2) {
			fd_step(c, &val[i], h, &d, &bound);
			bound += 1e-4 * fabs(g[i]);
		}
		if (!(bound <= FD_MAX_REL * fabs(d))) {
			printf("#   %s[%zu]: passed over, bound %.1e on %.6f\n", label, i, bound, d);
			continue;
		}
		double e = fabs(d - g[i]);
		printf("#   %s[%zu]: analytic %.6f, central difference %.6f (step %.3g s; error %.1e, bound %.1e = "
		       "%.1e rel)\n",
		       label, i, g[i], d, h * 2 / s, e, bound, bound / fabs(d));
		CHECK_MSG(e <= bound, "%s[%zu]: central difference %.6f, analytic %.6f: error %.2e above the bound %.2e",
		          label, i, d, g[i], e, bound);
		return;
	}
	CHECK_MSG(0, "%s: none of %d candidate entries could be measured", label, nc);
}

/* Measures the noise on the best candidate of val's tensor, at 1/64 of its
 * scale (the quartic then fits the smooth part well below the noise). */
static void fd_noise_on(fd_ctx *c, float *val, const float *g, size_t n)
{
	size_t i;
	double rms;
	fd_candidates(val, g, n, 1, &i, &rms);
	fd_noise(c, &val[i], fmax(fabs(val[i]), rms) / 64);
}

/* Central differences on a few pairs (a KV producer's k/v, a gate, a KV
 * consumer's q, a down_proj, an o_proj): the sign and scale conventions end
 * to end. Parameters upstream of a sparse layer's cutoff are left to the
 * PEFT comparison above: there the kinks are dense (every token's gate row
 * holds values near its cutoff), any step that rises above the noise
 * crosses several, and the differences converge only to first order (on
 * layer 0's gate A of tiny-gemma3n they give 17.6, 21.0, 21.29, 21.34 as the
 * step halves, for an analytic 21.40), so the picks start after them. */
static void check_fd(const char *model, int nf4, float dropout)
{
	grad_ref refs[4];
	CHECK(load_grad_refs(model, refs, 4) > 0);
	sk_model *m = load_model(model, nf4);
	CHECK(m != NULL);
	if (!m)
		return;
	sk_lora *l = load_adapter(model, refs[0].dir, m);
	CHECK(l != NULL);
	if (!l) {
		sk_model_free(m);
		return;
	}
	uint8_t target[64];
	sk_train_seq s;
	make_seq(&refs[0], target, &s);
	sk_train_opts o = { dropout, 77, 1, 1.0f, 1, 0, 0 };
	double loss;
	int64_t nt;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &nt) == 0);
	fd_ctx c = { m, l, &s, dropout, loss_of(m, l, &s, 1, dropout), 0, 0 };
	const sk_config *cf = sk_model_config(m);
	int first_shared = sk_config_first_kv_shared(cf), smooth = 0;
	for (int i = 0; i < cf->num_layers; i++)
		if (cf->activation_sparsity[i] > 0)
			smooth = i + 1;
	struct {
		int layer;
		sk_lora_module mod;
	} picks[] = {
		{ first_shared - 1, SK_LORA_K }, { first_shared - 2, SK_LORA_V }, { smooth, SK_LORA_GATE },
		{ cf->num_layers - 1, SK_LORA_Q }, { smooth > 1 ? smooth - 1 : 1, SK_LORA_DOWN }, { smooth + 2, SK_LORA_O },
	};
	CHECK(first_shared - 2 >= smooth && smooth + 2 < cf->num_layers);
	int checked = 0, q = pair_index(l, cf->num_layers - 1, SK_LORA_Q);
	CHECK(q >= 0);
	if (q >= 0) {
		sk_lora_pair *p = sk_lora_pair_at(l, q, NULL, NULL);
		fd_noise_on(&c, p->A, sk_lora_grad_A(l, q), (size_t)p->r * p->in);
	}
	for (size_t pi = 0; pi < sizeof picks / sizeof picks[0] && q >= 0; pi++) {
		int idx = pair_index(l, picks[pi].layer, picks[pi].mod);
		if (idx < 0)
			continue;
		sk_lora_pair *p = sk_lora_pair_at(l, idx, NULL, NULL);
		for (int b = 0; b < 2; b++) {
			char label[96];
			snprintf(label, sizeof label, "%s layer %d %s %s", nf4 ? "nf4" : "fp32", picks[pi].layer,
			         sk_lora_module_name(picks[pi].mod), b ? "B" : "A");
			if (b)
				fd_tensor(&c, p->B, sk_lora_grad_B(l, idx), (size_t)p->out * p->r, FD_CANDIDATES, FD_STEPS, label);
			else
				fd_tensor(&c, p->A, sk_lora_grad_A(l, idx), (size_t)p->r * p->in, FD_CANDIDATES, FD_STEPS, label);
			checked++;
		}
	}
	printf("# %s%s%s: %d tensors checked by central differences\n", model, nf4 ? " (NF4)" : "",
	       dropout > 0 ? " (dropout)" : "", checked);
	CHECK(checked >= 6);
	sk_lora_free(l);
	sk_model_free(m);
}

TEST(finite_differences_fp32)
{
	check_fd(GN, 0, 0.0f);
	check_fd(G3, 0, 0.0f);
}

TEST(finite_differences_nf4_dropout)
{
	check_fd(GN, 1, 0.0f);
	check_fd(GN, 0, 0.25f);
}

/* All of the adapter's gradients in one array (malloc'd), A then B a pair. */
static float *grads_flat(sk_lora *l, size_t *total)
{
	int np = sk_lora_pair_count(l);
	size_t n = 0, k = 0;
	for (int i = 0; i < np; i++) {
		sk_lora_pair *p = sk_lora_pair_at(l, i, NULL, NULL);
		n += (size_t)p->r * p->in + (size_t)p->out * p->r;
	}
	float *g = malloc(n * sizeof *g);
	for (int i = 0; g && i < np; i++) {
		sk_lora_pair *p = sk_lora_pair_at(l, i, NULL, NULL);
		memcpy(g + k, sk_lora_grad_A(l, i), (size_t)p->r * p->in * sizeof(float));
		k += (size_t)p->r * p->in;
		memcpy(g + k, sk_lora_grad_B(l, i), (size_t)p->out * p->r * sizeof(float));
		k += (size_t)p->out * p->r;
	}
	*total = n;
	return g;
}

/* Two sequences in one call = the sum of the two calls; the call adds to
 * the gradients already there. */
TEST(batch_is_sum_of_sequences)
{
	grad_ref refs[4];
	CHECK(load_grad_refs(GN, refs, 4) > 0);
	sk_model *m = load_model(GN, 0);
	sk_lora *l = m ? load_adapter(GN, refs[0].dir, m) : NULL;
	CHECK(m && l);
	if (!m || !l) {
		sk_model_free(m);
		return;
	}
	int32_t ids2[9] = { 2, 300, 301, 302, 383, 255, 256, 257, 17 };
	uint8_t t1[64], t2[9] = { 0, 1, 1, 0, 1, 1, 1, 1, 1 };
	sk_train_seq s[2];
	make_seq(&refs[0], t1, &s[0]);
	s[1].ids = ids2;
	s[1].target = t2;
	s[1].n = 9;
	sk_train_opts o = { 0.0f, 0, 1, 0.5f, 1, 0, 0 };
	double la, lb, lab;
	int64_t n;
	CHECK(sk_model_loss_grad(m, l, &s[0], 1, &o, &la, &n) == 0);
	CHECK(sk_model_loss_grad(m, l, &s[1], 1, &o, &lb, &n) == 0);
	size_t total = 0, total2 = 0;
	float *sep = grads_flat(l, &total);
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, s, 2, &o, &lab, &n) == 0);
	CHECK_EQ_INT(n, (refs[0].n - refs[0].k) + 7);
	float *joint = grads_flat(l, &total2);
	CHECK(sep && joint && total == total2);
	double e = sep && joint ? rel_l2(joint, sep, total) : 1.0;
	printf("# batch of 2 vs separate: loss %.6f vs %.6f, gradients rel L2 %.1e\n", lab, la + lb, e);
	CHECK(fabs(lab - (la + lb)) < 1e-5 * fabs(la + lb));
	CHECK(e < 1e-5);
	free(sep);
	free(joint);
	sk_lora_free(l);
	sk_model_free(m);
}

/* The fixture model (fp32) with the first of its reference adapters
 * (refs, the caller's: the sequence points into them), and that
 * reference's sequence in *s (its targets in target[64]): 0, or -1 with
 * the failure recorded and nothing left to free. */
static int load_case(const char *model, grad_ref refs[4], sk_model **m, sk_lora **l, uint8_t *target,
                     sk_train_seq *s)
{
	CHECK(load_grad_refs(model, refs, 4) > 0);
	*m = load_model(model, 0);
	*l = *m ? load_adapter(model, refs[0].dir, *m) : NULL;
	CHECK(*m && *l);
	if (!*m || !*l) {
		sk_model_free(*m);
		return -1;
	}
	make_seq(&refs[0], target, s);
	return 0;
}

/* Checkpointing keeps the outputs of down, o, LAuReL and the per-layer
 * input from the forward and skips their products when a layer is
 * computed again: the gradients are those of computing every product again,
 * to the bit (the same ops on the same inputs), with dropout too. */
static void check_kept_outputs(const char *model, float dropout)
{
	grad_ref refs[4];
	sk_model *m;
	sk_lora *l;
	uint8_t target[64];
	sk_train_seq s;
	if (load_case(model, refs, &m, &l, target, &s) != 0)
		return;
	double lk = 0, la = 0;
	int64_t n;
	size_t nk = 0, na = 0;
	sk_train_opts o = { dropout, 77, 1, 1.0f, 1, 0, 1 }; /* every product again */
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &la, &n) == 0);
	float *all = grads_flat(l, &na);
	o.recompute_all = 0;
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lk, &n) == 0);
	float *kept = grads_flat(l, &nk);
	CHECK(all && kept && na == nk && na > 0);
	double sum = 0;
	for (size_t i = 0; all && kept && i < na; i++)
		sum += fabs(all[i]);
	printf("# %s%s: kept outputs vs every product again: loss %.7f vs %.7f, %zu gradients %s (sum |g| %.3e)\n",
	       model, dropout > 0 ? " (dropout)" : "", lk, la, na,
	       all && kept && !memcmp(all, kept, na * sizeof *all) ? "identical" : "differ", sum);
	CHECK(lk == la);
	CHECK(sum > 0);
	CHECK(all && kept && memcmp(all, kept, na * sizeof *all) == 0);
	free(all);
	free(kept);
	sk_lora_free(l);
	sk_model_free(m);
}

/* A CPU backend whose allocations above a limit fail, as a device's would
 * when out of memory. */
static size_t alloc_limit;
static void *(*real_alloc)(sk_backend *be, size_t bytes, const char *what);
static int alloc_refused;
static void *limited_alloc(sk_backend *be, size_t bytes, const char *what)
{
	if (bytes > alloc_limit) {
		alloc_refused++;
		sk_fail("out of memory: %zu bytes for %s (test limit %zu)", bytes, what, alloc_limit);
		return NULL;
	}
	return real_alloc(be, bytes, what);
}

/* 16 GiB of device memory, roomy_free of it free */
static uint64_t roomy_free;
static void roomy_mem_info(sk_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
	(void)be;
	*free_bytes = roomy_free;
	*total_bytes = (uint64_t)16 << 30;
}

/* 16 GiB of device memory, 1 MiB of it free */
static void tight_mem_info(sk_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
	(void)be;
	*free_bytes = (uint64_t)1 << 20;
	*total_bytes = (uint64_t)16 << 30;
}

/* Without room for the kept outputs, a checkpointed pass computes every
 * product again instead of failing: the workspace it then takes is the one
 * that needs, and the gradients are the same. */
static void check_kept_outputs_give_way(void)
{
	grad_ref refs[4];
	sk_model *m;
	sk_lora *l;
	uint8_t target[64];
	sk_train_seq s;
	if (load_case(GN, refs, &m, &l, target, &s) != 0)
		return;
	double la = 0, lk = 0;
	int64_t n;
	size_t na = 0, nk = 0;
	sk_train_opts o = { 0.0f, 0, 1, 1.0f, 1, 0, 1 };
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &la, &n) == 0);
	size_t all_ws = m->ws.cap; /* what computing every product again takes */
	float *all = grads_flat(l, &na);
	sk_model_free(m);
	/* a fresh model whose backend fails anything larger */
	m = load_model(GN, 0);
	CHECK(m != NULL);
	if (!m) {
		free(all);
		sk_lora_free(l);
		return;
	}
	sk_backend_ops ops = *sk_backend_cpu_exact_ops(); /* training's table, its allocations limited */
	const sk_backend_ops *cpu_ops = m->be->ops;
	alloc_limit = all_ws;
	real_alloc = ops.alloc;
	ops.alloc = limited_alloc;
	m->be->ops = &ops;
	o.recompute_all = 0;
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lk, &n) == 0);
	float *kept = grads_flat(l, &nk);
	printf("# kept outputs without room (allocations over %zu bytes fail): workspace %zu bytes, loss %.7f vs %.7f\n",
	       all_ws, m->ws.cap, lk, la);
	CHECK(m->ws.cap == all_ws);
	CHECK(lk == la);
	CHECK(all && kept && na == nk && memcmp(all, kept, na * sizeof *all) == 0);
	/* with the room, the same call keeps them (a larger workspace) */
	alloc_limit = (size_t)-1;
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lk, &n) == 0);
	CHECK(m->ws.cap > all_ws);
	size_t roomy_ws = m->ws.cap; /* a quarter more than the kept plan needs */
	/* a device that reports too little free memory for the kept outputs and
	 * what a pass takes beside them: planned without them from the start,
	 * no allocation tried, and the kept plan's workspace given back */
	ops.mem_info = tight_mem_info;
	alloc_limit = all_ws;
	alloc_refused = 0;
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lk, &n) == 0);
	float *tight = grads_flat(l, &nk);
	CHECK(alloc_refused == 0);
	CHECK(m->ws.cap == all_ws);
	CHECK(lk == la);
	CHECK(all && tight && na == nk && memcmp(all, tight, na * sizeof *all) == 0);
	free(tight);
	/* room for the kept outputs, but not for a quarter more: a grown
	 * workspace stops short of the headroom */
	ops.mem_info = roomy_mem_info;
	alloc_limit = (size_t)-1;
	size_t most = roomy_ws / 10 * 9; /* past what it needs, short of a quarter more */
	roomy_free = ((uint64_t)1 << 30) + most - all_ws;
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lk, &n) == 0);
	printf("# kept outputs with %zu bytes to spare: workspace %zu bytes (a quarter more would be %zu)\n", most,
	       m->ws.cap, roomy_ws);
	CHECK(m->ws.cap == most);
	m->be->ops = cpu_ops;
	free(all);
	free(kept);
	sk_lora_free(l);
	sk_model_free(m);
}

TEST(kept_outputs_match_recompute)
{
	check_kept_outputs(GN, 0.0f);
	check_kept_outputs(GN, 0.25f);
	check_kept_outputs(G3, 0.0f);
	check_kept_outputs_give_way();
}

/* ---- a backend's gated_mlp op ---- */

static const sk_backend_ops *mlp_cpu;
static int mlp_calls;

/* The gated MLP as one op made of the CPU's own, in the model's order:
 * what a backend's fused op stands for (the GPU's rounds inside to bf16). */
static int mlp_saves, mlp_bwds;
static int cpu_gated_mlp(sk_backend *be, const sk_gated_mlp *a)
{
	if (a->dropout > 0.0f)
		return 0;
	int64_t n = a->rows, F = a->w[0]->shape[0];
	if (!a->y) { /* a save: the plain path's g0, u and z, fp32 being this backend's own form */
		if (mlp_cpu->linear(be, a->w[0], a->x, n, a->g, NULL, NULL) != 0 ||
		    mlp_cpu->lora_fwd(be, a->l[0], a->x, n, 0.0f, 0, a->g) != 0 ||
		    mlp_cpu->linear(be, a->w[1], a->x, n, a->u, NULL, NULL) != 0 ||
		    mlp_cpu->lora_fwd(be, a->l[1], a->x, n, 0.0f, 0, a->u) != 0)
			return -1;
		mlp_cpu->scale(be, a->g, n * F, 1.0f, a->z);
		mlp_cpu->gelu_mul(be, a->z, a->u, F, n, F, a->sparsity_z);
		mlp_saves++;
		return 1;
	}
	float *g = malloc((size_t)(n * F) * sizeof *g), *u = malloc((size_t)(n * F) * sizeof *u);
	float *z = malloc((size_t)(n * F) * sizeof *z);
	int rc = -1;
	if (!g || !u || !z || mlp_cpu->linear(be, a->w[0], a->x, n, g, NULL, NULL) != 0 ||
	    mlp_cpu->lora_fwd(be, a->l[0], a->x, n, 0.0f, 0, g) != 0 ||
	    mlp_cpu->linear(be, a->w[1], a->x, n, u, NULL, NULL) != 0 ||
	    mlp_cpu->lora_fwd(be, a->l[1], a->x, n, 0.0f, 0, u) != 0)
		goto out;
	mlp_cpu->scale(be, g, n * F, 1.0f, z);
	mlp_cpu->gelu_mul(be, z, u, F, n, F, a->sparsity_z);
	if (mlp_cpu->linear(be, a->w[2], z, n, a->y, NULL, NULL) != 0 || mlp_cpu->lora_fwd(be, a->l[2], z, n, 0.0f, 0, a->y) != 0)
		goto out;
	mlp_calls++;
	rc = 1;
out:
	free(g), free(u), free(z);
	return rc;
}

/* The backward of a saved MLP as the model's plain path computes it */
static int cpu_gated_mlp_bwd(sk_backend *be, const sk_gated_mlp_bwd *a)
{
	int64_t n = a->rows, F = a->w[0]->shape[0];
	float *dz = a->work, *du = malloc((size_t)(n * F) * sizeof *du);
	int rc = -1;
	if (!du || mlp_cpu->linear_bwd(be, a->w[2], a->dy, n, dz, 0) != 0 ||
	    mlp_cpu->lora_bwd(be, a->l[2], a->z, a->dy, n, 0.0f, 0, a->gA[2], a->gB[2], dz) != 0)
		goto out;
	mlp_cpu->gelu_mul_bwd(be, a->g, a->u, n, F, a->sparsity_z, dz, dz, du);
	if (mlp_cpu->linear_bwd(be, a->w[0], dz, n, a->dx, 0) != 0 ||
	    mlp_cpu->lora_bwd(be, a->l[0], a->x, dz, n, 0.0f, 0, a->gA[0], a->gB[0], a->dx) != 0 ||
	    mlp_cpu->linear_bwd(be, a->w[1], du, n, a->dx, 1) != 0 ||
	    mlp_cpu->lora_bwd(be, a->l[1], a->x, du, n, 0.0f, 0, a->gA[1], a->gB[1], a->dx) != 0)
		goto out;
	mlp_bwds++;
	rc = 0;
out:
	free(du);
	return rc;
}

/* With checkpointing the model hands a backend each layer's gated MLP of
 * the first forward as one op (gate, up, down and their pairs in that
 * order, the output where down's goes); with the op's backward too, the
 * forward computed again saves g0, u and z for it (down's output kept) and
 * it takes every layer's MLP backward. Made of the CPU's ops, the
 * gradients are the plain path's to the bit. Without checkpointing, or
 * with dropout (declined), the op is not used; without the kept outputs
 * nothing is saved. */
static void check_gated_mlp_op(const char *model)
{
	grad_ref refs[4];
	sk_model *m;
	sk_lora *l;
	uint8_t target[64];
	sk_train_seq s;
	if (load_case(model, refs, &m, &l, target, &s) != 0)
		return;
	double la = 0, lf = 0;
	int64_t n;
	size_t na = 0, nf = 0;
	sk_train_opts o = { 0.0f, 0, 1, 1.0f, 1, 0, 0 };
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &la, &n) == 0);
	float *plain = grads_flat(l, &na);
	const sk_backend_ops *own = m->be->ops;
	sk_backend_ops ops = *sk_backend_cpu_exact_ops(); /* training's table, with the op */
	mlp_cpu = sk_backend_cpu_exact_ops();
	ops.gated_mlp = cpu_gated_mlp;
	m->be->ops = &ops;
	mlp_calls = 0;
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lf, &n) == 0);
	float *fused = grads_flat(l, &nf);
	printf("# %s: the gated MLP as one op in %d of %d layers' first forward: loss %.7f vs %.7f, gradients %s\n",
	       model, mlp_calls, m->cfg.num_layers, lf, la,
	       plain && fused && na == nf && !memcmp(plain, fused, na * sizeof *plain) ? "identical" : "differ");
	CHECK(mlp_calls == m->cfg.num_layers);
	CHECK(lf == la);
	CHECK(plain && fused && na == nf && na > 0 && memcmp(plain, fused, na * sizeof *plain) == 0);
	/* with the op's backward too: the forward computed again saves for it, and it takes
	 * every layer's MLP backward */
	ops.gated_mlp_bwd = cpu_gated_mlp_bwd;
	mlp_calls = mlp_saves = mlp_bwds = 0;
	sk_lora_zero_grad(l);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lf, &n) == 0);
	float *saved = grads_flat(l, &nf);
	printf("# %s: saved for the op's backward in %d layers, %d backwards: gradients %s\n", model, mlp_saves,
	       mlp_bwds, plain && saved && na == nf && !memcmp(plain, saved, na * sizeof *plain) ? "identical" : "differ");
	CHECK(mlp_calls == m->cfg.num_layers && mlp_saves == m->cfg.num_layers && mlp_bwds == m->cfg.num_layers);
	CHECK(lf == la);
	CHECK(plain && saved && na == nf && memcmp(plain, saved, na * sizeof *plain) == 0);
	free(saved);
	o.grad_ckpt = 0; /* every layer's insides kept for the backward */
	mlp_calls = mlp_saves = mlp_bwds = 0;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lf, &n) == 0);
	CHECK(mlp_calls == 0 && mlp_saves == 0 && mlp_bwds == 0);
	o.grad_ckpt = 1, o.lora_dropout = 0.1f; /* declined by the op: the separate ops */
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lf, &n) == 0);
	CHECK(mlp_calls == 0 && mlp_saves == 0 && mlp_bwds == 0);
	o.lora_dropout = 0.0f, o.recompute_all = 1; /* down's output not kept: nothing saved */
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &lf, &n) == 0);
	CHECK(mlp_saves == 0 && mlp_bwds == 0 && mlp_calls == m->cfg.num_layers);
	m->be->ops = own;
	free(plain);
	free(fused);
	sk_lora_free(l);
	sk_model_free(m);
}

TEST(gated_mlp_op_takes_the_first_forward)
{
	check_gated_mlp_op(GN);
	check_gated_mlp_op(G3);
}

/* A fresh adapter: PEFT's init (B = 0, A within ±1/sqrt(in)), no k/v on
 * KV-shared layers, gradients only for B at step 0 (A's are zero since B
 * is), and the loss equals the base model's. */
TEST(new_trainable_adapter)
{
	sk_model *m = load_model(GN, 0);
	CHECK(m != NULL);
	if (!m)
		return;
	const sk_config *c = sk_model_config(m);
	sk_lora *l = sk_lora_new_trainable(c, SK_LORA_MASK_ALL, 4, 8.0f, 0, 3407);
	CHECK(l != NULL);
	if (!l) {
		sk_model_free(m);
		return;
	}
	int shared = c->num_layers - sk_config_first_kv_shared(c);
	CHECK_EQ_INT(sk_lora_pair_count(l), c->num_layers * 7 - 2 * shared);
	CHECK(sk_lora_get(l, c->num_layers - 1, SK_LORA_K) == NULL);
	const sk_lora_pair *q = sk_lora_get(l, 0, SK_LORA_Q);
	CHECK(q && q->scale == 2.0f);
	float bound = 1.0f / sqrtf((float)c->hidden_size), amax = 0;
	for (int i = 0; q && i < q->r * q->in; i++)
		amax = fabsf(q->A[i]) > amax ? fabsf(q->A[i]) : amax;
	CHECK(amax <= bound && amax > 0.5f * bound);
	int32_t ids[6] = { 2, 17, 33, 120, 7, 9 };
	uint8_t tg[6] = { 0, 1, 1, 1, 1, 1 };
	sk_train_seq s = { ids, tg, 6 };
	sk_train_opts o = { 0.0f, 0, 1, 1.0f, 1, 0, 0 };
	double loss, base;
	int64_t n;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &n) == 0);
	CHECK(sk_model_loss_grad(m, NULL, &s, 1, &o, &base, &n) == 0);
	CHECK(fabs(loss - base) < 1e-6 * fabs(base));
	double sa = 0, sb = 0;
	for (int i = 0; i < sk_lora_pair_count(l); i++) {
		sk_lora_pair *p = sk_lora_pair_at(l, i, NULL, NULL);
		for (int k = 0; k < p->r * p->in; k++)
			sa += fabs(sk_lora_grad_A(l, i)[k]);
		for (int k = 0; k < p->out * p->r; k++)
			sb += fabs(sk_lora_grad_B(l, i)[k]);
	}
	CHECK(sa == 0.0 && sb > 0.0);
	sk_lora_free(l);
	sk_model_free(m);
}

TEST(bad_input_is_refused)
{
	sk_model *m = load_model(G3, 0);
	CHECK(m != NULL);
	if (!m)
		return;
	sk_lora *l = sk_lora_new_trainable(sk_model_config(m), SK_LORA_MASK_MLP, 2, 4.0f, 1, 1);
	int32_t ids[3] = { 2, 5, 100000 };
	uint8_t tg[3] = { 0, 1, 1 };
	sk_train_seq s = { ids, tg, 3 };
	sk_train_opts o = { 0.0f, 0, 1, 1.0f, 1, 0, 0 };
	double loss;
	int64_t n;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &n) == -1);
	CHECK(strstr(sk_error(), "out of range") != NULL);
	ids[2] = 7;
	o.lora_dropout = 1.0f;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &n) == -1);
	o.lora_dropout = 0.0f;
	s.n = 0;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &n) == -1);
	s.n = 3;
	CHECK(sk_model_loss_grad(m, l, &s, 0, &o, &loss, &n) == -1);
	/* an adapter loaded for inference has no gradient buffers */
	grad_ref refs[2];
	CHECK(load_grad_refs(G3, refs, 2) > 0);
	char p[4400];
	snprintf(p, sizeof p, "%s/ref/%s", sk_test_path(G3), refs[0].dir);
	sk_lora *inf = sk_lora_load(p, sk_model_config(m));
	CHECK(inf && sk_lora_grad_A(inf, 0) == NULL);
	CHECK(sk_model_loss_grad(m, inf, &s, 1, &o, &loss, &n) == -1);
	/* no targets: loss 0, nothing to do */
	memset(tg, 0, sizeof tg);
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &n) == 0 && n == 0 && loss == 0.0);
	sk_lora_free(inf);
	sk_lora_free(l);
	sk_model_free(m);
}

/* The default model (Gemma 3 270M, GGUF Q4_K_M: quantized weights and a
 * quantized tied head, 262144-token vocabulary over many chunks) with a
 * fresh adapter: the loss equals the forward's logits' cross-entropy, and
 * one step's gradients agree with central differences. */
TEST(default_model_gradients)
{
	const char *path = getenv("SK_DEFAULT_MODEL");
	if (!path || !*path || access(path, R_OK) != 0) {
		SKIP("SK_DEFAULT_MODEL is not set to a readable file");
		return;
	}
	sk_model_opts mo = { SK_DEVICE_CPU, 0, 0 };
	/* the forward in fp32, as training computes it: the inference table's
	 * integer kernels would differ from the loss by their quantization */
	setenv("SK_CPU_EXACT", "1", 1);
	sk_model *m = sk_model_load(path, &mo);
	unsetenv("SK_CPU_EXACT");
	CHECK_MSG(m != NULL, "%s", sk_error());
	if (!m)
		return;
	const sk_config *c = sk_model_config(m);
	sk_lora *l = sk_lora_new_trainable(c, SK_LORA_MASK_ALL, 8, 16.0f, 0, 3407);
	CHECK(l != NULL);
	/* B random too, so A gets gradients and the adapter changes the loss */
	for (int i = 0; l && i < sk_lora_pair_count(l); i++) {
		sk_lora_pair *p = sk_lora_pair_at(l, i, NULL, NULL);
		for (int k = 0; k < p->out * p->r; k++)
			p->B[k] = 0.02f * (float)((k * 7919 + i * 104729) % 2001 - 1000) / 1000.0f;
	}
	int32_t ids[20] = { 2, 818, 5279, 529, 7001, 563, 9079, 236761, 669, 5279, 529, 8522, 563, 10868, 236761,
	                    669, 5279, 529, 9405, 563 };
	uint8_t tg[20];
	for (int i = 0; i < 20; i++)
		tg[i] = i >= 3;
	sk_train_seq s = { ids, tg, 20 };
	int V = sk_model_vocab(m);
	for (int i = 0; i < 20; i++)
		if (ids[i] >= V)
			ids[i] = ids[i] % V;
	float *logits = malloc((size_t)20 * V * sizeof *logits);
	sk_kv_cache *kv = sk_kv_cache_new(m, 1, 64);
	sk_model_set_adapter(m, l);
	sk_batch_item it = { 0, ids, 20, 1, 1 };
	CHECK(logits && kv && sk_model_forward(m, kv, &it, 1, logits) == 0);
	sk_model_set_adapter(m, NULL);
	double ref = 0;
	for (int i = 3; i < 20; i++) {
		const float *z = logits + (size_t)(i - 1) * V;
		double mx = -INFINITY, sum = 0;
		for (int j = 0; j < V; j++)
			mx = z[j] > mx ? z[j] : mx;
		for (int j = 0; j < V; j++)
			sum += exp(z[j] - mx);
		ref += mx + log(sum) - z[ids[i]];
	}
	sk_train_opts o = { 0.0f, 0, 1, 1.0f, 1, 0, 0 };
	double loss = 0;
	int64_t nt;
	CHECK(sk_model_loss_grad(m, l, &s, 1, &o, &loss, &nt) == 0);
	printf("# default model: loss %.5f (mean %.4f), from forward logits %.5f\n", loss, loss / 17, ref);
	CHECK(fabs(loss - ref) < 1e-4 * fabs(ref));
	/* central differences on a few pairs' A (see fd_step), with fewer tries:
	 * every evaluation is a forward and loss over the whole model. Steps from
	 * twice an entry's scale: the loss's rounding noise depends on the CPU's
	 * sgemm kernels (3 u|L| on an AVX-512 machine), and at s/2 it kept every
	 * entry of a layer's down_proj A above the precision asked for */
	fd_ctx fc = { m, l, &s, 0.0f, loss_of(m, l, &s, 1, 0.0f), 0, 2.0 };
	sk_lora_module mods[3] = { SK_LORA_V, SK_LORA_GATE, SK_LORA_DOWN };
	for (int t = 0; t < 3; t++) {
		int layer = t * 5, idx = pair_index(l, layer, mods[t]);
		CHECK(idx >= 0);
		if (idx < 0)
			continue;
		sk_lora_pair *p = sk_lora_pair_at(l, idx, NULL, NULL);
		if (t == 0)
			fd_noise_on(&fc, p->A, sk_lora_grad_A(l, idx), (size_t)p->r * p->in);
		char label[64];
		snprintf(label, sizeof label, "default model layer %d %s A", layer, sk_lora_module_name(mods[t]));
		fd_tensor(&fc, p->A, sk_lora_grad_A(l, idx), (size_t)p->r * p->in, 8, 2, label);
	}
	sk_kv_cache_free(kv);
	free(logits);
	sk_lora_free(l);
	sk_model_free(m);
}

int main(void)
{
	RUN(gemma3n_grads_match_peft);
	RUN(gemma3n_grads_match_peft_no_ckpt);
	RUN(gemma3_grads_match_peft);
	RUN(loss_only_matches_forward_logits);
	RUN(finite_differences_fp32);
	RUN(finite_differences_nf4_dropout);
	RUN(batch_is_sum_of_sequences);
	RUN(kept_outputs_match_recompute);
	RUN(gated_mlp_op_takes_the_first_forward);
	RUN(new_trainable_adapter);
	RUN(bad_input_is_refused);
	RUN(default_model_gradients);
	TEST_EXIT();
}
