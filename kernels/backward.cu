// Training backward of the row and element ops: RMSNorm, RoPE, the gated
// GELU with its sparsity cutoff, AltUp's magnitude match, router, predict
// and correct. Each mirrors the CPU reference (engine/backend/
// backend_cpu_backward_elem.c) formula by formula, with its sums in double
// where the CPU's are. Row ops take one block per row (rows on grid.x, so
// any number of them); a thread touches only the elements it reads, so an
// output may alias its upstream gradient where the op table allows it.
#include "kernels/context.cuh"

#include <cuda_bf16.h>
#include <math.h>

#define MAX_A 16

__device__ __forceinline__ double warp_sum_d(double v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

// Sum over a block of whole warps; every thread gets the same total.
// sh: 32 doubles of shared memory.
__device__ __forceinline__ double block_sum_d(double v, double *sh)
{
	int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
	v = warp_sum_d(v);
	__syncthreads(); // sh may still be read by a previous call
	if (lane == 0)
		sh[wid] = v;
	__syncthreads();
	double t = lane < nw ? sh[lane] : 0.0;
	return warp_sum_d(t);
}

// Block sums of a thread's A values acc[0..A) into out[0..A) (shared),
// visible to the whole block on return. sh: 32 · MAX_A doubles.
__device__ __forceinline__ void block_sums_d(double (&acc)[MAX_A], int A, double *sh, double *out)
{
	int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
	for (int k = 0; k < MAX_A; k++)
		if (k < A)
			acc[k] = warp_sum_d(acc[k]);
	__syncthreads();
	if (lane == 0)
#pragma unroll
		for (int k = 0; k < MAX_A; k++)
			if (k < A)
				sh[wid * MAX_A + k] = acc[k];
	__syncthreads();
	if ((int)threadIdx.x < A) {
		double s = 0;
		for (int w = 0; w < nw; w++)
			s += sh[w * MAX_A + threadIdx.x];
		out[threadIdx.x] = s;
	}
	__syncthreads();
}

static int row_threads(int64_t dim)
{
	return dim >= 2048 ? 512 : dim >= 512 ? 256 : dim >= 128 ? 128 : 32;
}

// ---- RMSNorm: dx (+)= r·u − (r³/dim)·x·Σ(u ⊙ x), u = dy ⊙ w ----

__global__ static void k_rmsnorm_bwd(const float *__restrict__ x, int64_t dim, const float *__restrict__ w, float eps,
                                     const float *dy, float *dx, int accumulate)
{
	__shared__ double sh[32];
	int64_t off = (int64_t)blockIdx.x * dim;
	const float *xr = x + off, *gr = dy + off;
	float *o = dx + off;
	double ss = 0, su = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		float xv = xr[i];
		float u = w ? gr[i] * w[i] : gr[i];
		ss += (double)xv * xv;
		su += (double)u * xv;
	}
	ss = block_sum_d(ss, sh);
	su = block_sum_d(su, sh);
	float ms = (float)(ss / (double)dim) + eps;
	double inv = 1.0 / sqrt((double)ms);
	double k = inv * inv * inv * su / (double)dim;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		double u = w ? (double)gr[i] * w[i] : (double)gr[i];
		float v = (float)(inv * u - k * xr[i]);
		o[i] = accumulate ? o[i] + v : v;
	}
}

extern "C" void sk_cuda_rmsnorm_bwd(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                                    const float *dy, float *dx, int accumulate)
{
	if (rows > 0 && dim > 0)
		k_rmsnorm_bwd<<<(unsigned)rows, row_threads(dim), 0, c->stream>>>(x, dim, w, eps, dy, dx, accumulate);
	sk_cuda_launched(c, "rmsnorm backward");
}

// ---- RoPE backward: the inverse rotation (the angle's sine negated) ----

extern "C" void sk_cuda_rope_bwd(sk_cuda *c, float *d, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                                 float factor)
{
	sk_cuda_rope_rotate(c, d, n, heads, hd, pos, theta, factor, -1.0f);
}

// ---- gated GELU: dg = dL/dg through the cutoff μ + zσ, du = dh ⊙ gelu ----

__device__ __forceinline__ void gelu_tanh_d(float x, float *val, float *der)
{
	const double k = 0.7978845608028654;
	double xd = x, inner = k * (xd + 0.044715 * xd * xd * xd), t = tanh(inner);
	*val = (float)(0.5 * xd * (1.0 + t));
	*der = (float)(0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * xd * xd));
}

