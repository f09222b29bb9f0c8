// Kernel launches on the context's stream, optionally as programmatic
// dependent launches (Hopper, by default; SK_CUDA_PDL=0 turns them off). A launch may begin while
// the kernel before it in the stream still runs: its blocks reach the SMs
// and stop in sk_pdl_wait() until that kernel has finished and its writes
// are visible. A decode step is about 1,000 small dependent kernels, each
// paying a launch's latency after the one before; this hides it. Every
// kernel launched through sk_launch calls sk_pdl_wait() before it touches
// global memory (a no-op when it was launched the ordinary way).
#ifndef SK_KERNELS_LAUNCH_CUH
#define SK_KERNELS_LAUNCH_CUH

#include <utility>

#include "kernels/context.cuh"

__device__ __forceinline__ void sk_pdl_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	asm volatile("griddepcontrol.wait;" ::: "memory");
	// the next kernel may now start launching: this one is past its own wait,
	// so at most two kernels hold SM resources at a time
	asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

template <typename... K, typename... A>
static inline void sk_launch(sk_cuda *c, void (*kernel)(K...), dim3 grid, dim3 block, size_t smem, A &&...args)
{
	if (!c->pdl) {
		kernel<<<grid, block, smem, c->stream>>>(std::forward<A>(args)...);
		return;
	}
	cudaLaunchConfig_t cfg = {};
	cfg.gridDim = grid;
	cfg.blockDim = block;
	cfg.dynamicSmemBytes = smem;
	cfg.stream = c->stream;
	cudaLaunchAttribute at[1];
	at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
	at[0].val.programmaticStreamSerializationAllowed = 1;
	cfg.attrs = at;
	cfg.numAttrs = 1;
	cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
	if (e != cudaSuccess)
		sk_cuda_fail(c, "kernel launch: %s", cudaGetErrorString(e));
}

#endif
