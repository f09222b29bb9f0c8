/* CPU training ops: backward of RMSNorm, RoPE, the gated GELU with its
 * sparsity cutoff, AltUp's magnitude match, router, predict and correct,
 * and the chunked cross-entropy's online logsumexp and gradient. Sums run
 * in double where the forward's do. */
#include "engine/backend/backend_cpu_backward.h"

#include <math.h>

void sk_cpu_rmsnorm_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                        const float *dy, float *dx, int accumulate)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		const float *xr = x + r * dim, *gr = dy + r * dim;
		float *o = dx + r * dim;
		double ss = 0, su = 0;
		for (int64_t i = 0; i < dim; i++) {
			ss += (double)xr[i] * xr[i];
			su += (double)(w ? gr[i] * w[i] : gr[i]) * xr[i];
		}
		float ms = (float)(ss / (double)dim) + eps;
		double inv = 1.0 / sqrt((double)ms);
		double k = inv * inv * inv * su / (double)dim;
		for (int64_t i = 0; i < dim; i++) {
			double u = w ? (double)gr[i] * w[i] : gr[i];
			float v = (float)(inv * u - k * xr[i]);
			o[i] = accumulate ? o[i] + v : v;
		}
	}
}

void sk_cpu_rope_bwd(sk_backend *be, float *d, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                     float factor)
{
	(void)be;
	sk_cpu_rope_rotate(d, n, heads, hd, pos, theta, factor, -1.0f);
}

static inline void gelu_tanh_d(float x, float *val, float *der)
{
	const double k = 0.7978845608028654;
	double xd = x, inner = k * (xd + 0.044715 * xd * xd * xd), t = tanh(inner);
	*val = (float)(0.5 * xd * (1.0 + t));
	*der = (float)(0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * xd * xd));
}

void sk_cpu_gelu_mul_bwd(sk_backend *be, const float *g, const float *u, int64_t rows, int64_t dim, float sparsity_z,
                         const float *dh, float *dg, float *du)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		const float *gr = g + r * dim, *hr = dh + r * dim, *ur = u ? u + r * dim : NULL;
		float *o = dg + r * dim, *uo = du ? du + r * dim : NULL;
		float cut = 0, stdv = 0;
		double mean = 0;
		if (sparsity_z != 0.0f) {
			/* the same cutoff as the forward (population std) */
			double s = 0, v = 0;
			for (int64_t i = 0; i < dim; i++)
				s += gr[i];
			mean = s / (double)dim;
			for (int64_t i = 0; i < dim; i++)
				v += ((double)gr[i] - mean) * ((double)gr[i] - mean);
			stdv = (float)sqrt(v / (double)dim);
			cut = (float)mean + stdv * sparsity_z;
		}
		double G = 0;
		for (int64_t i = 0; i < dim; i++) {
			float x = gr[i];
			int active = 1;
			if (sparsity_z != 0.0f) {
				x -= cut;
				if (x < 0) {
					x = 0;
					active = 0;
				}
			}
			float a, da;
			gelu_tanh_d(x, &a, &da);
			float h = hr[i];
			float gin = ur ? h * ur[i] : h;
			if (uo)
				uo[i] = h * a;
			float d = active ? gin * da : 0.0f;
			o[i] = d;
			G += d;
		}
		/* the cutoff μ + zσ depends on every element: d/dg_j = 1/F + z(g_j − μ)/(Fσ) */
		if (sparsity_z != 0.0f && G != 0.0) {
			double F = (double)dim;
			for (int64_t i = 0; i < dim; i++) {
				double dc = 1.0 / F;
				if (stdv > 0)
					dc += (double)sparsity_z * ((double)gr[i] - mean) / (F * (double)stdv);
				o[i] = (float)((double)o[i] - G * dc);
			}
		}
	}
}

static double mean_sq_d(const float *x, int64_t dim)
{
	double s = 0;
	for (int64_t i = 0; i < dim; i++)
		s += (double)x[i] * x[i];
	return s / (double)dim;
}

