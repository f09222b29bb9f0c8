// AltUp (Gemma 3n §3.5): the router's modality weights, the prediction of
// every stream from all of them, and the correction after the block.
#include "kernels/launch.cuh"
#include "kernels/rms_row.cuh"

#define MAX_A 16

// One block per row: out[r][k] = tanh(Σ_j W[k][j] · RMS(x[r]; norm_w)_j / dim).
__global__ static void k_router(const float *__restrict__ x, int64_t dim, const float *__restrict__ norm_w, float eps,
                                const float *__restrict__ w, int A, float *out)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	const float *xr = x + (int64_t)blockIdx.x * dim;
	float ss = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
		ss += xr[i] * xr[i];
	float inv = rsqrtf(sk_block_sum(ss, sh) / (float)dim + eps);
	float sdim = 1.0f / (float)dim;
	for (int k = 0; k < A; k++) {
		const float *wk = w + (int64_t)k * dim;
		float s = 0;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
			s += wk[i] * (((xr[i] * inv) * norm_w[i]) * sdim);
		s = sk_block_sum(s, sh);
		if (threadIdx.x == 0)
			out[(int64_t)blockIdx.x * A + k] = tanhf(s);
	}
}

// The router's A outputs of row xr into modal (shared memory; every thread
// sees them after the call), for a block of up to 1,024 threads; shared by
// the router kernel and the fused router + predict / correct kernels below,
// so all three round alike.
template <int A>
__device__ __forceinline__ void router_row(const float *__restrict__ xr, int64_t dim, const float *__restrict__ norm_w,
                                           float eps, const float *__restrict__ w, float *modal)
{
	__shared__ float part[32][A + 1];
	float s[A + 1];
#pragma unroll
	for (int k = 0; k <= A; k++)
		s[k] = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		float v = xr[i], vn = v * norm_w[i];
		s[A] += v * v;
#pragma unroll
		for (int k = 0; k < A; k++)
			s[k] += w[(int64_t)k * dim + i] * vn;
	}
	int lane = threadIdx.x & 31, wp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
#pragma unroll
	for (int k = 0; k <= A; k++) {
		float t = sk_warp_sum(s[k]);
		if (lane == 0)
			part[wp][k] = t;
	}
	__syncthreads();
	if (threadIdx.x <= A) {
		float t = 0;
		for (int q = 0; q < nw; q++)
			t += part[q][threadIdx.x];
		part[0][threadIdx.x] = t;
	}
	__syncthreads();
	if (threadIdx.x < A) {
		float scale = rsqrtf(part[0][A] / (float)dim + eps) / (float)dim;
		modal[threadIdx.x] = tanhf(part[0][threadIdx.x] * scale);
	}
	__syncthreads();
}

// The router for a compile-time number of streams (Gemma 3n has 4), in one
// pass: each thread sums x² and the A products with x ⊙ norm_w in
// registers, the A + 1 sums are reduced together, and the row's scalar
// 1/rms · 1/dim is applied at the end: one block reduction a row instead
// of five dependent ones.
template <int A>
__global__ static void k_router_fused(const float *__restrict__ x, int64_t dim, const float *__restrict__ norm_w,
                                      float eps, const float *__restrict__ w, float *out)
{
	sk_pdl_wait();
	__shared__ float modal[A];
	router_row<A>(x + (int64_t)blockIdx.x * dim, dim, norm_w, eps, w, modal);
	if (threadIdx.x < A)
		out[(int64_t)blockIdx.x * A + threadIdx.x] = modal[threadIdx.x];
}

// Router then prediction in one block per row (decoding: one launch instead
// of two), the same arithmetic as k_router_fused and k_predict; with nrm,
// also RMSNorm(p_active; nw) into nrm, rounded as the rmsnorm kernel (the
// launch takes its thread count).
template <int A>
__global__ static void k_router_predict(const float *__restrict__ x, int64_t rows, int64_t dim, int active,
                                        const float *__restrict__ norm_w, float eps, const float *__restrict__ w,
                                        const float *__restrict__ wp, float *modal_out, float *p,
                                        const float *__restrict__ nw, float *nrm)
{
	sk_pdl_wait();
	__shared__ float modal[A], C[A * A], sh[32];
	int64_t r = blockIdx.x, stride = rows * dim;
	router_row<A>(x + active * stride + r * dim, dim, norm_w, eps, w, modal);
	if (threadIdx.x < A)
		modal_out[r * A + threadIdx.x] = modal[threadIdx.x];
	sk_altup_coefs(wp, modal, A, C);
	__syncthreads();
	float ss = 0;
	for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
		int64_t off = r * dim + d;
		float xi[A];
#pragma unroll
		for (int i = 0; i < A; i++)
			xi[i] = x[i * stride + off];
#pragma unroll
		for (int k = 0; k < A; k++) {
			float s = 0;
			for (int i = 0; i < A; i++)
				s += C[k * A + i] * xi[i];
			p[k * stride + off] = s + xi[k];
			if (k == active)
				ss += (s + xi[k]) * (s + xi[k]);
		}
	}
	if (!nrm)
		return;
	float inv = rsqrtf(sk_block_sum(ss, sh) / (float)dim + eps);
	for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) { // each thread rereads what it wrote
		nrm[r * dim + d] = sk_normed(p[active * stride + r * dim + d], inv, nw, d);
	}
}

