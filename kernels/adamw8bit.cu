// bitsandbytes' AdamW8bit on the device, for the adapter being trained:
// the update of engine/train/optim_adamw8bit.c (the CPU reference, which
// reproduces bitsandbytes' CUDA kernel) operation for operation: the same
// fused multiply-adds and no others (every other product and sum is an
// explicitly rounded intrinsic, so nvcc cannot contract it), IEEE division
// and square root. States, block maxima and parameters come out equal to
// the CPU's to the bit, so a checkpoint resumes on either side.
//
// Every tensor of the adapter in one launch: one block of 256 threads per
// 256-element state block (8-bit states) or per 256 elements (the fp32
// states of tensors under the 8-bit threshold); a block finds its tensor
// by binary search over the tensors' first block indices. The gradient
// is read once, scaled by the clipping coefficient, and zeroed for the
// next step.
#include "kernels/launch.cuh"

#define OB 256 /* elements a state block (SK_OPTIM_BLOCK) */

// The index of the nearest entry of the sorted 256-entry map: seven halving
// steps, then only the neighbour on y's side (sk_blockwise8_code).
__device__ __forceinline__ uint8_t code_of(const float *code, float y)
{
	int p = 127, lo_i = 0, hi_i = 255;
	float lo = -1.0f, hi = 1.0f;
	for (int step = 64; step > 0; step /= 2) {
		if (y > code[p]) {
			lo_i = p;
			lo = code[p];
			p += step;
		} else {
			hi_i = p;
			hi = code[p];
			p -= step;
		}
	}
	float v = code[p];
	if (hi_i == 255)
		hi = code[255];
	if (lo_i == 0)
		lo = code[0];
	if (y > v)
		return (uint8_t)(y > __fmul_rn(__fadd_rn(hi, v), 0.5f) ? hi_i : p);
	return (uint8_t)(y < __fmul_rn(__fadd_rn(lo, v), 0.5f) ? lo_i : p);
}