void sk_cpu_rescale_rms_bwd(sk_backend *be, const float *u, const float *ref, int64_t rows, int64_t dim,
                            const float *dy, float *du, float *dref)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		const float *ur = u + r * dim, *rr = ref + r * dim, *gr = dy + r * dim;
		float *o = du + r * dim, *dr = dref + r * dim;
		double t = sqrt((double)(float)mean_sq_d(rr, dim));
		double ms = (double)(float)mean_sq_d(ur, dim);
		int clamped = ms < 1e-5;
		double cur = sqrt(clamped ? 1e-5 : ms);
		double S = 0;
		for (int64_t i = 0; i < dim; i++)
			S += (double)gr[i] * ur[i];
		double k = clamped ? 0.0 : t * S / (cur * cur * cur * (double)dim);
		for (int64_t i = 0; i < dim; i++)
			o[i] = (float)((double)gr[i] * t / cur - k * ur[i]);
		if (t > 0) {
			double kr = S / (cur * (double)dim * t);
			for (int64_t i = 0; i < dim; i++)
				dr[i] += (float)(kr * rr[i]);
		}
	}
}

void sk_cpu_altup_router_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *norm_w, float eps,
                             const float *w, int A, const float *out, const float *dout, float *dx)
{
	(void)be;
	double dz[16];
	if (A > 16)
		return;
	for (int64_t r = 0; r < rows; r++) {
		const float *xr = x + r * dim;
		float *o = dx + r * dim;
		for (int k = 0; k < A; k++) {
			double t = out[r * A + k];
			dz[k] = (double)dout[r * A + k] * (1.0 - t * t) / (double)dim;
		}
		float ms = (float)mean_sq_d(xr, dim) + eps;
		double inv = 1.0 / sqrt((double)ms), su = 0;
		for (int64_t i = 0; i < dim; i++) {
			double dn = 0;
			for (int k = 0; k < A; k++)
				dn += dz[k] * w[(int64_t)k * dim + i];
			su += dn * norm_w[i] * xr[i];
		}
		double kk = inv * inv * inv * su / (double)dim;
		for (int64_t i = 0; i < dim; i++) {
			double dn = 0;
			for (int k = 0; k < A; k++)
				dn += dz[k] * w[(int64_t)k * dim + i];
			o[i] += (float)(inv * dn * norm_w[i] - kk * xr[i]);
		}
	}
}

void sk_cpu_altup_predict_bwd(sk_backend *be, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                              const float *modal, const float *dp, float *dx, float *dmodal)
{
	(void)be;
	int64_t stride = rows * dim;
	float C[16 * 16];
	double dC[16 * 16];
	if (A > 16)
		return;
	for (int64_t r = 0; r < rows; r++) {
		sk_cpu_small_matvec(wp, modal + r * A, A * A, A, C);
		for (int i = 0; i < A; i++) {
			float *o = dx + i * stride + r * dim;
			const float *xi = x + i * stride + r * dim;
			for (int64_t d = 0; d < dim; d++) {
				float s = dp[i * stride + r * dim + d];
				for (int k = 0; k < A; k++)
					s += C[k * A + i] * dp[k * stride + r * dim + d];
				o[d] = s;
			}
			for (int k = 0; k < A; k++) {
				const float *dk = dp + k * stride + r * dim;
				double s = 0;
				for (int64_t d = 0; d < dim; d++)
					s += (double)dk[d] * xi[d];
				dC[k * A + i] = s;
			}
		}
		for (int mm = 0; mm < A; mm++) {
			double s = 0;
			for (int q = 0; q < A * A; q++)
				s += (double)wp[q * A + mm] * dC[q];
			dmodal[r * A + mm] = (float)s;
		}
	}
}

