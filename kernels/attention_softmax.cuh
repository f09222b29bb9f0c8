// The row kernels of attention through matrix products (attention_gemm.cu
// for one sequence, attention_spans.cu for several in one call): the
// masked softmax of materialised scores and its backward. Rows of n scores,
// one block a row (i of head blockIdx.y); a batch of padded sequences is
// more heads of the same n, their padded rows harmless (zero q and dO
// rows give zero dS; padded keys sit after every real row's i).
#ifndef SK_KERNELS_ATTENTION_SOFTMAX_CUH
#define SK_KERNELS_ATTENTION_SOFTMAX_CUH

#include "kernels/context.cuh"

#include <cuda_bf16.h>
#include <math.h>

#define SK_ATTN_ROW_T 256

// one block a row (i of head blockIdx.y): P = softmax of the masked, scaled
// and softcapped scores; masked entries 0
__global__ static void k_softmax_rows(const float *__restrict__ S, float *__restrict__ P, int64_t n, int window,
                                      float scale, float softcap, __nv_bfloat16 *__restrict__ Pb)
{
	__shared__ float sh[32];
	const int64_t i = blockIdx.x, row = ((int64_t)blockIdx.y * n + i) * n;
	const int64_t lo = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
	float mx = -INFINITY;
	for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) {
		float v = S[row + j] * scale;
		if (softcap > 0)
			v = tanhf(v / softcap) * softcap;
		mx = fmaxf(mx, v);
	}
	// block max through the sum helper's pattern
	mx = sk_warp_max(mx);
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
	__syncthreads();
	if (lane == 0)
		sh[w] = mx;
	__syncthreads();
	mx = sk_warp_max(lane < nw ? sh[lane] : -INFINITY);
	float sum = 0;
	for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) {
		float v = S[row + j] * scale;
		if (softcap > 0)
			v = tanhf(v / softcap) * softcap;
		float e = expf(v - mx);
		P[row + j] = e;
		sum += e;
	}
	const float inv = 1.0f / sk_block_sum(sum, sh);
	for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
		float v = j >= lo && j <= i ? P[row + j] * inv : 0.0f;
		P[row + j] = v;
		if (Pb)
			Pb[row + j] = __float2bfloat16_rn(v);
	}
}

// dS = dL/dS (raw scores) in place of dP: P (dP - Σ_j P dP) · scale, times
// the softcap's derivative 1 - tanh² where there is one
__global__ static void k_softmax_bwd_rows(const float *__restrict__ S, const float *__restrict__ P,
                                          float *__restrict__ dP, int64_t n, float scale, float softcap,
                                          __nv_bfloat16 *__restrict__ dSb)
{
	__shared__ float sh[32];
	const int64_t row = ((int64_t)blockIdx.y * n + blockIdx.x) * n, i = blockIdx.x;
	float d = 0;
	for (int64_t j = threadIdx.x; j <= i; j += blockDim.x)
		d += P[row + j] * dP[row + j];
	d = sk_block_sum(d, sh);
	for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
		float g = P[row + j] * (dP[row + j] - d) * scale;
		if (softcap > 0 && j <= i) {
			float t = tanhf(S[row + j] * scale / softcap);
			g = g * (1.0f - t * t);
		}
		if (dSb) // the bf16 products read only this copy
			dSb[row + j] = __float2bfloat16_rn(g);
		else
			dP[row + j] = g;
	}
}

#endif
