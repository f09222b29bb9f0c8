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
// Since run 14 the products take bf16 operands (SK_CUDA_ATTN_BF16=0: TF32) (q, k, v,
// dO converted once; P and dS written in bf16 by the softmax kernels beside
// the fp32 scores), as transformers' bf16 training computes them: twice
// TF32's tensor-core rate and half the bytes of the n² operands.
//
// Column-major terms (cuBLASLt's): a row-major [n][ld] array is the
// column-major (ld x n) matrix, so head h's q_i is column i of Q_h (hd x n,
// leading dimension nh·hd), and row-major S[i][j] is column-major Sᵀ.
#include "kernels/attention_softmax.cuh"
#include "kernels/launch.cuh"

#include <cuda_bf16.h>
#include <math.h>

#define MAX_N 2048 /* longer sequences: the tiled kernels (3 buffers of nh·n² floats) */

// y = bf16(x), count elements
__global__ static void k_attn_to_bf16(const float *__restrict__ x, int64_t count, __nv_bfloat16 *__restrict__ y)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e < count)
		y[e] = __float2bfloat16_rn(x[e]);
}

// One call's shape and its three buffers of nh·n² floats in the scratch:
// scores S, probabilities P, and dP (the backward's, dS in place).
// With bf16 operands (bf): q, k, v, dO in bf16 (qb, kb, vb, ob), P and dS
// in bf16 too (Pb, Db) after them.
struct gm {
	sk_cuda *c;
	int64_t n, nn, qd, kvd;
	int nh, nkv, group, hd;
	float *S, *P, *dP;
	int bf;
	__nv_bfloat16 *Pb, *Db, *qb, *kb, *vb, *ob;
};

// 1 when this path takes the shape (its buffers then set, and `extra`
// floats after them), else 0
static int setup(gm *g, sk_cuda *c, int64_t n, int nh, int nkv, int hd, int64_t extra)
{
	if (!c->gemm_attn || c->capturing || n < 16 || n > MAX_N || nkv < 1 || nh % nkv || hd % 4)
		return 0;
	const int64_t nn = n * n, qd = (int64_t)nh * hd, kvd = (int64_t)nkv * hd;
	const int bf = c->attn_bf16;
	size_t fb = ((3 * (size_t)nh * (size_t)nn + (size_t)extra) * sizeof(float) + 255) & ~(size_t)255;
	// bf16 P, dS, q, k, v, dO, each from a 256-byte boundary
	const int64_t counts[6] = { nh * nn, nh * nn, n * qd, n * kvd, n * kvd, n * qd };
	size_t at[6], bb = 0;
	for (int i = 0; i < 6; i++) {
		at[i] = fb + bb;
		bb += bf ? ((size_t)counts[i] * 2 + 255) & ~(size_t)255 : 0;
	}
	char *base = (char *)sk_cuda_scratch(c, fb + bb);
	if (!base)
		return 0;
	float *S = (float *)base;
	__nv_bfloat16 *h[6];
	for (int i = 0; i < 6; i++)
		h[i] = bf ? (__nv_bfloat16 *)(base + at[i]) : NULL;
	*g = gm{ c, n, nn, qd, kvd, nh, nkv, nh / nkv, hd, S, S + nh * nn, S + 2 * nh * nn, bf, h[0], h[1], h[2], h[3],
		   h[4], h[5] };
	return 1;
}

// bf16 copies of x (count elements) into y when the products take bf16; 0 or -1
static int to_bf16(const gm &g, const float *x, int64_t count, __nv_bfloat16 *y)
{
	if (!g.bf)
		return 0;
	k_attn_to_bf16<<<sk_blocks(count, 256), 256, 0, g.c->stream>>>(x, count, y);
	return sk_cuda_launched(g.c, "attention: operands to bf16");
}

// D (m x n) = op(A) op(B) + beta D over `batch` heads of a group
// (operands bf16 when g.bf, else fp32 on TF32 or fp32 cores; offsets in elements)
static int mm(const gm &g, int64_t m, int64_t n, int64_t k, int ta, const void *A, int64_t lda, int64_t sa, int tb,
              const void *B, int64_t ldb, int64_t sb, float *D, int64_t ldd, int64_t sd, int batch, float beta)
{
	sk_cuda_gemm_shape s = { m, n, k, lda, ldb, ldd, ta, tb, g.bf ? 1 : g.c->attn_tf32 ? 2 : 0, 0, batch, sa, sb, sd };
	return sk_cuda_matmul(g.c, s, 1.0f, A, B, beta, D);
}

