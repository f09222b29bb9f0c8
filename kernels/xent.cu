// The chunked cross-entropy of training: over one vocabulary chunk of the
// LM head's outputs, the softcap in place, each row's online logsumexp
// state (running max and Σ exp(ℓ − max)) and its label's logit; then the
// gradient (softmax − onehot) · coef · softcap' in place. As the CPU
// reference (engine/backend/backend_cpu_backward_elem.c) computes them,
// sums and the gradient in double.
#include "kernels/context.cuh"

#include <math.h>

__device__ __forceinline__ double warp_sum_d(double v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

// Block reductions over whole warps; every thread gets the result.
__device__ __forceinline__ double block_sum_d(double v, double *sh)
{
	int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
	v = warp_sum_d(v);
	__syncthreads();
	if (lane == 0)
		sh[wid] = v;
	__syncthreads();
	double t = lane < nw ? sh[lane] : 0.0;
	return warp_sum_d(t);
}

__device__ __forceinline__ float block_max(float v, float *sh)
{
	int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
	v = sk_warp_max(v);
	__syncthreads();
	if (lane == 0)
		sh[wid] = v;
	__syncthreads();
	float t = lane < nw ? sh[lane] : -INFINITY;
	return sk_warp_max(t);
}

// One block per row.
__global__ static void k_xent_chunk(float *z, int64_t cw, int64_t col0, float cap, const int32_t *__restrict__ labels,
                                    float *mx, float *se, float *lab)
{
	__shared__ float shf[32];
	__shared__ double sh[32];
	int64_t r = blockIdx.x;
	float *zr = z + r * cw;
	float mx_old = mx[r], se_old = se[r]; // read before thread 0 writes them
	int64_t lb = (int64_t)labels[r] - col0;
	float cm = -INFINITY;
	for (int64_t i = threadIdx.x; i < cw; i += blockDim.x) {
		float v = zr[i];
		if (cap > 0) {
			v = tanhf(v / cap) * cap;
			zr[i] = v;
		}
		if (v > cm)
			cm = v;
		if (i == lb)
			lab[r] = v;
	}
	cm = block_max(cm, shf);
	float nm = cm > mx_old ? cm : mx_old;
	double s = 0;
	for (int64_t i = threadIdx.x; i < cw; i += blockDim.x) // this thread's own elements, capped above
		s += exp((double)zr[i] - nm);
	s = block_sum_d(s, sh);
	if (threadIdx.x == 0) {
		double old = mx_old == -INFINITY ? 0.0 : (double)se_old * exp((double)mx_old - nm);
		se[r] = (float)(old + s);
		mx[r] = nm;
	}
}

extern "C" void sk_cuda_xent_chunk(sk_cuda *c, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                                   const int32_t *labels, float *mx, float *se, float *lab)
{
	if (n > 0)
		k_xent_chunk<<<(unsigned)n, 256, 0, c->stream>>>(z, cw, col0, cap, labels, mx, se, lab);
	sk_cuda_launched(c, "cross-entropy chunk");
}

// One thread per element: z ← (exp(ℓ − lse) − [label]) · coef · (1 − (ℓ/cap)²).
__global__ static void k_xent_grad(float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                                   const int32_t *__restrict__ labels, const float *__restrict__ lse,
                                   const float *__restrict__ coef)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * cw)
		return;
	int64_t r = e / cw, i = e - r * cw;
	int64_t lb = (int64_t)labels[r] - col0;
	double l = cap > 0 ? tanh((double)z[e] / cap) * cap : (double)z[e];
	double d = exp(l - (double)lse[r]) - (i == lb ? 1.0 : 0.0);
	d *= (double)coef[r];
	if (cap > 0)
		d *= 1.0 - (l / cap) * (l / cap);
	z[e] = (float)d;
}

extern "C" void sk_cuda_xent_chunk_grad(sk_cuda *c, float *z, int64_t n, int64_t cw, int64_t col0, float cap,
                                        const int32_t *labels, const float *lse, const float *coef)
{
	if (n * cw > 0)
		k_xent_grad<<<sk_blocks(n * cw, 256), 256, 0, c->stream>>>(z, n, cw, col0, cap, labels, lse, coef);
	sk_cuda_launched(c, "cross-entropy gradient");
}
