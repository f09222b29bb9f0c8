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

// The norm kernels' threads a row of dim (one block a row)
static inline int sk_norm_threads(int64_t dim)
{
	return dim >= 1024 ? 512 : dim >= 256 ? 128 : 32;
}

#endif