// Router over y then correction, one block per row, the arithmetic of
// k_router_fused and k_correct.
template <int A>
__global__ static void k_router_correct(const float *__restrict__ p, const float *__restrict__ y, int64_t rows,
                                        int64_t dim, int active, const float *__restrict__ norm_w, float eps,
                                        const float *__restrict__ w, const float *__restrict__ wc, float *modal_out,
                                        float *out)
{
	sk_pdl_wait();
	__shared__ float modal[A], beta[A];
	int64_t r = blockIdx.x, stride = rows * dim;
	router_row<A>(y + r * dim, dim, norm_w, eps, w, modal);
	if (threadIdx.x < A) {
		modal_out[r * A + threadIdx.x] = modal[threadIdx.x];
		float b = 0;
		for (int i = 0; i < A; i++)
			b += wc[threadIdx.x * A + i] * modal[i];
		beta[threadIdx.x] = b + 1.0f;
	}
	__syncthreads();
	for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
		int64_t off = r * dim + d;
		float diff = y[off] - p[active * stride + off];
#pragma unroll
		for (int k = 0; k < A; k++)
			out[k * stride + off] = diff * beta[k] + p[k * stride + off];
	}
}

// After the MLP, one block per row: y = h + RMSNorm(f; fw) (as norm_add),
// the router over y and the correction into out (as k_router_correct), and
// vin = out_active ⊙ vs (vs NULL: a copy), the per-layer input's operand.
struct tail_args {
	const float *f, *fw, *h, *p, *norm_w, *w, *wc, *vs;
	float *y, *modal, *out, *vin;
	int64_t rows, dim;
	int active;
	float eps;
};

template <int A>
__global__ static void k_norm_add_correct(tail_args g)
{
	sk_pdl_wait();
	__shared__ float sh[32], modal[A], beta[A];
	const int64_t r = blockIdx.x, stride = g.rows * g.dim, off = r * g.dim;
	const float inv = sk_row_inv_rms(g.f + off, g.dim, g.eps, sh);
	for (int64_t i = threadIdx.x; i < g.dim; i += blockDim.x) {
		g.y[off + i] = g.h[off + i] + sk_normed(g.f[off + i], inv, g.fw, i);
	}
	__syncthreads(); // the router reads the whole row of y
	router_row<A>(g.y + off, g.dim, g.norm_w, g.eps, g.w, modal);
	if (threadIdx.x < A) {
		g.modal[r * A + threadIdx.x] = modal[threadIdx.x];
		float b = 0;
		for (int i = 0; i < A; i++)
			b += g.wc[threadIdx.x * A + i] * modal[i];
		beta[threadIdx.x] = b + 1.0f;
	}
	__syncthreads();
	for (int64_t d = threadIdx.x; d < g.dim; d += blockDim.x) {
		int64_t o = off + d;
		float diff = g.y[o] - g.p[g.active * stride + o];
#pragma unroll
		for (int k = 0; k < A; k++) {
			float v = diff * beta[k] + g.p[k * stride + o];
			g.out[k * stride + o] = v;
			if (k == g.active && g.vin)
				g.vin[o] = g.vs ? v * g.vs[d] : v;
		}
	}
}

extern "C" void sk_cuda_altup_norm_add_correct(sk_cuda *c, int64_t rows, int64_t dim, int A, int active, float eps,
                                               const float *f, const float *fw, const float *h, float *y,
                                               const float *p, const float *norm_w, const float *w, const float *wc,
                                               float *modal, float *out, const float *vs, float *vin)
{
	if (A != 4) { // the separate kernels take any count
		sk_cuda_norm_add(c, f, rows, dim, fw, eps, h, NULL, 1.0f, y);
		sk_cuda_altup_router_correct(c, p, y, rows, dim, active, norm_w, eps, w, A, wc, modal, out);
		if (vin && vs)
			sk_cuda_mul_rows(c, out + (int64_t)active * rows * dim, vs, 0, rows, dim, vin);
		else if (vin)
			sk_cuda_scale(c, out + (int64_t)active * rows * dim, rows * dim, 1.0f, vin);
		return;
	}
	tail_args g = { f, fw, h, p, norm_w, w, wc, vs, y, modal, out, vin, rows, dim, active, eps };
	if (rows > 0)
		sk_launch(c, k_norm_add_correct<4>, (unsigned)rows, sk_norm_threads(dim), 0, g);
	sk_cuda_launched(c, "altup_norm_add_correct");
}

extern "C" void sk_cuda_altup_router(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *norm_w,
                                     float eps, const float *w, int A, float *out)
{
	if (rows > 0 && A == 4)
		sk_launch(c, k_router_fused<4>, (unsigned)rows, 256, 0, x, dim, norm_w, eps, w, out);
	else if (rows > 0)
		sk_launch(c, k_router, (unsigned)rows, 256, 0, x, dim, norm_w, eps, w, A, out);
	sk_cuda_launched(c, "altup_router");
}

