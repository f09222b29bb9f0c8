/* The CPU backend's training ops, each against a double-precision
 * re-implementation of its forward op: the forward op must match the
 * reference, and the backward op must match central differences of the
 * reference (L = Σ g ⊙ f(x) for a random upstream gradient g). Also the
 * transposed weight product over F32/BF16/NF4 tiles, the LoRA branch with
 * dropout, and the chunked cross-entropy. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend_cpu_backward.h"
#include "engine/format/dtype.h"
#include "engine/error.h"
#include "engine/format/nf4.h"
#include "engine/format/quants.h"
#include "tests/test.h"

static sk_backend *be;
static const sk_backend_ops *ops;
static uint64_t rng = 0x1234567ull;

static double urand(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

static void fill(float *x, int64_t n, double lo, double hi)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)(lo + (hi - lo) * urand());
}

static double *to_d(const float *x, int64_t n)
{
	double *d = malloc((size_t)n * sizeof *d);
	for (int64_t i = 0; i < n; i++)
		d[i] = x[i];
	return d;
}

static double rel_err(const float *a, const double *ref, int64_t n)
{
	double d = 0, s = 0;
	for (int64_t i = 0; i < n; i++) {
		d += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
		s += ref[i] * ref[i];
	}
	return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* Central differences of a scalar function of p[0..n) */
typedef double (*scalar_fn)(void *ctx);
static void fd(scalar_fn f, void *ctx, double *p, int64_t n, double *grad)
{
	for (int64_t i = 0; i < n; i++) {
		double keep = p[i], h = 1e-6 * (fabs(keep) > 1 ? fabs(keep) : 1);
		p[i] = keep + h;
		double a = f(ctx);
		p[i] = keep - h;
		double b = f(ctx);
		p[i] = keep;
		grad[i] = (a - b) / (2 * h);
	}
}

#define TOL 2e-5

/* ---- RMSNorm ---- */
typedef struct {
	double *x, *w, *g;
	int64_t rows, dim;
	double eps;
	double *out; /* forward output when not NULL */
} rms_ctx;

static double rms_L(void *c_)
{
	rms_ctx *c = c_;
	double L = 0;
	for (int64_t r = 0; r < c->rows; r++) {
		double ss = 0;
		for (int64_t i = 0; i < c->dim; i++)
			ss += c->x[r * c->dim + i] * c->x[r * c->dim + i];
		double inv = 1 / sqrt(ss / c->dim + c->eps);
		for (int64_t i = 0; i < c->dim; i++) {
			double y = c->x[r * c->dim + i] * inv * (c->w ? c->w[i] : 1.0);
			if (c->out)
				c->out[r * c->dim + i] = y;
			L += y * c->g[r * c->dim + i];
		}
	}
	return L;
}

TEST(rmsnorm_bwd_matches_differences)
{
	for (int withw = 0; withw < 2; withw++) {
		int64_t rows = 3, dim = 40, n = rows * dim;
		float x[120], w[40], g[120], y[120], dx[120];
		fill(x, n, -2, 2);
		fill(w, dim, 0.5, 1.5);
		fill(g, n, -1, 1);
		rms_ctx c = { to_d(x, n), withw ? to_d(w, dim) : NULL, to_d(g, n), rows, dim, 1e-6, malloc(n * sizeof(double)) };
		rms_L(&c);
		ops->rmsnorm(be, x, rows, dim, withw ? w : NULL, 1e-6f, y);
		CHECK(rel_err(y, c.out, n) < 1e-6);
		free(c.out);
		c.out = NULL;
		double ref[120];
		fd(rms_L, &c, c.x, n, ref);
		ops->rmsnorm_bwd(be, x, rows, dim, withw ? w : NULL, 1e-6f, g, dx, 0);
		double e = rel_err(dx, ref, n);
		printf("# rmsnorm_bwd (weight %d): rel %.1e\n", withw, e);
		CHECK(e < TOL);
		/* accumulate adds, and dx may be dy itself */
		float acc[120], self[120];
		for (int i = 0; i < n; i++)
			acc[i] = 1.0f;
		memcpy(self, g, sizeof g);
		ops->rmsnorm_bwd(be, x, rows, dim, withw ? w : NULL, 1e-6f, g, acc, 1);
		ops->rmsnorm_bwd(be, x, rows, dim, withw ? w : NULL, 1e-6f, self, self, 0);
		for (int i = 0; i < n; i++) {
			CHECK(fabsf(acc[i] - 1.0f - dx[i]) < 1e-5f);
			CHECK(self[i] == dx[i]);
		}
		free(c.x);
		free(c.w);
		free(c.g);
	}
}