// The same in float: where the gradients go out in bf16, double's tanh made
// the kernel compute-bound (run 15: 210 µs a call at E4B 2 x 512, where its
// memory traffic takes ~90)
__device__ __forceinline__ void gelu_tanh_d_f(float x, float *val, float *der)
{
	const float k = 0.7978845608028654f;
	const float t = tanhf(k * (x + 0.044715f * x * x * x));
	*val = 0.5f * x * (1.0f + t);
	*der = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
}

// The GELU's input past the sparsity cutoff (z 0: none): g − cut, or 0 and
// *active 0 below it
__device__ __forceinline__ float cut_input(float g, float z, float cut, int *active)
{
	*active = 1;
	if (z == 0.0f)
		return g;
	const float x = __fsub_rn(g, cut);
	if (x < 0) {
		*active = 0;
		return 0.0f;
	}
	return x;
}

template <bool F32>
__device__ __forceinline__ void gelu_tanh_dd(float x, float *val, float *der)
{
	if (F32)
		gelu_tanh_d_f(x, val, der);
	else
		gelu_tanh_d(x, val, der);
}

// hg, hu (not NULL): the two gradients go out in bf16 instead, rows of ldg and
// ldu (the operands of the backward's products, sk_cuda_gelu_lora_bwd2); dg
// then holds fp32 values only while the cutoff's correction needs them.
// F32: the GELU's value and slope in float (the bf16 outputs' case).
template <bool F32>
__global__ static void k_gelu_mul_bwd(const float *__restrict__ g, const float *u, int64_t dim, float z,
                                      const float *dh, float *dg, float *du, __nv_bfloat16 *hg, int64_t ldg,
                                      __nv_bfloat16 *hu, int64_t ldu)
{
	__shared__ double sh[32];
	int64_t off = (int64_t)blockIdx.x * dim;
	const float *gr = g + off, *hr = dh + off, *ur = u ? u + off : NULL;
	float *o = dg + off, *uo = du ? du + off : NULL;
	__nv_bfloat16 *ho = hg ? hg + (int64_t)blockIdx.x * ldg : NULL;
	__nv_bfloat16 *huo = hu ? hu + (int64_t)blockIdx.x * ldu : NULL;
	float cut = 0, stdv = 0;
	double mean = 0;
	if (z != 0.0f) {
		// the same cutoff as the forward (population std)
		double s = 0, v = 0;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
			s += gr[i];
		mean = block_sum_d(s, sh) / (double)dim;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
			v += ((double)gr[i] - mean) * ((double)gr[i] - mean);
		v = block_sum_d(v, sh);
		stdv = (float)sqrt(v / (double)dim);
		cut = __fadd_rn((float)mean, __fmul_rn(stdv, z));
	}
	double G = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		int active;
		const float x = cut_input(gr[i], z, cut, &active);
		float a, da;
		gelu_tanh_dd<F32>(x, &a, &da);
		float h = hr[i];
		float gin = ur ? h * ur[i] : h;
		if (huo)
			huo[i] = __float2bfloat16_rn(h * a);
		else if (uo)
			uo[i] = h * a;
		float d = active ? gin * da : 0.0f;
		if (ho && z == 0.0f)
			ho[i] = __float2bfloat16_rn(d);
		else
			o[i] = d; // read back below by this thread only
		G += d;
	}
	if (z != 0.0f) {
		// the cutoff depends on every element: d/dg_j = 1/F + z(g_j − μ)/(Fσ)
		G = block_sum_d(G, sh);
		if (G != 0.0 || ho) {
			double F = (double)dim;
			for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
				double dc = 1.0 / F;
				if (stdv > 0)
					dc += (double)z * ((double)gr[i] - mean) / (F * (double)stdv);
				float v = (float)((double)o[i] - G * dc);
				if (ho)
					ho[i] = __float2bfloat16_rn(v);
				else
					o[i] = v;
			}
		}
	}
}

