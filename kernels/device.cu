// Device discovery. The binary must run on machines without a GPU or driver:
// every failure here becomes "0 devices" plus a reason, never an abort.
#include "kernels/kernels.h"

#include "kernels/cublaslt_loader.h"

#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int sk_cuda_built(void) { return 1; }

extern "C" int sk_cuda_probe(char *reason, size_t cap)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		snprintf(reason, cap, "%s", cudaGetErrorString(e));
		return 0;
	}
	if (n == 0) {
		snprintf(reason, cap, "no CUDA device found");
		return 0;
	}
	// the kernels are built for sm_90a with PTX from compute capability 8.0 (bf16 arithmetic)
	cudaDeviceProp p;
	if (cudaGetDeviceProperties(&p, 0) == cudaSuccess && p.major < 8) {
		snprintf(reason, cap, "%s has compute capability %d.%d; sokhan's kernels need 8.0 or newer", p.name,
		         p.major, p.minor);
		return 0;
	}
	// cuBLASLt is what the linear layers will use: make sure it starts.
	if (sk_lt_load(reason, cap) != 0)
		return 0;
	cublasLtHandle_t lt;
	if (sk_lt.cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
		snprintf(reason, cap, "cuBLASLt could not be initialised");
		return 0;
	}
	sk_lt.cublasLtDestroy(lt);
	return n;
}

extern "C" int sk_cuda_describe(int dev, char *buf, size_t cap)
{
	cudaDeviceProp p;
	if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
		snprintf(buf, cap, "device %d: unavailable", dev);
		return -1;
	}
	int ver = sk_lt_load(NULL, 0) == 0 ? (int)sk_lt.cublasLtGetVersion() : 0;
	snprintf(buf, cap, "%s, %.1f GiB, compute capability %d.%d, %d SMs, cuBLAS %d", p.name,
	         (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p.major, p.minor,
	         p.multiProcessorCount, ver);
	return 0;
}
