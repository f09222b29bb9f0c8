// Training's LM head over the whole vocabulary in one call a pass (the
// loss's loop over chunks otherwise, engine/train/loss.c): hn in bf16 once
// a pass instead of once a chunk, each chunk's logits one bf16 product, its
// online logsumexp in one read of the chunk (the chunked op reads it twice
// and writes the softcapped values back, which nothing reads), and in the
// gradient pass (softmax − onehot) written straight into the bf16 rows the
// dhn product reads. The math is float where the chunked ops' is double
// (those stay for SK_CUDA_EXACT=1, the parity checks against the CPU):
// well inside the bf16 products' own rounding.
#include "kernels/linear_internal.cuh"

#include <math.h>

#define HEAD_T 256

// Block max and the block's Σ s_t · exp(m_t − max) in double; every thread
// gets both.
__device__ __forceinline__ void block_lse(float m, float s, float *shm, double *shs, float *M, double *S)
{
	const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
	float wm = sk_warp_max(m);
	if (lane == 0)
		shm[wid] = wm;
	__syncthreads();
	float bm = lane < nw ? shm[lane] : -INFINITY;
	bm = sk_warp_max(bm);
	double v = m == -INFINITY ? 0.0 : (double)s * exp((double)m - (double)bm);
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	if (lane == 0)
		shs[wid] = v;
	__syncthreads();
	double t = lane < nw ? shs[lane] : 0.0;
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		t += __shfl_xor_sync(0xffffffffu, t, o);
	*M = bm;
	*S = t;
}

// One block a row of the chunk z [n][cw] (columns col0...): each thread's
// running max and Σ exp(ℓ − max) over its columns, four at a time, then
// the row's state (mx, se) updated as xent_chunk does; lab[r] = ℓ of the
// row's label when it falls in the chunk. cw % 4 == 0, rows 16-byte aligned.
__global__ static void __launch_bounds__(HEAD_T) k_head_lse(const float *__restrict__ z, int64_t cw, int64_t col0,
                                                           float cap, const int32_t *__restrict__ labels, float *mx,
                                                           float *se, float *lab)
{
	sk_pdl_wait();
	__shared__ float shm[HEAD_T / 32];
	__shared__ double shs[HEAD_T / 32];
	const int64_t r = blockIdx.x, lb = (int64_t)labels[r] - col0;
	const float *zr = z + r * cw;
	const float mx_old = mx[r], se_old = se[r]; // read before thread 0 writes them
	float m = -INFINITY, s = 0.0f;
	for (int64_t i = (int64_t)threadIdx.x * 4; i < cw; i += (int64_t)blockDim.x * 4) {
		const float4 q = *(const float4 *)(zr + i);
		const float v[4] = { q.x, q.y, q.z, q.w };
#pragma unroll
		for (int k = 0; k < 4; k++) {
			const float l = cap > 0.0f ? tanhf(v[k] / cap) * cap : v[k];
			if (i + k == lb)
				lab[r] = l;
			if (l > m) {
				s = s * expf(m - l) + 1.0f;
				m = l;
			} else {
				s += expf(l - m);
			}
		}
	}
	float M;
	double S;
	block_lse(m, s, shm, shs, &M, &S);
	if (threadIdx.x == 0) {
		const float nm = M > mx_old ? M : mx_old;
		const double old = mx_old == -INFINITY ? 0.0 : (double)se_old * exp((double)mx_old - nm);
		se[r] = (float)(old + (M == -INFINITY ? 0.0 : S * exp((double)M - nm)));
		mx[r] = nm;
	}
}

// dz[r][i] = bf16((exp(ℓ − lse_r) − [i = label_r]) · coef_r · (1 − (ℓ/cap)²)),
// ℓ the softcapped logit; four columns a thread, rows on the grid's y.
__global__ static void k_head_grad(const float *__restrict__ z, int64_t n, int64_t cw, int64_t col0, float cap,
                                   const int32_t *__restrict__ labels, const float *__restrict__ lse,
                                   const float *__restrict__ coef, __nv_bfloat16 *__restrict__ dz)
{
	sk_pdl_wait();
	const int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
	if (i >= cw)
		return;
	for (int64_t r = blockIdx.y; r < n; r += gridDim.y) {
		const int64_t lb = (int64_t)labels[r] - col0;
		const float ls = lse[r], cf = coef[r];
		const float4 q = *(const float4 *)(z + r * cw + i);
		const float v[4] = { q.x, q.y, q.z, q.w };
		__align__(8) __nv_bfloat16 h[4];
#pragma unroll
		for (int k = 0; k < 4; k++) {
			const float l = cap > 0.0f ? tanhf(v[k] / cap) * cap : v[k];
			float d = (expf(l - ls) - (i + k == lb ? 1.0f : 0.0f)) * cf;
			if (cap > 0.0f)
				d *= 1.0f - (l / cap) * (l / cap);
			h[k] = __float2bfloat16_rn(d);
		}
		*(uint2 *)(dz + r * cw + i) = *(const uint2 *)h;
	}
}