// element off of an operand: its bf16 copy when the products take bf16
static inline const void *op(const gm &g, const float *f, const __nv_bfloat16 *b, int64_t off)
{
	return g.bf ? (const void *)(b + off) : (const void *)(f + off);
}

// X_h = A_g B_hᵀ as row-major [n][n] for every head (S from q and k, dP from
// dout and v): a group's heads in one batched product
static int head_products(const gm &g, const float *b, const __nv_bfloat16 *bh, const float *a,
                         const __nv_bfloat16 *ah, float *X)
{
	for (int kv = 0; kv < g.nkv; kv++) {
		int h0 = kv * g.group;
		if (mm(g, g.n, g.n, g.hd, 1, op(g, a, ah, kv * g.hd), g.kvd, 0, 0, op(g, b, bh, (int64_t)h0 * g.hd), g.qd,
		       g.hd, X + h0 * g.nn, g.n, g.nn, g.group, 0.0f))
			return -1;
	}
	return 0;
}

// S and P of every head: S_h = Q_h K_gᵀ, then the softmax (q and k in bf16 first when bf)
static int scores(const gm &g, const float *q, const float *k, int window, float scale, float softcap)
{
	if (to_bf16(g, q, g.n * g.qd, g.qb) || to_bf16(g, k, g.n * g.kvd, g.kb) || head_products(g, q, g.qb, k, g.kb, g.S))
		return -1;
	k_softmax_rows<<<dim3((unsigned)g.n, (unsigned)g.nh), SK_ATTN_ROW_T, 0, g.c->stream>>>(g.S, g.P, g.n, window, scale,
	                                                                                 softcap, g.Pb);
	return sk_cuda_launched(g.c, "attention softmax");
}

int sk_cuda_attention_gemm(sk_cuda *c, const float *q, int64_t n, const float *k, const float *v, int nh, int nkv,
                           int hd, int window, float scale, float softcap, float *out)
{
	gm g;
	if (!setup(&g, c, n, nh, nkv, hd, 0))
		return 0;
	if (scores(g, q, k, window, scale, softcap) || to_bf16(g, v, n * g.kvd, g.vb))
		return -1;
	// O_h = V_g P_hᵀ in column-major terms: out column i = Σ_j v_j P[i][j]
	for (int kv = 0; kv < nkv; kv++) {
		int h0 = kv * g.group;
		if (mm(g, hd, n, n, 0, op(g, v, g.vb, kv * hd), g.kvd, 0, 0, op(g, g.P, g.Pb, h0 * g.nn), n, g.nn,
		       out + (int64_t)h0 * hd, g.qd, hd, g.group, 0.0f))
			return -1;
	}
	return sk_cuda_launched(c, "attention (products)") != 0 ? -1 : 1;
}

// y[h][i][d] = x[i][h][d]: a head's rows made contiguous, so that the rows of
// a group's heads are one run of group·n columns (the grouped dK, dV products)
template <typename T>
__global__ static void k_heads_major(const float *__restrict__ x, int64_t n, int nh, int hd, T *__restrict__ y)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, qd = (int64_t)nh * hd;
	if (e >= n * qd)
		return;
	int64_t i = e / qd, r = e - i * qd, h = r / hd, d = r - h * hd;
	y[(h * n + i) * hd + d] = (T)x[e];
}

