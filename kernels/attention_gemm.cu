// Attention of one training sequence (no cache: n query rows over keys at
// the same positions) through matrix products, forward and backward: the
// scores of every head are materialised (n² floats a head, 1 MB at n = 512),
// QKᵀ, PV and the backward's dP = dO Vᵀ, dQ = dS K, dK = dSᵀ Q, dV = Pᵀ dO
// go to cuBLASLt in fp32 (the SIMT kernels, tens of TFLOP/s, where the
// tiled kernels ran at about 2), and the masked softmax and its backward
// are row kernels. Causal and sliding-window masks, logit softcap and GQA
// as the other attention kernels; the products compute the masked half
// too, which costs less than the tiles' bookkeeping at these lengths.
// On by default since run 6 (docs/perf.md); SK_CUDA_ATTN_GEMM=0 leaves it out.
//
// Column-major terms (cuBLASLt's): a row-major [n][ld] array is the
// column-major (ld x n) matrix, so head h's q_i is column i of Q_h (hd x n,
// leading dimension nh·hd), and row-major S[i][j] is column-major Sᵀ.
#include "kernels/launch.cuh"

#include <math.h>

#define ROW_T 256
#define MAX_N 2048 /* longer sequences: the tiled kernels (3 buffers of nh·n² floats) */

// one block a row (i of head blockIdx.y): P = softmax of the masked, scaled
// and softcapped scores; masked entries 0
__global__ static void k_softmax_rows(const float *__restrict__ S, float *__restrict__ P, int64_t n, int window,
                                      float scale, float softcap)
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
	for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
		P[row + j] = j >= lo && j <= i ? P[row + j] * inv : 0.0f;
}

// dS = dL/dS (raw scores) in place of dP: P (dP - Σ_j P dP) · scale, times
// the softcap's derivative 1 - tanh² where there is one
__global__ static void k_softmax_bwd_rows(const float *__restrict__ S, const float *__restrict__ P,
                                          float *__restrict__ dP, int64_t n, float scale, float softcap)
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
		dP[row + j] = g;
	}
}

// One call's shape and its three buffers of nh·n² floats in the scratch:
// scores S, probabilities P, and dP (the backward's, dS in place).
struct gm {
	sk_cuda *c;
	int64_t n, nn, qd, kvd;
	int nh, nkv, group, hd;
	float *S, *P, *dP;
};

// 1 when this path takes the shape (its buffers then set, and `extra`
// floats after them), else 0
static int setup(gm *g, sk_cuda *c, int64_t n, int nh, int nkv, int hd, int64_t extra)
{
	if (!c->gemm_attn || c->capturing || n < 16 || n > MAX_N || nkv < 1 || nh % nkv || hd % 4)
		return 0;
	const int64_t nn = n * n;
	float *S = (float *)sk_cuda_scratch(c, (3 * (size_t)nh * (size_t)nn + (size_t)extra) * sizeof(float));
	if (!S)
		return 0;
	*g = gm{ c, n, nn, (int64_t)nh * hd, (int64_t)nkv * hd, nh, nkv, nh / nkv, hd, S, S + nh * nn,
		   S + 2 * nh * nn };
	return 1;
}

// D (m x n) = op(A) op(B) + beta D over `batch` heads of a group
static int mm(const gm &g, int64_t m, int64_t n, int64_t k, int ta, const float *A, int64_t lda, int64_t sa, int tb,
              const float *B, int64_t ldb, int64_t sb, float *D, int64_t ldd, int64_t sd, int batch, float beta)
{
	sk_cuda_gemm_shape s = { m, n, k, lda, ldb, ldd, ta, tb, g.c->attn_tf32 ? 2 : 0, 0, batch, sa, sb, sd };
	return sk_cuda_matmul(g.c, s, 1.0f, A, B, beta, D);
}

// X_h = A_g B_hᵀ as row-major [n][n] for every head (S from q and k, dP from
// dout and v): a group's heads in one batched product
static int head_products(const gm &g, const float *b, const float *a, float *X)
{
	for (int kv = 0; kv < g.nkv; kv++) {
		int h0 = kv * g.group;
		if (mm(g, g.n, g.n, g.hd, 1, a + kv * g.hd, g.kvd, 0, 0, b + (int64_t)h0 * g.hd, g.qd, g.hd, X + h0 * g.nn,
		       g.n, g.nn, g.group, 0.0f))
			return -1;
	}
	return 0;
}

// S and P of every head: S_h = Q_h K_gᵀ, then the softmax
static int scores(const gm &g, const float *q, const float *k, int window, float scale, float softcap)
{
	if (head_products(g, q, k, g.S))
		return -1;
	k_softmax_rows<<<dim3((unsigned)g.n, (unsigned)g.nh), ROW_T, 0, g.c->stream>>>(g.S, g.P, g.n, window, scale,
	                                                                                 softcap);
	return sk_cuda_launched(g.c, "attention softmax");
}