extern "C" void sk_cuda_gelu_mul_bwd(sk_cuda *c, const float *g, const float *u, int64_t rows, int64_t dim,
                                     float sparsity_z, const float *dh, float *dg, float *du)
{
	if (rows > 0 && dim > 0)
		k_gelu_mul_bwd<false><<<(unsigned)rows, dim >= 4096 ? 1024 : 256, 0, c->stream>>>(
			g, u, dim, sparsity_z, dh, dg, du, (__nv_bfloat16 *)NULL, (int64_t)0, (__nv_bfloat16 *)NULL, (int64_t)0);
	sk_cuda_launched(c, "gelu_mul backward");
}

void sk_cuda_gelu_mul_bwd_bf16(sk_cuda *c, const float *g, const float *u, int64_t rows, int64_t dim,
                               float sparsity_z, const float *dh, float *tmp, __nv_bfloat16 *hg,
                               int64_t ldg, __nv_bfloat16 *hu, int64_t ldu)
{
	if (rows > 0 && dim > 0)
		k_gelu_mul_bwd<true><<<(unsigned)rows, dim >= 4096 ? 1024 : 256, 0, c->stream>>>(
			g, u, dim, sparsity_z, dh, tmp, (float *)NULL, hg, ldg, hu, ldu);
	sk_cuda_launched(c, "gelu_mul backward to bf16");
}

// The same from bf16 g, u and dh (the rows the fused MLP's forward kept,
// gated_mlp.cu) into bf16 gradients: each element's d is computed again for
// the cutoff's correction instead of kept in fp32.
__device__ __forceinline__ float gelu_d16(const __nv_bfloat16 *gr, const __nv_bfloat16 *ur, const __nv_bfloat16 *hr,
                                          int64_t i, float z, float cut, float *gelu_h)
{
	int active;
	const float x = cut_input(__bfloat162float(gr[i]), z, cut, &active);
	float a, da;
	gelu_tanh_d_f(x, &a, &da);
	const float h = __bfloat162float(hr[i]);
	*gelu_h = h * a;
	return active ? h * __bfloat162float(ur[i]) * da : 0.0f;
}

__global__ static void k_gelu_mul_bwd16(const __nv_bfloat16 *__restrict__ g, const __nv_bfloat16 *__restrict__ u,
                                        int64_t dim, float z, const __nv_bfloat16 *__restrict__ dh,
                                        __nv_bfloat16 *__restrict__ hg, int64_t ldg, __nv_bfloat16 *__restrict__ hu,
                                        int64_t ldu)
{
	__shared__ double sh[32];
	const int64_t off = (int64_t)blockIdx.x * dim;
	const __nv_bfloat16 *gr = g + off, *ur = u + off, *hr = dh + off;
	__nv_bfloat16 *ho = hg + (int64_t)blockIdx.x * ldg, *huo = hu + (int64_t)blockIdx.x * ldu;
	float cut = 0, stdv = 0, gh;
	double mean = 0;
	if (z != 0.0f) { // the forward's cutoff (population std), from the same bf16 values
		double s = 0, v = 0;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
			s += (double)__bfloat162float(gr[i]);
		mean = block_sum_d(s, sh) / (double)dim;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
			const double d = (double)__bfloat162float(gr[i]) - mean;
			v += d * d;
		}
		v = block_sum_d(v, sh);
		stdv = (float)sqrt(v / (double)dim);
		cut = __fadd_rn((float)mean, __fmul_rn(stdv, z));
	}
	double G = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		const float d = gelu_d16(gr, ur, hr, i, z, cut, &gh);
		huo[i] = __float2bfloat16_rn(gh);
		if (z == 0.0f)
			ho[i] = __float2bfloat16_rn(d);
		G += d;
	}
	if (z != 0.0f) { // d/dg_j of the cutoff: 1/F + z(g_j − μ)/(Fσ)
		G = block_sum_d(G, sh);
		const double F = (double)dim;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
			const float d = gelu_d16(gr, ur, hr, i, z, cut, &gh);
			double dc = 1.0 / F;
			if (stdv > 0)
				dc += (double)z * ((double)__bfloat162float(gr[i]) - mean) / (F * (double)stdv);
			ho[i] = __float2bfloat16_rn((float)((double)d - G * dc));
		}
	}
}