int sk_cuda_attention_bwd_gemm(sk_cuda *c, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                               int hd, int window, float scale, float softcap, const float *dout, float *dq, float *dk,
                               float *dv)
{
	gm g;
	// grouped: q and dout head-major after the three score buffers (fp32 products; with bf16 ones
	// over their bf16 copies)
	const int grouped = c->attn_grouped && nh / (nkv > 0 ? nkv : 1) > 1;
	if (!setup(&g, c, n, nh, nkv, hd, grouped && !c->attn_bf16 ? 2 * n * (int64_t)nh * hd : 0))
		return 0;
	// S, P, and dP_h = dO_h V_gᵀ (row-major [n][n], as S)
	if (scores(g, q, k, window, scale, softcap) || to_bf16(g, v, n * g.kvd, g.vb) ||
	    to_bf16(g, dout, n * g.qd, g.ob) || head_products(g, dout, g.ob, v, g.vb, g.dP))
		return -1;
	k_softmax_bwd_rows<<<dim3((unsigned)n, (unsigned)nh), SK_ATTN_ROW_T, 0, c->stream>>>(g.S, g.P, g.dP, n, scale, softcap,
	                                                                              g.Db);
	if (sk_cuda_launched(c, "attention softmax backward"))
		return -1;
	// head-major q and dO (the grouped products): fp32 after the score buffers, or over the
	// row-major bf16 copies, which the grouped products no longer read
	float *qh = g.dP + nh * g.nn, *oh = qh + n * g.qd;
	__nv_bfloat16 *qhb = g.qb, *ohb = g.ob;
	if (grouped && g.bf) {
		// the bf16 copies are read by nothing else from here: convert again, head-major, in place of them
		k_heads_major<__nv_bfloat16><<<sk_blocks(n * g.qd, 256), 256, 0, c->stream>>>(q, n, nh, hd, qhb);
		k_heads_major<__nv_bfloat16><<<sk_blocks(n * g.qd, 256), 256, 0, c->stream>>>(dout, n, nh, hd, ohb);
	} else if (grouped) {
		k_heads_major<float><<<sk_blocks(n * g.qd, 256), 256, 0, c->stream>>>(q, n, nh, hd, qh);
		k_heads_major<float><<<sk_blocks(n * g.qd, 256), 256, 0, c->stream>>>(dout, n, nh, hd, oh);
	}
	if (grouped && sk_cuda_launched(c, "attention: q and dO head-major"))
		return -1;
	const float *dS = g.dP; // fp32 dS, in place of dP (bf: g.Db)
	for (int kv = 0; kv < nkv; kv++) {
		int h0 = kv * g.group;
		// dq_i = Σ_j dS[i][j] k_j (overwritten)
		if (mm(g, hd, n, n, 0, op(g, k, g.kb, kv * hd), g.kvd, 0, 0, op(g, dS, g.Db, h0 * g.nn), n, g.nn,
		       dq + (int64_t)h0 * hd, g.qd, hd, g.group, 0.0f))
			return -1;
		if (grouped) {
			// dk_j += Σ over the group's (h, i) of dS_h[i][j] q_h,i, dv_j likewise from P and dO: one
			// product each, the sum over heads and rows one reduction of group·n
			int64_t gn = (int64_t)g.group * n;
			if (mm(g, hd, n, gn, 0, op(g, qh, qhb, h0 * n * hd), hd, 0, 1, op(g, dS, g.Db, h0 * g.nn), n, 0,
			       dk + kv * hd, g.kvd, 0, 1, 1.0f) ||
			    mm(g, hd, n, gn, 0, op(g, oh, ohb, h0 * n * hd), hd, 0, 1, op(g, g.P, g.Pb, h0 * g.nn), n, 0,
			       dv + kv * hd, g.kvd, 0, 1, 1.0f))
				return -1;
			continue;
		}
		// dk_j += Σ_h Σ_i dS_h[i][j] q_i and dv_j += Σ_h Σ_i P_h[i][j] dO_i, head by head (one output)
		for (int h = h0; h < h0 + g.group; h++)
			if (mm(g, hd, n, n, 0, op(g, q, g.qb, (int64_t)h * hd), g.qd, 0, 1, op(g, dS, g.Db, h * g.nn), n, 0,
			       dk + kv * hd, g.kvd, 0, 1, 1.0f) ||
			    mm(g, hd, n, n, 0, op(g, dout, g.ob, (int64_t)h * hd), g.qd, 0, 1, op(g, g.P, g.Pb, h * g.nn), n, 0,
			       dv + kv * hd, g.kvd, 0, 1, 1.0f))
				return -1;
	}
	return 1;
}