int sk_cuda_attention_gemm(sk_cuda *c, const float *q, int64_t n, const float *k, const float *v, int nh, int nkv,
                           int hd, int window, float scale, float softcap, float *out)
{
	gm g;
	if (!setup(&g, c, n, nh, nkv, hd, 0))
		return 0;
	if (scores(g, q, k, window, scale, softcap))
		return -1;
	// O_h = V_g P_hᵀ in column-major terms: out column i = Σ_j v_j P[i][j]
	for (int kv = 0; kv < nkv; kv++) {
		int h0 = kv * g.group;
		if (mm(g, hd, n, n, 0, v + kv * hd, g.kvd, 0, 0, g.P + h0 * g.nn, n, g.nn, out + (int64_t)h0 * hd, g.qd, hd,
		       g.group, 0.0f))
			return -1;
	}
	return sk_cuda_launched(c, "attention (products)") != 0 ? -1 : 1;
}

// y[h][i][d] = x[i][h][d]: a head's rows made contiguous, so that the rows of
// a group's heads are one run of group·n columns (the grouped dK, dV products)
__global__ static void k_heads_major(const float *__restrict__ x, int64_t n, int nh, int hd, float *__restrict__ y)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, qd = (int64_t)nh * hd;
	if (e >= n * qd)
		return;
	int64_t i = e / qd, r = e - i * qd, h = r / hd, d = r - h * hd;
	y[(h * n + i) * hd + d] = x[e];
}

int sk_cuda_attention_bwd_gemm(sk_cuda *c, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                               int hd, int window, float scale, float softcap, const float *dout, float *dq, float *dk,
                               float *dv)
{
	gm g;
	// grouped: q and dout head-major after the three score buffers
	const int grouped = c->attn_grouped && nh / (nkv > 0 ? nkv : 1) > 1;
	if (!setup(&g, c, n, nh, nkv, hd, grouped ? 2 * n * (int64_t)nh * hd : 0))
		return 0;
	// S, P, and dP_h = dO_h V_gᵀ (row-major [n][n], as S)
	if (scores(g, q, k, window, scale, softcap) || head_products(g, dout, v, g.dP))
		return -1;
	k_softmax_bwd_rows<<<dim3((unsigned)n, (unsigned)nh), ROW_T, 0, c->stream>>>(g.S, g.P, g.dP, n, scale, softcap);
	if (sk_cuda_launched(c, "attention softmax backward"))
		return -1;
	float *qh = g.dP + nh * g.nn, *oh = qh + n * g.qd;
	if (grouped) {
		k_heads_major<<<sk_blocks(n * g.qd, 256), 256, 0, c->stream>>>(q, n, nh, hd, qh);
		k_heads_major<<<sk_blocks(n * g.qd, 256), 256, 0, c->stream>>>(dout, n, nh, hd, oh);
		if (sk_cuda_launched(c, "attention: q and dO head-major"))
			return -1;
	}
	for (int kv = 0; kv < nkv; kv++) {
		int h0 = kv * g.group;
		// dq_i = Σ_j dS[i][j] k_j (overwritten)
		if (mm(g, hd, n, n, 0, k + kv * hd, g.kvd, 0, 0, g.dP + h0 * g.nn, n, g.nn, dq + (int64_t)h0 * hd, g.qd, hd,
		       g.group, 0.0f))
			return -1;
		if (grouped) {
			// dk_j += Σ over the group's (h, i) of dS_h[i][j] q_h,i, dv_j likewise from P and dO: one
			// product each, the sum over heads and rows one reduction of group·n
			int64_t gn = (int64_t)g.group * n;
			if (mm(g, hd, n, gn, 0, qh + h0 * n * hd, hd, 0, 1, g.dP + h0 * g.nn, n, 0, dk + kv * hd, g.kvd, 0, 1,
			       1.0f) ||
			    mm(g, hd, n, gn, 0, oh + h0 * n * hd, hd, 0, 1, g.P + h0 * g.nn, n, 0, dv + kv * hd, g.kvd, 0, 1,
			       1.0f))
				return -1;
			continue;
		}
		// dk_j += Σ_h Σ_i dS_h[i][j] q_i and dv_j += Σ_h Σ_i P_h[i][j] dO_i, head by head (one output)
		for (int h = h0; h < h0 + g.group; h++)
			if (mm(g, hd, n, n, 0, q + (int64_t)h * hd, g.qd, 0, 1, g.dP + h * g.nn, n, 0, dk + kv * hd, g.kvd, 0,
			       1, 1.0f) ||
			    mm(g, hd, n, n, 0, dout + (int64_t)h * hd, g.qd, 0, 1, g.P + h * g.nn, n, 0, dv + kv * hd, g.kvd, 0,
			       1, 1.0f))
				return -1;
	}
	return 1;
}