void sk_cuda_gelu_mul_bwd16(sk_cuda *c, const __nv_bfloat16 *g, const __nv_bfloat16 *u, int64_t rows, int64_t dim,
                            float sparsity_z, const __nv_bfloat16 *dh, __nv_bfloat16 *hg, int64_t ldg,
                            __nv_bfloat16 *hu, int64_t ldu)
{
	if (rows > 0 && dim > 0)
		k_gelu_mul_bwd16<<<(unsigned)rows, dim >= 4096 ? 1024 : 256, 0, c->stream>>>(g, u, dim, sparsity_z, dh, hg,
		                                                                              ldg, hu, ldu);
	sk_cuda_launched(c, "gelu_mul backward from bf16");
}

// ---- AltUp magnitude match: du overwritten, dref accumulated ----

__global__ static void k_rescale_rms_bwd(const float *__restrict__ u, const float *__restrict__ ref, int64_t dim,
                                         const float *dy, float *du, float *dref)
{
	__shared__ double sh[32];
	int64_t off = (int64_t)blockIdx.x * dim;
	const float *ur = u + off, *rr = ref + off, *gr = dy + off;
	float *o = du + off, *dr = dref + off;
	double a = 0, b = 0, S = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		a += (double)rr[i] * rr[i];
		b += (double)ur[i] * ur[i];
		S += (double)gr[i] * ur[i];
	}
	a = block_sum_d(a, sh);
	b = block_sum_d(b, sh);
	S = block_sum_d(S, sh);
	double t = sqrt((double)(float)(a / (double)dim));
	double ms = (double)(float)(b / (double)dim);
	int clamped = ms < 1e-5;
	double cur = sqrt(clamped ? 1e-5 : ms);
	double k = clamped ? 0.0 : t * S / (cur * cur * cur * (double)dim);
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
		o[i] = (float)((double)gr[i] * t / cur - k * ur[i]);
	if (t > 0) {
		double kr = S / (cur * (double)dim * t);
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
			dr[i] += (float)(kr * rr[i]);
	}
}

extern "C" void sk_cuda_rescale_rms_bwd(sk_cuda *c, const float *u, const float *ref, int64_t rows, int64_t dim,
                                        const float *dy, float *du, float *dref)
{
	if (rows > 0 && dim > 0)
		k_rescale_rms_bwd<<<(unsigned)rows, 256, 0, c->stream>>>(u, ref, dim, dy, du, dref);
	sk_cuda_launched(c, "rescale_rms backward");
}

// ---- AltUp router: dx += RMSNorm backward of dn = Σ_k dz_k W[k], dz = dout·(1 − out²)/dim ----

__device__ __forceinline__ double router_dn(const double *dz, const float *__restrict__ w, int A, int64_t dim,
                                            int64_t i)
{
	double dn = 0;
	for (int k = 0; k < A; k++)
		dn += dz[k] * w[(int64_t)k * dim + i];
	return dn;
}

__global__ static void k_router_bwd(const float *__restrict__ x, int64_t dim, const float *__restrict__ norm_w,
                                    float eps, const float *__restrict__ w, int A, const float *__restrict__ out,
                                    const float *__restrict__ dout, float *dx)
{
	__shared__ double sh[32];
	__shared__ double dz[MAX_A];
	int64_t r = blockIdx.x;
	const float *xr = x + r * dim;
	float *o = dx + r * dim;
	if ((int)threadIdx.x < A) {
		int k = threadIdx.x;
		double t = out[r * A + k];
		dz[k] = (double)dout[r * A + k] * (1.0 - t * t) / (double)dim;
	}
	double ss = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
		ss += (double)xr[i] * xr[i];
	ss = block_sum_d(ss, sh); // its barriers also publish dz
	float ms = (float)(ss / (double)dim) + eps;
	double inv = 1.0 / sqrt((double)ms), su = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
		su += router_dn(dz, w, A, dim, i) * norm_w[i] * xr[i];
	su = block_sum_d(su, sh);
	double kk = inv * inv * inv * su / (double)dim;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		double dn = router_dn(dz, w, A, dim, i);
		o[i] += (float)(inv * dn * norm_w[i] - kk * xr[i]);
	}
}

extern "C" void sk_cuda_altup_router_bwd(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *norm_w,
                                         float eps, const float *w, int A, const float *out, const float *dout,
                                         float *dx)
{
	if (A > MAX_A) {
		sk_cuda_fail(c, "altup: %d streams are more than %d", A, MAX_A);
		return;
	}
	if (rows > 0 && dim > 0)
		k_router_bwd<<<(unsigned)rows, 256, 0, c->stream>>>(x, dim, norm_w, eps, w, A, out, dout, dx);
	sk_cuda_launched(c, "altup_router backward");
}

