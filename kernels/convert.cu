// Element-type conversions on the device.
#include "kernels/kernels.h"

#include <cuda_runtime.h>
#include <stdio.h>

// Eight bf16 values (16 bytes) per thread where the buffer allows it: wide
// loads keep the conversion at memory speed.
__global__ static void sk_bf16_to_f32_kernel(const uint16_t *__restrict__ src, float *__restrict__ dst, size_t n)
{
	size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
	if (i + 8 <= n && ((((uintptr_t)(src + i)) & 15) == 0)) {
		uint4 v = *reinterpret_cast<const uint4 *>(src + i);
		const uint32_t w[4] = { v.x, v.y, v.z, v.w };
		float out[8];
#pragma unroll
		for (int k = 0; k < 4; k++) {
			out[2 * k] = __uint_as_float(w[k] << 16);
			out[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
		}
#pragma unroll
		for (int k = 0; k < 8; k++)
			dst[i + k] = out[k];
	} else {
		for (size_t j = i; j < n && j < i + 8; j++)
			dst[j] = __uint_as_float((uint32_t)src[j] << 16);
	}
}

extern "C" int sk_cuda_bf16_to_f32(const uint16_t *d_src, float *d_dst, size_t n, void *stream,
                                   char *err, size_t cap)
{
	if (n == 0)
		return 0;
	const unsigned threads = 256;
	size_t blocks = (n + (size_t)threads * 8 - 1) / ((size_t)threads * 8);
	sk_bf16_to_f32_kernel<<<(unsigned)blocks, threads, 0, (cudaStream_t)stream>>>(d_src, d_dst, n);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess) {
		snprintf(err, cap, "bf16->f32 kernel: %s", cudaGetErrorString(e));
		return -1;
	}
	return 0;
}

extern "C" int sk_cuda_bf16_to_f32_host(const uint16_t *src, float *dst, size_t n, char *err, size_t cap)
{
	uint16_t *d_src = NULL;
	float *d_dst = NULL;
	int rc = -1;
	cudaError_t e;
	if ((e = cudaMalloc(&d_src, n * sizeof *src)) != cudaSuccess ||
	    (e = cudaMalloc(&d_dst, n * sizeof *dst)) != cudaSuccess ||
	    (e = cudaMemcpy(d_src, src, n * sizeof *src, cudaMemcpyHostToDevice)) != cudaSuccess) {
		snprintf(err, cap, "%s", cudaGetErrorString(e));
		goto out;
	}
	if (sk_cuda_bf16_to_f32(d_src, d_dst, n, NULL, err, cap) != 0)
		goto out;
	if ((e = cudaMemcpy(dst, d_dst, n * sizeof *dst, cudaMemcpyDeviceToHost)) != cudaSuccess) {
		snprintf(err, cap, "%s", cudaGetErrorString(e));
		goto out;
	}
	rc = 0;
out:
	cudaFree(d_src);
	cudaFree(d_dst);
	return rc;
}
