// sk_cuda_matmul's product computed directly, one output element a thread,
// in fp32 (SK_CUDA_GEMM=reference). compute-sanitizer's racecheck stops
// with an internal error in cuBLASLt's Hopper kernels whether or not they
// are filtered out; with this path every kernel of a check run is ours.
#include "kernels/launch.cuh"

#include <cuda_bf16.h>

template <typename T> __device__ __forceinline__ float as_float(T v);
template <> __device__ __forceinline__ float as_float<float>(float v) { return v; }
template <> __device__ __forceinline__ float as_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// D[i + j·ldd] = alpha Σ_k op(A)[i][k] op(B)[k][j] + beta D (D not read when beta is 0)
template <typename T, typename O>
__global__ static void k_gemm_reference(sk_cuda_gemm_shape s, float alpha, const T *__restrict__ A,
                                        const T *__restrict__ B, float beta, O *__restrict__ D)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, j = blockIdx.y;
	if (i >= s.m)
		return;
	const T *a = A + (int64_t)blockIdx.z * s.sa, *b = B + (int64_t)blockIdx.z * s.sb;
	O *d = D + (int64_t)blockIdx.z * s.sd + i + j * s.ldd;
	float acc = 0.0f;
	for (int64_t k = 0; k < s.k; k++) {
		float x = as_float(a[s.ta ? k + i * s.lda : i + k * s.lda]);
		float y = as_float(b[s.tb ? j + k * s.ldb : k + j * s.ldb]);
		acc = fmaf(x, y, acc);
	}
	*d = from_float<O>(beta == 0.0f ? alpha * acc : alpha * acc + beta * as_float(*d));
}

int sk_cuda_matmul_reference(sk_cuda *c, const sk_cuda_gemm_shape *s, float alpha, const void *A, const void *B,
                             float beta, void *D)
{
	if (s->n > 65535 || s->batch > 65535) {
		sk_cuda_fail(c, "the reference product takes at most 65,535 columns and products (%lld, %d)",
		             (long long)s->n, s->batch);
		return -1;
	}
	dim3 grid((unsigned)((s->m + 127) / 128), (unsigned)s->n, (unsigned)s->batch);
	if (s->bf16 == 3)
		sk_launch(c, k_gemm_reference<__nv_bfloat16, __nv_bfloat16>, grid, 128, 0, *s, alpha,
		          (const __nv_bfloat16 *)A, (const __nv_bfloat16 *)B, beta, (__nv_bfloat16 *)D);
	else if (s->bf16 == 1) // 2 (TF32) reads fp32 operands and keeps them whole
		sk_launch(c, k_gemm_reference<__nv_bfloat16, float>, grid, 128, 0, *s, alpha, (const __nv_bfloat16 *)A,
		          (const __nv_bfloat16 *)B, beta, (float *)D);
	else
		sk_launch(c, k_gemm_reference<float, float>, grid, 128, 0, *s, alpha, (const float *)A, (const float *)B,
		          beta, (float *)D);
	return sk_cuda_launched(c, "reference product");
}
