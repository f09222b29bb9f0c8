// Attention backward for one training sequence without a cache (n query
// rows at positions 0..n-1 over keys and values at the same positions):
// GQA, sliding window, logit softcap. Probabilities are recomputed, never
// stored, in the CPU reference's two passes (engine/backend/
// backend_cpu_backward_attn.c), so no two blocks write the same output:
//   rows: a block per (query row, head) gives dq, the row's logsumexp and
//         D = Σ P·dP (into ws);
//   keys: a block per (KV head, key row) adds that key's dk and dv over
//         every query row and head of its group that sees it.
// Inside a block each warp takes every WARPS-th key (or query), its lanes
// splitting the head dimension; the warps' partial vectors are summed in
// shared memory in a fixed order.
#include "kernels/context.cuh"

#include <math.h>

#define WARPS 4
#define MAX_DPL 16 /* head_dim up to 512: 16 values a lane */

struct abwd_args {
	const float *q, *k, *v, *dout;
	float *dq, *dk, *dv, *lse, *D;
	int64_t n, kvd;
	int nh, group, hd, window;
	float scale, softcap;
};

// a · b over hd, the same total in every lane
__device__ __forceinline__ float warp_dot(const float *a, const float *b, int hd, int lane)
{
	float s = 0;
	for (int d = lane; d < hd; d += 32)
		s += a[d] * b[d];
	return sk_warp_sum(s);
}

// The score of a query and a key: q·k · scale, softcapped; *dcap its
// softcap derivative (1 without a cap).
__device__ __forceinline__ float score(const abwd_args &a, const float *qv, const float *kv, int lane, float *dcap)
{
	float s = warp_dot(qv, kv, a.hd, lane) * a.scale;
	*dcap = 1.0f;
	if (a.softcap > 0) {
		s = tanhf(s / a.softcap) * a.softcap;
		*dcap = 1.0f - (s / a.softcap) * (s / a.softcap);
	}
	return s;
}

__global__ static void __launch_bounds__(WARPS * 32) k_attn_bwd_rows(abwd_args a)
{
	__shared__ float s_acc[WARPS][MAX_DPL * 32];
	__shared__ float s_mx[WARPS];
	__shared__ double s_sum[WARPS];
	int64_t t = blockIdx.x, i = t / a.nh; // t = i · nh + h
	int h = (int)(t % a.nh);
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	int64_t lo = a.window > 0 && i - a.window + 1 > 0 ? i - a.window + 1 : 0;
	const float *qv = a.q + t * a.hd, *go = a.dout + t * a.hd;
	int64_t off = (int64_t)(h / a.group) * a.hd;
	float dcap;

	// the row's max score
	float mx = -INFINITY;
	for (int64_t k = lo + w; k <= i; k += WARPS) {
		float s = score(a, qv, a.k + k * a.kvd + off, lane, &dcap);
		if (s > mx)
			mx = s;
	}
	if (lane == 0)
		s_mx[w] = mx;
	__syncthreads();
	mx = s_mx[0];
	for (int x = 1; x < WARPS; x++)
		if (s_mx[x] > mx)
			mx = s_mx[x];

	// logsumexp
	double sum = 0;
	for (int64_t k = lo + w; k <= i; k += WARPS)
		sum += exp((double)score(a, qv, a.k + k * a.kvd + off, lane, &dcap) - mx);
	if (lane == 0)
		s_sum[w] = sum;
	__syncthreads();
	sum = 0;
	for (int x = 0; x < WARPS; x++)
		sum += s_sum[x];
	double lse = (double)mx + log(sum);
	__syncthreads(); // s_sum is reused

	// D = Σ P · dP, dP = dout · v
	double D = 0;
	for (int64_t k = lo + w; k <= i; k += WARPS) {
		float p = (float)exp((double)score(a, qv, a.k + k * a.kvd + off, lane, &dcap) - lse);
		float dp = warp_dot(go, a.v + k * a.kvd + off, a.hd, lane);
		D += (double)p * dp;
	}
	if (lane == 0)
		s_sum[w] = D;
	__syncthreads();
	D = 0;
	for (int x = 0; x < WARPS; x++)
		D += s_sum[x];

	// dq = Σ_k dS_k · k_k, dS = P (dP − D) · softcap' · scale
	float acc[MAX_DPL];
#pragma unroll
	for (int j = 0; j < MAX_DPL; j++)
		acc[j] = 0;
	for (int64_t k = lo + w; k <= i; k += WARPS) {
		const float *kv = a.k + k * a.kvd + off;
		float p = (float)exp((double)score(a, qv, kv, lane, &dcap) - lse);
		float dp = warp_dot(go, a.v + k * a.kvd + off, a.hd, lane);
		float ds = p * (dp - (float)D) * dcap * a.scale;
#pragma unroll
		for (int j = 0; j < MAX_DPL; j++) {
			int d = j * 32 + lane;
			if (d < a.hd)
				acc[j] += ds * kv[d];
		}
	}
#pragma unroll
	for (int j = 0; j < MAX_DPL; j++)
		s_acc[w][j * 32 + lane] = acc[j];
	__syncthreads();
	float *o = a.dq + t * a.hd;
	for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
		float s = 0;
		for (int x = 0; x < WARPS; x++)
			s += s_acc[x][d];
		o[d] = s;
	}
	if (threadIdx.x == 0) {
		a.lse[t] = (float)lse;
		a.D[t] = (float)D;
	}
}