void sk_cpu_altup_correct_bwd(sk_backend *be, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                              int active, const float *wc, const float *modal, const float *dc, float *dp, float *dy,
                              float *dmodal)
{
	(void)be;
	int64_t stride = rows * dim;
	float beta[16];
	double db[16];
	if (A > 16)
		return;
	for (int64_t r = 0; r < rows; r++) {
		const float *pa = p + active * stride + r * dim, *yr = y + r * dim;
		sk_cpu_small_matvec(wc, modal + r * A, A, A, beta);
		for (int k = 0; k < A; k++) {
			beta[k] += 1.0f;
			db[k] = 0;
		}
		float *dyr = dy + r * dim;
		for (int64_t d = 0; d < dim; d++) {
			float delta = yr[d] - pa[d], s = 0;
			for (int k = 0; k < A; k++) {
				float g = dc[k * stride + r * dim + d];
				dp[k * stride + r * dim + d] = g;
				s += beta[k] * g;
				db[k] += (double)g * delta;
			}
			dyr[d] = s;
		}
		float *dpa = dp + active * stride + r * dim;
		for (int64_t d = 0; d < dim; d++)
			dpa[d] -= dyr[d];
		for (int mm = 0; mm < A; mm++) {
			double s = 0;
			for (int k = 0; k < A; k++)
				s += (double)wc[k * A + mm] * db[k];
			dmodal[r * A + mm] = (float)s;
		}
	}
}

typedef struct {
	float *z;
	int64_t cw, col0;
	float cap;
	const int32_t *labels;
	float *mx, *se, *lab;
	const float *lse, *coef;
} xent_job;

static void xent_rows(void *ctx, int64_t r0, int64_t r1, int tid)
{
	(void)tid;
	xent_job *j = ctx;
	for (int64_t r = r0; r < r1; r++) {
		float *z = j->z + r * j->cw;
		float cm = -INFINITY;
		for (int64_t i = 0; i < j->cw; i++) {
			if (j->cap > 0)
				z[i] = tanhf(z[i] / j->cap) * j->cap;
			if (z[i] > cm)
				cm = z[i];
		}
		float nm = cm > j->mx[r] ? cm : j->mx[r];
		double s = 0;
		for (int64_t i = 0; i < j->cw; i++)
			s += exp((double)z[i] - nm);
		double old = j->mx[r] == -INFINITY ? 0.0 : (double)j->se[r] * exp((double)j->mx[r] - nm);
		j->se[r] = (float)(old + s);
		j->mx[r] = nm;
		int64_t lb = j->labels[r];
		if (lb >= j->col0 && lb < j->col0 + j->cw)
			j->lab[r] = z[lb - j->col0];
	}
}

static void xent_grad_rows(void *ctx, int64_t r0, int64_t r1, int tid)
{
	(void)tid;
	xent_job *j = ctx;
	for (int64_t r = r0; r < r1; r++) {
		float *z = j->z + r * j->cw;
		int64_t lb = j->labels[r] - j->col0;
		double lse = j->lse[r], coef = j->coef[r];
		for (int64_t i = 0; i < j->cw; i++) {
			double l = j->cap > 0 ? tanh((double)z[i] / j->cap) * j->cap : (double)z[i];
			double d = exp(l - lse) - (i == lb ? 1.0 : 0.0);
			d *= coef;
			if (j->cap > 0)
				d *= 1.0 - (l / j->cap) * (l / j->cap);
			z[i] = (float)d;
		}
	}
}

void sk_cpu_xent_chunk(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                       const int32_t *labels, float *mx, float *se, float *lab)
{
	xent_job j = { .z = z, .cw = cw, .col0 = col0, .cap = cap, .labels = labels, .mx = mx, .se = se, .lab = lab };
	sk_threadpool_for(sk_cpu_of(be)->pool, n, 1, xent_rows, &j);
}

void sk_cpu_xent_chunk_grad(sk_backend *be, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                            const int32_t *labels, const float *lse, const float *coef)
{
	xent_job j = { .z = z, .cw = cw, .col0 = col0, .cap = cap, .labels = labels, .lse = lse, .coef = coef };
	sk_threadpool_for(sk_cpu_of(be)->pool, n, 1, xent_grad_rows, &j);
}