// ---- AltUp predict: dx_i = dp_i + Σ_k C[k][i] dp_k; dC[k][i] = Σ_d dp_k x_i;
// dmodal[m] = Σ_q Wp[q][m] dC[q] ----

// dmodal[m] = Σ_q Wp[q][m] dC[q] for a row's A entries (threads m < A), in double
__device__ __forceinline__ void predict_dmodal(const float *__restrict__ wp, const double *dC, int A,
                                               float *__restrict__ out)
{
	if ((int)threadIdx.x < A) {
		int m = threadIdx.x;
		double s = 0;
		for (int q = 0; q < A * A; q++)
			s += (double)wp[q * A + m] * dC[q];
		out[m] = (float)s;
	}
}

__global__ static void k_predict_bwd(const float *__restrict__ x, int64_t rows, int64_t dim, int A,
                                     const float *__restrict__ wp, const float *__restrict__ modal, const float *dp,
                                     float *dx, float *__restrict__ dmodal)
{
	__shared__ float C[MAX_A * MAX_A];
	__shared__ double dC[MAX_A * MAX_A];
	__shared__ double red[32 * MAX_A];
	int64_t r = blockIdx.x, stride = rows * dim, base = r * dim;
	sk_altup_coefs(wp, modal + r * A, A, C); // C = Wp · modal[r]
	// dC row by row of k (block_sums_d's barriers also publish C)
	for (int k = 0; k < A; k++) {
		double acc[MAX_A];
#pragma unroll
		for (int i = 0; i < MAX_A; i++)
			acc[i] = 0;
		for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
			double g = dp[k * stride + base + d];
#pragma unroll
			for (int i = 0; i < MAX_A; i++)
				if (i < A)
					acc[i] += g * x[i * stride + base + d];
		}
		block_sums_d(acc, A, red, &dC[k * A]);
	}
	predict_dmodal(wp, dC, A, dmodal + r * A);
	// dx last: every read of dp above is behind the barriers
	for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
		float g[MAX_A];
#pragma unroll
		for (int k = 0; k < MAX_A; k++)
			g[k] = k < A ? dp[k * stride + base + d] : 0.0f;
#pragma unroll
		for (int i = 0; i < MAX_A; i++)
			if (i < A) {
				float s = g[i];
#pragma unroll
				for (int k = 0; k < MAX_A; k++)
					if (k < A)
						s += C[k * A + i] * g[k];
				dx[i * stride + base + d] = s;
			}
	}
}

// The same for NA streams known when compiling (Gemma 3n's 4) in one pass over a row: each
// element of dp and x read once for all NA x NA sums of dC and for dx (the loop above reads x
// NA times and dp twice: 28 row-lengths of traffic where 12 suffice; run 14 measured it at 157
// µs a call, ~5x its bandwidth floor). The per-thread sums, their order and the reduction are
// the loop's, so the results are the same to the bit. dx may be dp: a thread reads its element
// of every stream before it writes any.
template <int NA>
__global__ static void k_predict_bwd_pass(const float *__restrict__ x, int64_t rows, int64_t dim,
                                          const float *__restrict__ wp, const float *__restrict__ modal, const float *dp,
                                          float *dx, float *__restrict__ dmodal)
{
	__shared__ float C[NA * NA];
	__shared__ double dC[NA * NA];
	__shared__ double red[32 * NA * NA];
	int64_t r = blockIdx.x, stride = rows * dim, base = r * dim;
	sk_altup_coefs(wp, modal + r * NA, NA, C);
	__syncthreads();
	double acc[NA * NA];
#pragma unroll
	for (int q = 0; q < NA * NA; q++)
		acc[q] = 0;
	for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
		float g[NA], xv[NA];
#pragma unroll
		for (int k = 0; k < NA; k++)
			g[k] = dp[k * stride + base + d], xv[k] = x[k * stride + base + d];
#pragma unroll
		for (int k = 0; k < NA; k++)
#pragma unroll
			for (int i = 0; i < NA; i++)
				acc[k * NA + i] += (double)g[k] * xv[i];
#pragma unroll
		for (int i = 0; i < NA; i++) {
			float s = g[i];
#pragma unroll
			for (int k = 0; k < NA; k++)
				s += C[k * NA + i] * g[k];
			dx[i * stride + base + d] = s;
		}
	}
	// the block's sums of the NA x NA values: warps, then the warps' partials in order
	int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
	for (int q = 0; q < NA * NA; q++)
		acc[q] = warp_sum_d(acc[q]);
	if (lane == 0)
