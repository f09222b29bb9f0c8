/* CPU ops: RMSNorm and rotary position embedding. */
#include "engine/backend/backend_cpu.h"

#include <math.h>

/* HF's RMSNorm scale of a row: (mean(x²) + eps)^-1/2 in fp32 (the sum in double). */
static float rms_inv(const float *x, int64_t dim, float eps)
{
	double ss = 0;
	for (int64_t i = 0; i < dim; i++)
		ss += (double)x[i] * x[i];
	float ms = (float)(ss / (double)dim) + eps;
	return (float)(1.0 / sqrt((double)ms));
}

void sk_cpu_rmsnorm(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *y)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		const float *xr = x + r * dim;
		float *yr = y + r * dim;
		/* x · inv, then · w */
		float inv = rms_inv(xr, dim, eps);
		if (w)
			for (int64_t i = 0; i < dim; i++)
				yr[i] = (xr[i] * inv) * w[i];
		else
			for (int64_t i = 0; i < dim; i++)
				yr[i] = xr[i] * inv;
	}
}

void sk_cpu_rope_rotate(float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta, float factor,
                        float sign)
{
	int half = hd / 2;
	float inv[512];
	if (half > 512)
		half = 512; /* head_dim is bounded by the config check; keep the stack array safe */
	/* the frequencies as HF builds them in fp32: 1 / theta^(2m/hd), then / factor */
	for (int m = 0; m < half; m++) {
		float e = (float)(2 * m) / (float)hd;
		float p = powf(theta, e);
		inv[m] = (1.0f / p) / factor;
	}
	for (int64_t i = 0; i < n; i++) {
		float fp = (float)pos[i];
		for (int m = 0; m < half; m++) {
			float ang = fp * inv[m];
			/* sign -1: the transpose (exact: negating a float rounds nothing) */
			float c = (float)cos((double)ang), s = sign * (float)sin((double)ang);
			for (int h = 0; h < heads; h++) {
				float *v = x + (i * heads + h) * hd;
				float a = v[m], b = v[m + half];
				v[m] = a * c - b * s;
				v[m + half] = b * c + a * s;
			}
		}
	}
}

void sk_cpu_norm_add(sk_backend *be, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                     const float *a, const float *b, float scale, float *y)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		const float *xr = x + r * dim, *ar = a + r * dim, *br = b ? b + r * dim : NULL;
		float *yr = y + r * dim;
		float inv = rms_inv(xr, dim, eps);
		for (int64_t i = 0; i < dim; i++) {
			float t = w ? (xr[i] * inv) * w[i] : xr[i] * inv;
			float s = ar[i] + t;
			if (br)
				s = s + br[i];
			yr[i] = scale == 1.0f ? s : s * scale;
		}
	}
}

void sk_cpu_norm_rope(sk_backend *be, const float *x, int64_t n, int heads, int hd, const float *w, float eps,
                      const int32_t *pos, float theta, float factor, float *y)
{
	sk_cpu_rmsnorm(be, x, n * heads, hd, w, eps, y);
	sk_cpu_rope(be, y, n, heads, hd, pos, theta, factor);
}

void sk_cpu_rope(sk_backend *be, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta, float factor)
{
	(void)be;
	sk_cpu_rope_rotate(x, n, heads, hd, pos, theta, factor, 1.0f);
}
