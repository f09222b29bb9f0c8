// 1 / sqrt(mean(xr²) + eps) of one row, for kernels that take a row a
// block: every thread of the block gets it (sh: 32 floats of shared
// memory). All the norm kernels use it with the same thread counts, so a
// fused kernel rounds as the separate ones do.
#ifndef SK_KERNELS_RMS_ROW_CUH
#define SK_KERNELS_RMS_ROW_CUH

#include "kernels/context.cuh"

__device__ __forceinline__ float sk_row_inv_rms(const float *xr, int64_t dim, float eps, float *sh)
{
	float ss = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
		ss += xr[i] * xr[i];
	ss = sk_block_sum(ss, sh);
	return rsqrtf(ss / (float)dim + eps);
}

// Element i of a row normed by inv, times the weight when there is one.
__device__ __forceinline__ float sk_normed(float x, float inv, const float *w, int64_t i)
{
	float t = x * inv;
	return w ? t * w[i] : t;
}

// One head of hd values normed by inv (times w) and rotated (half-split
// RoPE at position pos) into o, which may be x; a block's threads share it.
__device__ __forceinline__ void sk_norm_rope_head(const float *x, float *o, const float *w, float inv, int32_t pos,
                                                  int hd, float theta, float factor)
{
	const int half = hd / 2;
	for (int m = threadIdx.x; m < half; m += blockDim.x) {
		float a = x[m] * inv, b = x[m + half] * inv;
		if (w) {
			a = a * w[m];
			b = b * w[m + half];
		}
		float cs, sn;
		sk_rope_cs(pos, m, hd, theta, factor, 1.0f, &cs, &sn);
		o[m] = a * cs - b * sn;
		o[m + half] = b * cs + a * sn;
	}
}

// The norm kernels' threads a row of dim (one block a row)
static inline int sk_norm_threads(int64_t dim)
{
	return dim >= 1024 ? 512 : dim >= 256 ? 128 : 32;
}

#endif