#pragma unroll
		for (int q = 0; q < NA * NA; q++)
			red[wid * NA * NA + q] = acc[q];
	__syncthreads();
	if ((int)threadIdx.x < NA * NA) {
		double s = 0;
		for (int w = 0; w < nw; w++)
			s += red[w * NA * NA + threadIdx.x];
		dC[threadIdx.x] = s;
	}
	__syncthreads();
	predict_dmodal(wp, dC, NA, dmodal + r * NA);
}

extern "C" void sk_cuda_altup_predict_bwd(sk_cuda *c, const float *x, int64_t rows, int64_t dim, int A,
                                          const float *wp, const float *modal, const float *dp, float *dx,
                                          float *dmodal)
{
	if (A > MAX_A) {
		sk_cuda_fail(c, "altup: %d streams are more than %d", A, MAX_A);
		return;
	}
	if (rows > 0 && A == 4 && c->altup_one_pass)
		k_predict_bwd_pass<4><<<(unsigned)rows, 256, 0, c->stream>>>(x, rows, dim, wp, modal, dp, dx, dmodal);
	else if (rows > 0 && A > 0)
		k_predict_bwd<<<(unsigned)rows, 256, 0, c->stream>>>(x, rows, dim, A, wp, modal, dp, dx, dmodal);
	sk_cuda_launched(c, "altup_predict backward");
}

// ---- AltUp correct: dp_k = dc_k (dc_active − dy for the active stream),
// dy = Σ_k β_k dc_k, dβ_k = Σ_d dc_k (y − p_active), dmodal[m] = Σ_k Wc[k][m] dβ_k ----

__global__ static void k_correct_bwd(const float *__restrict__ p, const float *__restrict__ y, int64_t rows,
                                     int64_t dim, int A, int active, const float *__restrict__ wc,
                                     const float *__restrict__ modal, const float *dc, float *dp, float *dy,
                                     float *__restrict__ dmodal)
{
	__shared__ float beta[MAX_A];
	__shared__ double db[MAX_A];
	__shared__ double red[32 * MAX_A];
	int64_t r = blockIdx.x, stride = rows * dim, base = r * dim;
	if ((int)threadIdx.x < A) {
		int k = threadIdx.x;
		float s = 0;
		for (int m = 0; m < A; m++)
			s += wc[k * A + m] * modal[r * A + m];
		beta[k] = s + 1.0f;
	}
	__syncthreads();
	double acc[MAX_A];
#pragma unroll
	for (int k = 0; k < MAX_A; k++)
		acc[k] = 0;
	for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
		float delta = y[base + d] - p[active * stride + base + d], s = 0, ga = 0;
#pragma unroll
		for (int k = 0; k < MAX_A; k++)
			if (k < A) {
				float g = dc[k * stride + base + d];
				dp[k * stride + base + d] = g;
				s += beta[k] * g;
				acc[k] += (double)g * delta;
				if (k == active)
					ga = g;
			}
		dy[base + d] = s;
		dp[active * stride + base + d] = ga - s;
	}
	block_sums_d(acc, A, red, db);
	if ((int)threadIdx.x < A) {
		int m = threadIdx.x;
		double s = 0;
		for (int k = 0; k < A; k++)
			s += (double)wc[k * A + m] * db[k];
		dmodal[r * A + m] = (float)s;
	}
}

extern "C" void sk_cuda_altup_correct_bwd(sk_cuda *c, const float *p, const float *y, int64_t rows, int64_t dim,
                                          int A, int active, const float *wc, const float *modal, const float *dc,
                                          float *dp, float *dy, float *dmodal)
{
	if (A > MAX_A || active < 0 || active >= A) {
		sk_cuda_fail(c, "altup: %d streams (at most %d), active %d", A, MAX_A, active);
		return;
	}
	if (rows > 0)
		k_correct_bwd<<<(unsigned)rows, 256, 0, c->stream>>>(p, y, rows, dim, A, active, wc, modal, dc, dp, dy,
		                                                      dmodal);
	sk_cuda_launched(c, "altup_correct backward");
}