/* RoPE is a rotation: its backward is its transpose, and undoes it. */
TEST(rope_bwd_is_the_transpose)
{
	int64_t n = 5;
	int heads = 3, hd = 16;
	int32_t pos[5] = { 0, 3, 7, 100, 1000 };
	float x[240], g[240], rx[240], bg[240];
	fill(x, 240, -1, 1);
	fill(g, 240, -1, 1);
	memcpy(rx, x, sizeof x);
	memcpy(bg, g, sizeof g);
	ops->rope(be, rx, n, heads, hd, pos, 10000.0f, 8.0f);
	ops->rope_bwd(be, bg, n, heads, hd, pos, 10000.0f, 8.0f);
	double a = 0, b = 0;
	for (int i = 0; i < 240; i++) {
		a += (double)rx[i] * g[i];
		b += (double)x[i] * bg[i];
	}
	printf("# rope: <R x, g> %.9f, <x, R^T g> %.9f\n", a, b);
	CHECK(fabs(a - b) < 1e-5 * fabs(a) + 1e-6);
	ops->rope_bwd(be, rx, n, heads, hd, pos, 10000.0f, 8.0f);
	for (int i = 0; i < 240; i++)
		CHECK(fabsf(rx[i] - x[i]) < 1e-5f);
}

/* ---- attention ---- */
typedef struct {
	double *q, *k, *v, *g;
	int64_t n;
	int nh, nkv, hd, window;
	double scale, cap;
	double *out;
} att_ctx;

static double att_L(void *c_)
{
	att_ctx *c = c_;
	int64_t qd = (int64_t)c->nh * c->hd, kvd = (int64_t)c->nkv * c->hd;
	double L = 0, s[64];
	for (int64_t i = 0; i < c->n; i++)
		for (int h = 0; h < c->nh; h++) {
			int g = h / (c->nh / c->nkv);
			int64_t lo = c->window > 0 && i - c->window + 1 > 0 ? i - c->window + 1 : 0;
			double mx = -INFINITY, sum = 0;
			for (int64_t j = lo; j <= i; j++) {
				double d = 0;
				for (int e = 0; e < c->hd; e++)
					d += c->q[i * qd + h * c->hd + e] * c->k[j * kvd + g * c->hd + e];
				d *= c->scale;
				if (c->cap > 0)
					d = c->cap * tanh(d / c->cap);
				s[j - lo] = d;
				mx = d > mx ? d : mx;
			}
			for (int64_t j = lo; j <= i; j++)
				sum += exp(s[j - lo] - mx);
			for (int e = 0; e < c->hd; e++) {
				double o = 0;
				for (int64_t j = lo; j <= i; j++)
					o += exp(s[j - lo] - mx) / sum * c->v[j * kvd + g * c->hd + e];
				if (c->out)
					c->out[i * qd + h * c->hd + e] = o;
				L += o * c->g[i * qd + h * c->hd + e];
			}
		}
	return L;
}