// Grid (rows, column chunks): rows on x, which has room for any batch. p_k = x_k + Σ_i C[k][i] x_i with
// C[k][i] = Σ_m Wp[k·A + i][m] · modal[r][m], computed once per block.
__global__ static void k_predict(const float *__restrict__ x, int64_t rows, int64_t dim, int A,
                                 const float *__restrict__ wp, const float *__restrict__ modal, float *p)
{
	sk_pdl_wait();
	__shared__ float C[MAX_A * MAX_A];
	int64_t r = blockIdx.x;
	sk_altup_coefs(wp, modal + r * A, A, C);
	__syncthreads();
	int64_t d = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
	if (d >= dim)
		return;
	int64_t stride = rows * dim, off = r * dim + d;
	float xi[MAX_A];
	for (int i = 0; i < A; i++)
		xi[i] = x[i * stride + off];
	for (int k = 0; k < A; k++) {
		float s = 0;
		for (int i = 0; i < A; i++)
			s += C[k * A + i] * xi[i];
		p[k * stride + off] = s + xi[k];
	}
}

extern "C" void sk_cuda_altup_predict(sk_cuda *c, const float *x, int64_t rows, int64_t dim, int A, const float *wp,
                                      const float *modal, float *p)
{
	if (A > MAX_A) {
		sk_cuda_fail(c, "altup: %d streams are more than %d", A, MAX_A);
		return;
	}
	if (rows > 0)
		sk_launch(c, k_predict, dim3((unsigned)rows, sk_blocks(dim, 256)), 256, 0, x, rows, dim, A, wp, modal, p);
	sk_cuda_launched(c, "altup_predict");
}

// c_k = p_k + (1 + Σ_m Wc[k][m] · modal[r][m]) · (y − p_active)
__global__ static void k_correct(const float *__restrict__ p, const float *__restrict__ y, int64_t rows, int64_t dim,
                                 int A, int active, const float *__restrict__ wc, const float *__restrict__ modal,
                                 float *out)
{
	sk_pdl_wait();
	__shared__ float beta[MAX_A];
	int64_t r = blockIdx.x;
	for (int k = threadIdx.x; k < A; k += blockDim.x) {
		float b = 0;
		for (int i = 0; i < A; i++)
			b += wc[k * A + i] * modal[r * A + i];
		beta[k] = b + 1.0f;
	}
	__syncthreads();
	int64_t d = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
	if (d >= dim)
		return;
	int64_t stride = rows * dim, off = r * dim + d;
	float diff = y[off] - p[active * stride + off];
	for (int k = 0; k < A; k++)
		out[k * stride + off] = diff * beta[k] + p[k * stride + off];
}

extern "C" void sk_cuda_altup_correct(sk_cuda *c, const float *p, const float *y, int64_t rows, int64_t dim, int A,
                                      int active, const float *wc, const float *modal, float *out)
{
	if (A > MAX_A) {
		sk_cuda_fail(c, "altup: %d streams are more than %d", A, MAX_A);
		return;
	}
	if (rows > 0)
		sk_launch(c, k_correct, dim3((unsigned)rows, sk_blocks(dim, 256)), 256, 0, p, y, rows, dim, A, active, wc,
		                                                                            modal, out);
	sk_cuda_launched(c, "altup_correct");
}

extern "C" void sk_cuda_altup_router_predict(sk_cuda *c, const float *x, int64_t rows, int64_t dim, int active,
                                             const float *norm_w, float eps, const float *w, int A, const float *wp,
                                             float *modal, float *p, const float *nw, float *nrm)
{
	if (A != 4) { // the separate kernels take any count
		sk_cuda_altup_router(c, x + (int64_t)active * rows * dim, rows, dim, norm_w, eps, w, A, modal);
		sk_cuda_altup_predict(c, x, rows, dim, A, wp, modal, p);
		if (nrm)
			sk_cuda_rmsnorm(c, p + (int64_t)active * rows * dim, rows, dim, nw, eps, nrm);
		return;
	}
	if (rows > 0)
		sk_launch(c, k_router_predict<4>, (unsigned)rows, sk_norm_threads(dim), 0, x, rows, dim, active, norm_w,
		          eps, w, wp, modal, p, nw, nrm);
	sk_cuda_launched(c, "altup_router_predict");
}

extern "C" void sk_cuda_altup_router_correct(sk_cuda *c, const float *p, const float *y, int64_t rows, int64_t dim,
                                             int active, const float *norm_w, float eps, const float *w, int A,
                                             const float *wc, float *modal, float *out)
{
	if (A != 4) {
		sk_cuda_altup_router(c, y, rows, dim, norm_w, eps, w, A, modal);
		sk_cuda_altup_correct(c, p, y, rows, dim, A, active, wc, modal, out);
		return;
	}
	if (rows > 0)
		sk_launch(c, k_router_correct<4>, (unsigned)rows, 256, 0, p, y, rows, dim, active, norm_w, eps, w, wc, modal,
		          out);
	sk_cuda_launched(c, "altup_router_correct");
}
