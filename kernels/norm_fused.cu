// The norms between a decoder layer's matrix products fused into fewer
// launches. At batch 1 a decode step is about a thousand small dependent
// kernels and each costs a launch's latency more than its arithmetic, so
// these do in one launch what two or three separate norm kernels did, with
// the same thread counts and the same order of operations (results equal
// to the separate kernels' to the bit).
#include "kernels/launch.cuh"
#include "kernels/rms_row.cuh"

// ---- after attention: λ = c + RMS(z; wz); y = ((a + RMS(x; wx)) + λ) · scale; yn = RMS(y; wy) ----

struct nan_args {
	const float *x, *wx, *a, *z, *wz, *c;
	float *lam, *y, *yn;
	const float *wy;
	float scale, eps;
	int64_t dim;
};

__global__ static void k_norm_add_norm(nan_args g)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	const int64_t off = (int64_t)blockIdx.x * g.dim;
	const float ix = sk_row_inv_rms(g.x + off, g.dim, g.eps, sh);
	const float iz = g.z ? sk_row_inv_rms(g.z + off, g.dim, g.eps, sh) : 0.0f;
	float ss = 0;
	for (int64_t i = threadIdx.x; i < g.dim; i += blockDim.x) {
		float s = g.a[off + i] + sk_normed(g.x[off + i], ix, g.wx, i);
		if (g.z) {
			float l = g.c[off + i] + sk_normed(g.z[off + i], iz, g.wz, i);
			g.lam[off + i] = l;
			s = s + l;
		}
		float v = g.scale == 1.0f ? s : s * g.scale;
		g.y[off + i] = v;
		ss += v * v;
	}
	const float iy = rsqrtf(sk_block_sum(ss, sh) / (float)g.dim + g.eps);
	for (int64_t i = threadIdx.x; i < g.dim; i += blockDim.x) { // each thread rereads what it wrote
		g.yn[off + i] = sk_normed(g.y[off + i], iy, g.wy, i);
	}
}

extern "C" void sk_cuda_norm_add_norm(sk_cuda *c, int64_t rows, int64_t dim, float eps, const float *x,
                                      const float *wx, const float *a, const float *z, const float *wz,
                                      const float *cc, float *lam, float scale, float *y, const float *wy, float *yn)
{
	if (rows <= 0)
		return;
	nan_args g = { x, wx, a, z, wz, cc, lam, y, yn, wy, scale, eps, dim };
	sk_launch(c, k_norm_add_norm, (unsigned)rows, sk_norm_threads(dim), 0, g);
	sk_cuda_launched(c, "norm_add_norm");
}

// ---- q, k and v of a layer: q, k RMS-normed per head and rotated; v normed
// without a weight (Gemma 3n's v_norm); one block per (row, head) ----

struct qkv_args {
	const float *q, *qw, *k, *kw, *v;
	float *qo, *ko, *vo;
	const int32_t *pos;
	int nh, nkv, hd;
	float eps, theta, factor;
};

__global__ static void k_norm_rope_qkv(qkv_args g)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	const int per_row = g.nh + 2 * g.nkv;
	const int64_t i = blockIdx.x / per_row;
	int h = blockIdx.x % per_row;
	const float *x, *w;
	float *o;
	int rope = 1;
	if (h < g.nh) {
		x = g.q + (i * g.nh + h) * g.hd, o = g.qo + (i * g.nh + h) * g.hd, w = g.qw;
	} else if ((h -= g.nh) < g.nkv) {
		x = g.k + (i * g.nkv + h) * g.hd, o = g.ko + (i * g.nkv + h) * g.hd, w = g.kw;
	} else {
		h -= g.nkv;
		x = g.v + (i * g.nkv + h) * g.hd, o = g.vo + (i * g.nkv + h) * g.hd, w = NULL, rope = 0;
	}
	const float inv = sk_row_inv_rms(x, g.hd, g.eps, sh);
	if (rope) {
		sk_norm_rope_head(x, o, w, inv, g.pos[i], g.hd, g.theta, g.factor);
		return;
	}
	for (int d = threadIdx.x; d < g.hd; d += blockDim.x)
		o[d] = x[d] * inv;
}

extern "C" void sk_cuda_norm_rope_qkv(sk_cuda *c, int64_t n, int hd, float eps, const int32_t *pos, float theta,
                                      float factor, const float *q, int nh, const float *qw, float *qo,
                                      const float *k, const float *v, int nkv, const float *kw, float *ko, float *vo)
{
	// the thread count of norm_rope and of rmsnorm over one head agree below 1,024
	if (hd >= 1024 || hd % 2 || !k) {
		sk_cuda_norm_rope(c, q, n, nh, hd, qw, eps, pos, theta, factor, qo);
		if (k) {
			sk_cuda_norm_rope(c, k, n, nkv, hd, kw, eps, pos, theta, factor, ko);
			sk_cuda_rmsnorm(c, v, n * nkv, hd, NULL, eps, vo);
		}
		return;
	}
	if (n <= 0)
		return;
	qkv_args g = { q, qw, k, kw, v, qo, ko, vo, pos, nh, nkv, hd, eps, theta, factor };
	sk_launch(c, k_norm_rope_qkv, (unsigned)(n * (nh + 2 * nkv)), hd / 2 >= 128 ? 128 : 32, 0, g);
	sk_cuda_launched(c, "norm_rope_qkv");
}