static void check_attention(int window, float cap)
{
	int64_t n = 9;
	int nh = 4, nkv = 2, hd = 8;
	int64_t qd = nh * hd, kvd = nkv * hd;
	float q[9 * 32], k[9 * 16], v[9 * 16], g[9 * 32], out[9 * 32], dq[9 * 32], dk[9 * 16], dv[9 * 16], ws[2 * 9 * 4];
	fill(q, n * qd, -1.5, 1.5);
	fill(k, n * kvd, -1.5, 1.5);
	fill(v, n * kvd, -1, 1);
	fill(g, n * qd, -1, 1);
	float scale = 0.7f;
	att_ctx c = { to_d(q, n * qd), to_d(k, n * kvd), to_d(v, n * kvd), to_d(g, n * qd), n, nh, nkv, hd, window,
	              scale, cap, malloc((size_t)(n * qd) * sizeof(double)) };
	att_L(&c);
	sk_attn_kv kv = { NULL, NULL, 1, 0, 0, k, v, NULL };
	CHECK(ops->attention(be, q, n, &kv, nh, nkv, hd, window, scale, cap, out) == 0);
	CHECK(rel_err(out, c.out, n * qd) < 1e-5);
	free(c.out);
	c.out = NULL;
	/* dk, dv accumulate: start from a known offset */
	for (int i = 0; i < n * kvd; i++)
		dk[i] = dv[i] = 0.5f;
	CHECK(ops->attention_bwd(be, q, k, v, n, nh, nkv, hd, window, scale, cap, g, dq, dk, dv, ws) == 0);
	for (int i = 0; i < n * kvd; i++) {
		dk[i] -= 0.5f;
		dv[i] -= 0.5f;
	}
	double rq[9 * 32], rk[9 * 16], rv[9 * 16];
	fd(att_L, &c, c.q, n * qd, rq);
	fd(att_L, &c, c.k, n * kvd, rk);
	fd(att_L, &c, c.v, n * kvd, rv);
	double eq = rel_err(dq, rq, n * qd), ek = rel_err(dk, rk, n * kvd), ev = rel_err(dv, rv, n * kvd);
	printf("# attention_bwd (window %d, softcap %g): dq %.1e, dk %.1e, dv %.1e\n", window, (double)cap, eq, ek, ev);
	CHECK(eq < TOL && ek < TOL && ev < TOL);
	free(c.q);
	free(c.k);
	free(c.v);
	free(c.g);
}

TEST(attention_bwd_matches_differences)
{
	check_attention(0, 0.0f);
	check_attention(4, 0.0f);
	check_attention(3, 2.0f);
}

/* ---- gated GELU with the gaussian top-k cutoff ---- */
typedef struct {
	double *g, *u, *gr;
	int64_t rows, dim;
	double z;
	double *out;
} gelu_ctx;