__global__ static void __launch_bounds__(WARPS * 32) k_attn_bwd_keys(abwd_args a)
{
	__shared__ float s_dk[WARPS][MAX_DPL * 32], s_dv[WARPS][MAX_DPL * 32];
	int64_t t = blockIdx.x, kr = t % a.n; // t = g · n + kr
	int g = (int)(t / a.n);
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	int64_t hi = a.window > 0 && kr + a.window - 1 < a.n - 1 ? kr + a.window - 1 : a.n - 1;
	int64_t off = (int64_t)g * a.hd;
	const float *kv = a.k + kr * a.kvd + off, *vv = a.v + kr * a.kvd + off;
	float dk[MAX_DPL], dv[MAX_DPL];
#pragma unroll
	for (int j = 0; j < MAX_DPL; j++)
		dk[j] = dv[j] = 0;
	// the (head of the group, query row) pairs that see this key, a warp each in turn
	int64_t len = hi - kr + 1, total = (int64_t)a.group * len;
	for (int64_t e = w; e < total; e += WARPS) {
		int h = g * a.group + (int)(e / len);
		int64_t i = kr + e % len, row = i * a.nh + h;
		const float *qv = a.q + row * a.hd, *go = a.dout + row * a.hd;
		float dcap;
		float s = score(a, qv, kv, lane, &dcap);
		float p = (float)exp((double)s - (double)a.lse[row]);
		float dpv = warp_dot(go, vv, a.hd, lane);
		float ds = p * (dpv - a.D[row]) * dcap * a.scale;
#pragma unroll
		for (int j = 0; j < MAX_DPL; j++) {
			int d = j * 32 + lane;
			if (d < a.hd) {
				dk[j] += ds * qv[d];
				dv[j] += p * go[d];
			}
		}
	}
#pragma unroll
	for (int j = 0; j < MAX_DPL; j++) {
		s_dk[w][j * 32 + lane] = dk[j];
		s_dv[w][j * 32 + lane] = dv[j];
	}
	__syncthreads();
	float *ok = a.dk + kr * a.kvd + off, *ov = a.dv + kr * a.kvd + off;
	for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
		float sk = 0, sv = 0;
		for (int x = 0; x < WARPS; x++) {
			sk += s_dk[x][d];
			sv += s_dv[x][d];
		}
		ok[d] += sk;
		ov[d] += sv;
	}
}

extern "C" int sk_cuda_attention_bwd(sk_cuda *c, const float *q, const float *k, const float *v, int64_t n, int nh,
                                     int nkv, int hd, int window, float scale, float softcap, const float *dout,
                                     float *dq, float *dk, float *dv, float *ws)
{
	if (n <= 0)
		return sk_cuda_check(c);
	if (nkv <= 0 || nh <= 0 || nh % nkv != 0 || hd <= 0 || hd > MAX_DPL * 32) {
		sk_cuda_fail(c, "attention backward: %d heads over %d KV heads of dimension %d (at most %d)", nh, nkv, hd,
		             MAX_DPL * 32);
		return sk_cuda_check(c);
	}
	int tiled = sk_cuda_attention_bwd_gemm(c, q, k, v, n, nh, nkv, hd, window, scale, softcap, dout, dq, dk, dv);
	if (tiled == 0)
		tiled = sk_cuda_attention_bwd_tiled(c, q, k, v, n, nh, nkv, hd, window, scale, softcap, dout, dq, dk, dv, ws);
	if (tiled != 0)
		return sk_cuda_check(c);
	abwd_args a;
	a.q = q, a.k = k, a.v = v, a.dout = dout;
	a.dq = dq, a.dk = dk, a.dv = dv, a.lse = ws, a.D = ws + n * nh;
	a.n = n, a.kvd = (int64_t)nkv * hd;
	a.nh = nh, a.group = nh / nkv, a.hd = hd, a.window = window;
	a.scale = scale, a.softcap = softcap;
	k_attn_bwd_rows<<<(unsigned)(n * nh), WARPS * 32, 0, c->stream>>>(a);
	if (sk_cuda_launched(c, "attention backward (rows)") != 0)
		return sk_cuda_check(c);
	k_attn_bwd_keys<<<(unsigned)(n * nkv), WARPS * 32, 0, c->stream>>>(a);
	sk_cuda_launched(c, "attention backward (keys)");
	return sk_cuda_check(c);
}