// Whether the two passes take this head: bf16 rows of an aligned table,
// widths the bf16 products and the four-column kernels align
static int head_takes(const sk_cuda *c, const sk_cuda_weight *E, int64_t V, int64_t n, int64_t cw)
{
	return c->head_passes && E && E->kind == SK_CUDA_W_BF16 && ((uintptr_t)E->bf16 & 15) == 0 && E->rows >= V &&
	       E->cols % 8 == 0 && V % 8 == 0 && cw % 8 == 0 && cw > 0 && n > 0;
}

// zᵀ (cwi x n) = (rows c0.. of E as H x cwi)ᵀ · (hn16 as H x n): the chunk's raw logits
static int chunk_logits(sk_cuda *c, const sk_cuda_weight *E, int64_t c0, int64_t cwi, const __nv_bfloat16 *hn16,
                        int64_t n, float *z)
{
	const int64_t H = E->cols;
	sk_cuda_gemm_shape s = { cwi, n, H, H, H, cwi, 1, 0, 1, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, s, 1.0f, E->bf16 + c0 * H, hn16, 0.0f, z);
}

// hn [n][H] in bf16 at the scratch's start, and extra bytes after it (*rest):
// 1, 0 without room (the chunk loop, which needs less, is left to run), -1
static int hn_to_bf16(sk_cuda *c, const float *hn, int64_t n, int64_t H, size_t extra, __nv_bfloat16 **hn16,
                      char **rest)
{
	const size_t hb = ((size_t)(n * H) * 2 + 255) & ~(size_t)255;
	char *s = (char *)sk_cuda_scratch(c, hb + extra);
	if (!s) {
		sk_cuda_check(c);
		return 0;
	}
	*hn16 = (__nv_bfloat16 *)s;
	*rest = s + hb;
	sk_cuda_to_bf16(c, hn, n * H, *hn16);
	return sk_cuda_launched(c, "head: hn to bf16") != 0 ? -1 : 1;
}

extern "C" int sk_cuda_head_lse(sk_cuda *c, const sk_cuda_weight *E, int64_t V, const float *hn, int64_t n,
                                int64_t cw, float cap, const int32_t *labels, float *z, float *mx, float *se,
                                float *lab)
{
	if (!head_takes(c, E, V, n, cw) || ((uintptr_t)z & 15) != 0)
		return 0;
	__nv_bfloat16 *hn16;
	char *rest;
	int r = hn_to_bf16(c, hn, n, E->cols, 0, &hn16, &rest);
	if (r != 1)
		return r;
	for (int64_t c0 = 0; c0 < V; c0 += cw) {
		const int64_t cwi = V - c0 < cw ? V - c0 : cw;
		if (chunk_logits(c, E, c0, cwi, hn16, n, z) != 0)
			return -1;
		sk_launch(c, k_head_lse, (unsigned)n, HEAD_T, 0, (const float *)z, cwi, c0, cap, labels, mx, se, lab);
		if (sk_cuda_launched(c, "head: chunk logsumexp") != 0)
			return -1;
	}
	return 1;
}

extern "C" int sk_cuda_head_grad(sk_cuda *c, const sk_cuda_weight *E, int64_t V, const float *hn, int64_t n,
                                 int64_t cw, float cap, const int32_t *labels, const float *lse, const float *coef,
                                 float *z, float *dhn)
{
	if (!head_takes(c, E, V, n, cw) || ((uintptr_t)z & 15) != 0 || ((uintptr_t)dhn & 15) != 0)
		return 0;
	const int64_t H = E->cols;
	__nv_bfloat16 *hn16;
	char *rest;
	int r = hn_to_bf16(c, hn, n, H, (size_t)(n * cw) * 2, &hn16, &rest);
	if (r != 1)
		return r;
	__nv_bfloat16 *dz = (__nv_bfloat16 *)rest;
	for (int64_t c0 = 0; c0 < V; c0 += cw) {
		const int64_t cwi = V - c0 < cw ? V - c0 : cw;
		if (chunk_logits(c, E, c0, cwi, hn16, n, z) != 0)
			return -1;
		const int64_t th = cwi / 4;
		const unsigned block = th >= HEAD_T ? HEAD_T : (unsigned)((th + 31) / 32 * 32);
		dim3 grid((unsigned)((th + block - 1) / block), (unsigned)(n < 65535 ? n : 65535));
		sk_launch(c, k_head_grad, grid, block, 0, (const float *)z, n, cwi, c0, cap, labels, lse, coef, dz);
		if (sk_cuda_launched(c, "head: chunk gradient to bf16") != 0)
			return -1;
		// dhnᵀ (H x n) (+)= (E's rows as H x cwi) · (dz as cwi x n): the first chunk overwrites
		sk_cuda_gemm_shape g = { H, n, cwi, H, cwi, H, 0, 0, 1, 0, 1, 0, 0, 0 };
		if (sk_cuda_matmul(c, g, 1.0f, E->bf16 + c0 * H, dz, c0 > 0 ? 1.0f : 0.0f, dhn) != 0)
			return -1;
	}
	return 1;
}