static double gelu_d(double x)
{
	return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static double gelu_L(void *c_)
{
	gelu_ctx *c = c_;
	double L = 0;
	for (int64_t r = 0; r < c->rows; r++) {
		const double *g = c->g + r * c->dim;
		double cut = 0;
		if (c->z != 0) {
			double m = 0, v = 0;
			for (int64_t i = 0; i < c->dim; i++)
				m += g[i];
			m /= c->dim;
			for (int64_t i = 0; i < c->dim; i++)
				v += (g[i] - m) * (g[i] - m);
			cut = m + c->z * sqrt(v / c->dim);
		}
		for (int64_t i = 0; i < c->dim; i++) {
			double x = g[i];
			if (c->z != 0)
				x = x - cut > 0 ? x - cut : 0;
			double y = gelu_d(x) * (c->u ? c->u[r * c->dim + i] : 1.0);
			if (c->out)
				c->out[r * c->dim + i] = y;
			L += y * c->gr[r * c->dim + i];
		}
	}
	return L;
}

static void check_gelu(float z, int with_u)
{
	int64_t rows = 3, dim = 64, n = rows * dim;
	float g[192], u[192], gr[192], y[192], dg[192], du[192];
	fill(g, n, -2, 2);
	fill(u, n, -1, 1);
	fill(gr, n, -1, 1);
	gelu_ctx c = { to_d(g, n), with_u ? to_d(u, n) : NULL, to_d(gr, n), rows, dim, z, malloc(n * sizeof(double)) };
	gelu_L(&c);
	memcpy(y, g, sizeof g);
	ops->gelu_mul(be, y, with_u ? u : NULL, dim, rows, dim, z);
	CHECK(rel_err(y, c.out, n) < 1e-5);
	free(c.out);
	c.out = NULL;
	int active = 0;
	for (int i = 0; i < n; i++)
		active += z != 0 && y[i] != 0;
	ops->gelu_mul_bwd(be, g, with_u ? u : NULL, rows, dim, z, gr, dg, with_u ? du : NULL);
	double rg[192], ru[192];
	fd(gelu_L, &c, c.g, n, rg);
	double eg = rel_err(dg, rg, n), eu = 0;
	if (with_u) {
		fd(gelu_L, &c, c.u, n, ru);
		eu = rel_err(du, ru, n);
	}
	printf("# gelu_mul_bwd (z %g, u %d, %d survivors): dg %.1e, du %.1e\n", (double)z, with_u, active, eg, eu);
	CHECK(eg < TOL && eu < TOL);
	if (z != 0)
		CHECK(active > 0 && active < n / 2);
	/* dg may be dh itself */
	float self[192];
	memcpy(self, gr, sizeof gr);
	ops->gelu_mul_bwd(be, g, with_u ? u : NULL, rows, dim, z, self, self, NULL);
	for (int i = 0; i < n; i++)
		CHECK(self[i] == dg[i]);
	free(c.g);
	free(c.u);
	free(c.gr);
}

TEST(gelu_mul_bwd_matches_differences)
{
	check_gelu(0.0f, 1);
	check_gelu(0.0f, 0);
	check_gelu(1.6448536f, 1); /* through the mean and std of the cutoff */
	check_gelu(0.5f, 1);
}

/* ---- AltUp magnitude match ---- */
typedef struct {
	double *u, *ref, *g;
	int64_t rows, dim;
} resc_ctx;

static double resc_L(void *c_)
{
	resc_ctx *c = c_;
	double L = 0;
	for (int64_t r = 0; r < c->rows; r++) {
		double t = 0, ms = 0;
		for (int64_t i = 0; i < c->dim; i++) {
			t += c->ref[r * c->dim + i] * c->ref[r * c->dim + i];
			ms += c->u[r * c->dim + i] * c->u[r * c->dim + i];
		}
		t = sqrt(t / c->dim);
		ms /= c->dim;
		double cur = sqrt(ms < 1e-5 ? 1e-5 : ms);
		for (int64_t i = 0; i < c->dim; i++)
			L += c->u[r * c->dim + i] * t / cur * c->g[r * c->dim + i];
	}
	return L;
}

TEST(rescale_rms_bwd_matches_differences)
{
	int64_t rows = 3, dim = 32, n = rows * dim;
	float u[96], ref[96], g[96], du[96], dref[96], y[96];
	fill(u, n, -1, 1);
	for (int i = 64; i < 96; i++) /* the last row under the 1e-5 clamp */
		u[i] *= 1e-3f;
	fill(ref, n, -2, 2);
	fill(g, n, -1, 1);
	memset(dref, 0, sizeof dref);
	resc_ctx c = { to_d(u, n), to_d(ref, n), to_d(g, n), rows, dim };
	memcpy(y, u, sizeof u);
	ops->rescale_rms(be, y, ref, rows, dim);
	double L = 0;
	for (int i = 0; i < n; i++)
		L += (double)y[i] * g[i];
	CHECK(fabs(L - resc_L(&c)) < 1e-5 * fabs(L));
	ops->rescale_rms_bwd(be, u, ref, rows, dim, g, du, dref);
	double ru[96], rr[96];
	fd(resc_L, &c, c.u, n, ru);
	fd(resc_L, &c, c.ref, n, rr);
	double eu = rel_err(du, ru, n), er = rel_err(dref, rr, n);
	printf("# rescale_rms_bwd: du %.1e, dref %.1e\n", eu, er);
	CHECK(eu < TOL && er < TOL);
	free(c.u);
	free(c.ref);
	free(c.g);
}

/* ---- AltUp router, predict, correct ---- */
#define AA 4
typedef struct {
	double *x, *nw, *w, *g; /* router */
	double *xs, *wp, *modal, *gp; /* predict: xs [A][rows][dim], modal [rows][A] */
	double *p, *y, *wc, *gc;      /* correct */
	int64_t rows, dim;
	int act;
} alt_ctx;

static void router_d(const alt_ctx *c, const double *x, int64_t r, double *out)
{
	double ss = 0;
	for (int64_t i = 0; i < c->dim; i++)
		ss += x[r * c->dim + i] * x[r * c->dim + i];
	double inv = 1 / sqrt(ss / c->dim + 1e-6);
	for (int k = 0; k < AA; k++) {
		double s = 0;
		for (int64_t i = 0; i < c->dim; i++)
			s += c->w[k * c->dim + i] * x[r * c->dim + i] * inv * c->nw[i] / c->dim;
		out[k] = tanh(s);
	}
}

static double router_L(void *c_)
{
	alt_ctx *c = c_;
	double L = 0, o[AA];
	for (int64_t r = 0; r < c->rows; r++) {
		router_d(c, c->x, r, o);
		for (int k = 0; k < AA; k++)
			L += o[k] * c->g[r * AA + k];
	}
	return L;
}

static double predict_L(void *c_)
{
	alt_ctx *c = c_;
	int64_t st = c->rows * c->dim;
	double L = 0;
	for (int64_t r = 0; r < c->rows; r++)
		for (int k = 0; k < AA; k++)
			for (int64_t d = 0; d < c->dim; d++) {
				double p = c->xs[k * st + r * c->dim + d];
				for (int i = 0; i < AA; i++) {
					double C = 0;
					for (int m = 0; m < AA; m++)
						C += c->wp[(k * AA + i) * AA + m] * c->modal[r * AA + m];
					p += C * c->xs[i * st + r * c->dim + d];
				}
				L += p * c->gp[k * st + r * c->dim + d];
			}
	return L;
}

static double correct_L(void *c_)
{
	alt_ctx *c = c_;
	int64_t st = c->rows * c->dim;
	double L = 0;
	for (int64_t r = 0; r < c->rows; r++)
		for (int k = 0; k < AA; k++) {
			double b = 1;
			for (int m = 0; m < AA; m++)
				b += c->wc[k * AA + m] * c->modal[r * AA + m];
			for (int64_t d = 0; d < c->dim; d++) {
				double v = c->p[k * st + r * c->dim + d] +
				           b * (c->y[r * c->dim + d] - c->p[c->act * st + r * c->dim + d]);
				L += v * c->gc[k * st + r * c->dim + d];
			}
		}
	return L;
}

TEST(altup_bwd_matches_differences)
{
	int64_t rows = 2, dim = 24, n = rows * dim, st = n;
	float x[48], nw[24], w[AA * 24], g[2 * AA], out[2 * AA], dx[48];
	fill(x, n, -2, 2);
	fill(nw, dim, 0.5, 1.5);
	fill(w, AA * dim, -3, 3);
	fill(g, rows * AA, -1, 1);
	alt_ctx c = { 0 };
	c.rows = rows;
	c.dim = dim;
	c.act = 1;
	c.x = to_d(x, n);
	c.nw = to_d(nw, dim);
	c.w = to_d(w, AA * dim);
	c.g = to_d(g, rows * AA);
	ops->altup_router(be, x, rows, dim, nw, 1e-6f, w, AA, out);
	double o[AA];
	for (int64_t r = 0; r < rows; r++) {
		router_d(&c, c.x, r, o);
		for (int k = 0; k < AA; k++)
			CHECK(fabs(out[r * AA + k] - o[k]) < 1e-6);
	}
	for (int i = 0; i < n; i++)
		dx[i] = 0.25f;
	ops->altup_router_bwd(be, x, rows, dim, nw, 1e-6f, w, AA, out, g, dx);
	for (int i = 0; i < n; i++)
		dx[i] -= 0.25f;
	double rx[48];
	fd(router_L, &c, c.x, n, rx);
	double e = rel_err(dx, rx, n);
	printf("# altup_router_bwd: dx %.1e\n", e);
	CHECK(e < TOL);

	float xs[AA * 48], wp[AA * AA * AA], modal[2 * AA], gp[AA * 48], p[AA * 48], dxs[AA * 48], dm[2 * AA];
	fill(xs, AA * n, -1, 1);
	fill(wp, AA * AA * AA, -0.5, 0.5);
	fill(modal, rows * AA, -1, 1);
	fill(gp, AA * n, -1, 1);
	c.xs = to_d(xs, AA * n);
	c.wp = to_d(wp, AA * AA * AA);
	c.modal = to_d(modal, rows * AA);
	c.gp = to_d(gp, AA * n);
	ops->altup_predict(be, xs, rows, dim, AA, wp, modal, p);
	double L = 0;
	for (int i = 0; i < AA * n; i++)
		L += (double)p[i] * gp[i];
	CHECK(fabs(L - predict_L(&c)) < 1e-5 * fabs(L));
	ops->altup_predict_bwd(be, xs, rows, dim, AA, wp, modal, gp, dxs, dm);
	double rxs[AA * 48], rm[2 * AA];
	fd(predict_L, &c, c.xs, AA * n, rxs);
	fd(predict_L, &c, c.modal, rows * AA, rm);
	double e1 = rel_err(dxs, rxs, AA * n), e2 = rel_err(dm, rm, rows * AA);
	printf("# altup_predict_bwd: dx %.1e, dmodal %.1e\n", e1, e2);
	CHECK(e1 < TOL && e2 < TOL);

	float pp[AA * 48], y[48], wc[AA * AA], gc[AA * 48], cc[AA * 48], dp[AA * 48], dy[48];
	fill(pp, AA * n, -1, 1);
	fill(y, n, -1, 1);
	fill(wc, AA * AA, -0.5, 0.5);
	fill(gc, AA * n, -1, 1);
	c.p = to_d(pp, AA * n);
	c.y = to_d(y, n);
	c.wc = to_d(wc, AA * AA);
	c.gc = to_d(gc, AA * n);
	ops->altup_correct(be, pp, y, rows, dim, AA, c.act, wc, modal, cc);
	L = 0;
	for (int i = 0; i < AA * n; i++)
		L += (double)cc[i] * gc[i];
	CHECK(fabs(L - correct_L(&c)) < 1e-5 * fabs(L));
	ops->altup_correct_bwd(be, pp, y, rows, dim, AA, c.act, wc, modal, gc, dp, dy, dm);
	double rp[AA * 48], ry[48];
	fd(correct_L, &c, c.p, AA * n, rp);
	fd(correct_L, &c, c.y, n, ry);
	fd(correct_L, &c, c.modal, rows * AA, rm);
	double e3 = rel_err(dp, rp, AA * n), e4 = rel_err(dy, ry, n), e5 = rel_err(dm, rm, rows * AA);
	printf("# altup_correct_bwd: dp %.1e, dy %.1e, dmodal %.1e\n", e3, e4, e5);
	CHECK(e3 < TOL && e4 < TOL && e5 < TOL);
	(void)st;
	double *all[] = { c.x, c.nw, c.w, c.g, c.xs, c.wp, c.modal, c.gp, c.p, c.y, c.wc, c.gc };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		free(all[i]);
}

/* ---- dx = dy W over stored types, with threads splitting rows ---- */
static void check_linear_bwd(int kind)
{
	int64_t out = 150, in = 96, n = 130; /* tiles of 64 weight rows and a partial one; two row parts */
	float *w = malloc((size_t)(out * in) * sizeof *w), *wd = malloc((size_t)(out * in) * sizeof *wd);
	float *dy = malloc((size_t)(n * out) * sizeof *dy), *dx = malloc((size_t)(n * in) * sizeof *dx);
	uint16_t *bf = malloc((size_t)(out * in) * sizeof *bf);
	fill(w, out * in, -1, 1);
	fill(dy, n * out, -1, 1);
	sk_tensor t = { .ndim = 2, .shape = { out, in }, .device = SK_DEVICE_CPU };
	sk_nf4_tensor q;
	memset(&q, 0, sizeof q);
	const char *name = "F32";
	if (kind == 0) {
		t.dtype = SK_DT_F32;
		t.data = w;
		memcpy(wd, w, (size_t)(out * in) * sizeof *wd);
	} else if (kind == 1) {
		name = "BF16";
		for (int64_t i = 0; i < out * in; i++)
			bf[i] = sk_f32_to_bf16(w[i]);
		t.dtype = SK_DT_BF16;
		t.data = bf;
		sk_dequantize(SK_DT_BF16, bf, wd, out * in);
	} else {
		name = "NF4";
		CHECK(sk_nf4_quantize(w, out * in, 1, &q) == 0);
		t.nf4 = 1;
		t.data = &q;
		sk_nf4_dequantize(&q, 0, out * in, wd);
	}
	double *ref = calloc((size_t)(n * in), sizeof *ref);
	for (int64_t i = 0; i < n; i++)
		for (int64_t o = 0; o < out; o++)
			for (int64_t j = 0; j < in; j++)
				ref[i * in + j] += (double)dy[i * out + o] * wd[o * in + j];
	CHECK(ops->linear_bwd(be, &t, dy, n, dx, 0) == 0);
	double e = rel_err(dx, ref, n * in);
	for (int64_t i = 0; i < n * in; i++)
		ref[i] *= 2;
	CHECK(ops->linear_bwd(be, &t, dy, n, dx, 1) == 0);
	double e2 = rel_err(dx, ref, n * in);
	/* a few rows: one part */
	CHECK(ops->linear_bwd(be, &t, dy, 3, dx, 0) == 0);
	for (int64_t i = 0; i < 3 * in; i++)
		ref[i] /= 2;
	double e3 = rel_err(dx, ref, 3 * in);
	printf("# linear_bwd %s: rel %.1e, accumulated %.1e, 3 rows %.1e\n", name, e, e2, e3);
	CHECK(e < 1e-6 && e2 < 1e-6 && e3 < 1e-6);
	if (kind == 2)
		sk_nf4_free(&q);
	free(w);
	free(wd);
	free(dy);
	free(dx);
	free(bf);
	free(ref);
}

TEST(linear_bwd_matches_dequantized_product)
{
	check_linear_bwd(0);
	check_linear_bwd(1);
	check_linear_bwd(2);
	sk_tensor bad = { .dtype = SK_DT_F32, .ndim = 1, .shape = { 4 } };
	float d[4] = { 0 };
	CHECK(ops->linear_bwd(be, &bad, d, 1, d, 0) == -1);
}

/* ---- the LoRA branch with dropout ---- */
typedef struct {
	double *A, *B, *x, *g;
	int r, in, out;
	int64_t n;
	double scale, p;
	uint64_t seed;
} lora_ctx;

static double lora_L(void *c_)
{
	lora_ctx *c = c_;
	double L = 0, t[8];
	for (int64_t i = 0; i < c->n; i++) {
		for (int k = 0; k < c->r; k++) {
			t[k] = 0;
			for (int j = 0; j < c->in; j++) {
				double xv = c->x[i * c->in + j];
				if (c->p > 0)
					xv = sk_dropout_keep(c->seed, i, j, (float)c->p) ? xv / (1 - c->p) : 0;
				t[k] += c->A[k * c->in + j] * xv;
			}
		}
		for (int o = 0; o < c->out; o++) {
			double y = 0;
			for (int k = 0; k < c->r; k++)
				y += c->B[o * c->r + k] * t[k];
			L += c->scale * y * c->g[i * c->out + o];
		}
	}
	return L;
}

static void check_lora(float p)
{
	int r = 3, in = 20, out = 12;
	int64_t n = 5;
	float A[60], B[36], x[100], g[60], y[60], gA[60], gB[36], dx[100];
	fill(A, r * in, -0.5, 0.5);
	fill(B, out * r, -0.5, 0.5);
	fill(x, n * in, -1, 1);
	fill(g, n * out, -1, 1);
	sk_lora_pair pr = { A, B, r, in, out, 1.5f };
	lora_ctx c = { to_d(A, r * in), to_d(B, out * r), to_d(x, n * in), to_d(g, n * out), r, in, out, n, 1.5, p, 99 };
	memset(y, 0, sizeof y);
	CHECK(ops->lora_fwd(be, &pr, x, n, p, 99, y) == 0);
	double L = 0;
	for (int i = 0; i < n * out; i++)
		L += (double)y[i] * g[i];
	CHECK(fabs(L - lora_L(&c)) < 1e-5 * fabs(L));
	memset(gA, 0, sizeof gA);
	memset(gB, 0, sizeof gB);
	memset(dx, 0, sizeof dx);
	CHECK(ops->lora_bwd(be, &pr, x, g, n, p, 99, gA, gB, dx) == 0);
	double rA[60], rB[36], rx[100];
	fd(lora_L, &c, c.A, r * in, rA);
	fd(lora_L, &c, c.B, out * r, rB);
	fd(lora_L, &c, c.x, n * in, rx);
	double ea = rel_err(gA, rA, r * in), eb = rel_err(gB, rB, out * r), ex = rel_err(dx, rx, n * in);
	int dropped = 0;
	for (int64_t i = 0; i < n; i++)
		for (int j = 0; j < in; j++)
			dropped += !sk_dropout_keep(99, i, j, p);
	printf("# lora_bwd (dropout %g, %d of %d dropped): dA %.1e, dB %.1e, dx %.1e\n", (double)p, dropped,
	       (int)(n * in), ea, eb, ex);
	CHECK(ea < TOL && eb < TOL && ex < TOL);
	if (p > 0)
		CHECK(dropped > 0 && dropped < n * in);
	free(c.A);
	free(c.B);
	free(c.x);
	free(c.g);
}

TEST(lora_bwd_matches_differences)
{
	check_lora(0.0f);
	check_lora(0.3f);
}

/* ---- chunked cross-entropy with softcap ---- */
TEST(xent_chunks_match_full_softmax)
{
	int64_t n = 3, V = 50, cw = 16;
	float z[150], zc[48], mx[3], se[3], lab[3], lse[3], coef[3] = { 1.0f, 0.5f, 2.0f };
	int32_t labels[3] = { 7, 49, 20 };
	float cap = 5.0f;
	fill(z, n * V, -12, 12);
	for (int i = 0; i < n; i++) {
		mx[i] = -INFINITY;
		se[i] = 0;
	}
	for (int64_t c0 = 0; c0 < V; c0 += cw) {
		int64_t w = V - c0 < cw ? V - c0 : cw;
		for (int64_t i = 0; i < n; i++)
			memcpy(zc + i * w, z + i * V + c0, (size_t)w * sizeof(float));
		ops->xent_chunk(be, zc, n, w, c0, cap, labels, mx, se, lab);
	}
	for (int64_t i = 0; i < n; i++) {
		double m = -INFINITY, s = 0, l[50];
		for (int j = 0; j < V; j++) {
			l[j] = cap * tanh(z[i * V + j] / cap);
			m = l[j] > m ? l[j] : m;
		}
		for (int j = 0; j < V; j++)
			s += exp(l[j] - m);
		double ref_lse = m + log(s);
		CHECK(fabs(mx[i] + log(se[i]) - ref_lse) < 1e-5);
		CHECK(fabs(lab[i] - l[labels[i]]) < 1e-5);
		lse[i] = (float)ref_lse;
		/* gradient of coef · (lse − ℓ_label) w.r.t. the raw z */
		double rg[50];
		for (int j = 0; j < V; j++)
			rg[j] = coef[i] * (exp(l[j] - ref_lse) - (j == labels[i])) * (1 - (l[j] / cap) * (l[j] / cap));
		float got[50];
		for (int64_t c0 = 0; c0 < V; c0 += cw) {
			int64_t w = V - c0 < cw ? V - c0 : cw;
			float row[16];
			memcpy(row, z + i * V + c0, (size_t)w * sizeof(float));
			ops->xent_chunk_grad(be, row, 1, w, c0, cap, &labels[i], &lse[i], &coef[i]);
			memcpy(got + c0, row, (size_t)w * sizeof(float));
		}
		CHECK(rel_err(got, rg, V) < 1e-5);
	}
}

int main(void)
{
	be = sk_backend_cpu_new(2);
	if (!be) {
		fprintf(stderr, "%s\n", sk_error());
		return 1;
	}
	ops = be->ops;
	RUN(rmsnorm_bwd_matches_differences);
	RUN(rope_bwd_is_the_transpose);
	RUN(attention_bwd_matches_differences);
	RUN(gelu_mul_bwd_matches_differences);
	RUN(rescale_rms_bwd_matches_differences);
	RUN(altup_bwd_matches_differences);
	RUN(linear_bwd_matches_dequantized_product);
	RUN(lora_bwd_matches_differences);
	RUN(xent_chunks_match_full_softmax);
	sk_backend_free(be);
	TEST_EXIT();
}