__device__ __forceinline__ int tensor_of(const sk_cuda_optim_tensor *t, int nt, int64_t b)
{
	int lo = 0, hi = nt - 1;
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;
		if (t[mid].blk0 <= b)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

__device__ __forceinline__ float block_max(float v, float *sh)
{
	v = sk_warp_max(v);
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	__syncthreads();
	if (lane == 0)
		sh[w] = v;
	__syncthreads();
	float t = lane < OB / 32 ? sh[lane] : -3.402823466e38f;
	return sk_warp_max(t);
}

// apply 0: only zero the gradients (a step skipped for a non-finite norm)
__global__ static void __launch_bounds__(OB) k_adamw8bit(const sk_cuda_optim_tensor *__restrict__ T, int nt,
                                                         const float *__restrict__ maps, sk_cuda_adam s, float coef,
                                                         int apply)
{
	sk_pdl_wait();
	__shared__ float q1[256], q2[256], sh[32];
	const int i = threadIdx.x;
	q1[i] = maps[i];
	q2[i] = maps[256 + i];
	const sk_cuda_optim_tensor t = T[tensor_of(T, nt, blockIdx.x)];
	const int64_t blk = blockIdx.x - t.blk0, e = blk * OB + i;
	const int in = e < t.n;
	float g = in ? __fmul_rn(t.g[e], coef) : 0.0f;
	if (in)
		t.g[e] = 0.0f;
	if (!apply)
		return;
	const int fin = in && isfinite(g);
	if (!t.eight_bit) { // bitsandbytes' 32-bit kernel (sk_adamw8bit_update_fp32)
		if (!in)
			return;
		if (!fin) {
			t.m[e] = 0.0f;
			t.v[e] = 0.0f;
			return;
		}
		float gv = __fmul_rn(s.gnorm_scale, g);
		float m = fmaf(t.m[e], s.beta1, __fmul_rn(s.ob1, gv));
		float v = fmaf(t.v[e], s.beta2, __fmul_rn(s.ob2, __fmul_rn(gv, gv)));
		t.m[e] = m;
		t.v[e] = v;
		float den = fmaf(s.eps, s.c2, sqrtf(v));
		float x = fmaf(s.step_size, __fmul_rn(m, 1.0f / den), t.p[e]);
		if (s.weight_decay > 0.0f)
			x = __fmul_rn(x, s.decay);
		t.p[e] = x;
		return;
	}
	__syncthreads(); // the maps
	const float am1 = t.absmax1[blk], am2 = t.absmax2[blk];
	float m = 0.0f, v = 0.0f, pad = 0.0f;
	if (fin) {
		float gv = __fmul_rn(g, s.gnorm_scale);
		v = fmaf(__fmul_rn(s.ob2, gv), gv, __fmul_rn(__fmul_rn(q2[t.state2[e]], am2), s.beta2));
		m = fmaf(s.ob1, gv, __fmul_rn(__fmul_rn(q1[t.state1[e]], am1), s.beta1));
	} else if (!in) { // a partial block's padding: gradient 0, codes 128 and 0, in the maximum of m
		pad = fabsf(__fmul_rn(__fmul_rn(q1[128], am1), s.beta1));
	}
	const float mx1 = block_max(in ? fabsf(m) : pad, sh);
	const float mx2 = block_max(in ? fabsf(v) : 0.0f, sh);
	if (i == 0) {
		t.absmax1[blk] = mx1;
		t.absmax2[blk] = mx2;
	}
	if (!in)
		return;
	const float inv1 = 1.0f / mx1, inv2 = 1.0f / mx2;
	if (fin) {
		float den = fmaf(s.c2, s.eps, sqrtf(v));
		float x = fmaf(s.step_size, __fmul_rn(m, 1.0f / den), t.p[e]);
		if (s.weight_decay > 0.0f)
			x = __fmul_rn(x, s.decay);
		t.p[e] = x;
	}
	uint8_t c1 = code_of(q1, __fmul_rn(m, inv1));
	uint8_t c2 = code_of(q2, __fmul_rn(v, inv2));
	if (!signbit(q1[c1]) != !signbit(m)) // keep the sign of m
		c1 = (uint8_t)(m > 0.0f ? c1 + 1 : c1 - 1);
	t.state1[e] = c1;
	t.state2[e] = c2;
}

// Σ g² of each tensor (times coef² is not needed: clipping scales after),
// in double, one atomic add a block.
__global__ static void __launch_bounds__(OB) k_grad_sq(const sk_cuda_optim_tensor *__restrict__ T, int nt,
                                                       double *sums)
{
	sk_pdl_wait();
	__shared__ double sh[OB / 32];
	const sk_cuda_optim_tensor *t = &T[tensor_of(T, nt, blockIdx.x)];
	const int64_t e = (blockIdx.x - t->blk0) * OB + threadIdx.x;
	double v = 0.0;
	if (e < t->n) {
		double g = (double)t->g[e];
		v = g * g;
	}
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	if ((threadIdx.x & 31) == 0)
		sh[threadIdx.x >> 5] = v;
	__syncthreads();
	if (threadIdx.x == 0) {
		double s = 0.0;
		for (int w = 0; w < OB / 32; w++)
			s += sh[w];
		atomicAdd(&sums[t - T], s);
	}
}

extern "C" int sk_cuda_grad_sq(sk_cuda *c, const sk_cuda_optim_tensor *T, int nt, int64_t blocks, double *sums)
{
	if (cudaMemsetAsync(sums, 0, (size_t)nt * sizeof(double), c->stream) != cudaSuccess) {
		sk_cuda_fail(c, "optimizer: could not clear the gradient sums");
		return sk_cuda_check(c);
	}
	if (blocks > 0)
		sk_launch(c, k_grad_sq, (unsigned)blocks, OB, 0, T, nt, sums);
	sk_cuda_launched(c, "gradient norm");
	return sk_cuda_check(c);
}

extern "C" int sk_cuda_adamw8bit(sk_cuda *c, const sk_cuda_optim_tensor *T, int nt, int64_t blocks, const float *maps,
                                 const sk_cuda_adam *s, float coef, int apply)
{
	sk_cuda_wcache_lora_written(c, NULL, 0); // the optimizer writes the pairs: every fold stale
	if (blocks > 0)
		sk_launch(c, k_adamw8bit, (unsigned)blocks, OB, 0, T, nt, maps, *s, coef, apply);
	sk_cuda_launched(c, "AdamW8bit");
	return sk_cuda_check(c);
}
