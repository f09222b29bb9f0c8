// Causal attention of one sequence's new rows over its ring cache and its
// own new keys: GQA, sliding window, optional logit softcap, softmax in
// fp32. A block takes one (query row, head) and, when there are few of
// those (decoding), one of S slices of the keys; its four warps walk the
// slice with an online softmax and a second kernel merges the slices. The
// positions come from device memory, so a recorded step replays at any
// position.
#include "kernels/launch.cuh"

#include <math.h>

#define WARPS 4
#define MAX_DPL 16 /* head_dim up to 512: 16 values a lane */

struct attn_args {
	const float *q, *k_past, *v_past, *k_new, *v_new;
	const int32_t *pos;
	int64_t n, cap, kvd;
	int nh, group, hd, window, S;
	float scale, softcap;
	float *out, *part; // part: [n·nh][S][hd + 2] (acc, max, sum) when S > 1
};

template <int DPL>
__global__ static void k_attn(attn_args a)
{
	sk_pdl_wait();
	__shared__ float s_m[WARPS], s_l[WARPS];
	__shared__ float s_acc[WARPS][MAX_DPL * 32];
	int64_t i = blockIdx.x;
	int h = blockIdx.y, split = blockIdx.z;
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	int64_t past_hi = a.pos[0], p = past_hi + i;
	int64_t lo = a.k_past ? (past_hi > a.cap ? past_hi - a.cap : 0) : past_hi;
	if (a.window > 0 && p - a.window + 1 > lo)
		lo = p - a.window + 1;
	int64_t len = p - lo + 1, chunk = (len + a.S - 1) / a.S;
	int64_t k0 = lo + split * chunk, k1 = k0 + chunk;
	if (k1 > p + 1)
		k1 = p + 1;
	int64_t off = (int64_t)(h / a.group) * a.hd;
	const float *qv = a.q + (i * a.nh + h) * a.hd;
	float q[DPL], acc[DPL];
#pragma unroll
	for (int j = 0; j < DPL; j++) {
		int d = j * 32 + lane;
		q[j] = d < a.hd ? qv[d] : 0.0f;
		acc[j] = 0.0f;
	}
	float m = -INFINITY, l = 0.0f;
	for (int64_t k = k0 + w; k < k1; k += WARPS) {
		const float *kr = sk_kv_row(a.k_new, a.k_past, k, past_hi, a.cap, a.kvd, off);
		const float *vr = sk_kv_row(a.v_new, a.v_past, k, past_hi, a.cap, a.kvd, off);
		float s = 0.0f;
#pragma unroll
		for (int j = 0; j < DPL; j++) {
			int d = j * 32 + lane;
			if (d < a.hd)
				s += q[j] * kr[d];
		}
		s = sk_warp_sum(s) * a.scale;
		if (a.softcap > 0)
			s = tanhf(s / a.softcap) * a.softcap;
		float mn = fmaxf(m, s), corr = expf(m - mn), e = expf(s - mn);
		l = l * corr + e;
#pragma unroll
		for (int j = 0; j < DPL; j++) {
			int d = j * 32 + lane;
			acc[j] = acc[j] * corr + (d < a.hd ? e * vr[d] : 0.0f);
		}
		m = mn;
	}
	if (lane == 0) {
		s_m[w] = m;
		s_l[w] = l;
	}
#pragma unroll
	for (int j = 0; j < DPL; j++)
		s_acc[w][j * 32 + lane] = acc[j];
	__syncthreads();
	float M = -INFINITY;
	for (int t = 0; t < WARPS; t++)
		M = fmaxf(M, s_m[t]);
	float L = 0;
	for (int t = 0; t < WARPS; t++)
		L += s_m[t] == -INFINITY ? 0.0f : s_l[t] * expf(s_m[t] - M);
	for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
		float v = 0;
		for (int t = 0; t < WARPS; t++)
			if (s_m[t] != -INFINITY)
				v += s_acc[t][d] * expf(s_m[t] - M);
		if (a.S == 1) {
			a.out[(i * a.nh + h) * a.hd + d] = v / L;
		} else {
			float *pp = a.part + ((i * a.nh + h) * a.S + split) * (a.hd + 2);
			pp[d] = v;
			if (d == 0) {
				pp[a.hd] = M;
				pp[a.hd + 1] = L;
			}
		}
	}
}

__global__ static void k_attn_merge(attn_args a)
{
	sk_pdl_wait();
	int64_t row = blockIdx.x; // i·nh + h
	const float *pp = a.part + row * a.S * (a.hd + 2);
	float M = -INFINITY;
	for (int s = 0; s < a.S; s++)
		M = fmaxf(M, pp[s * (a.hd + 2) + a.hd]);
	float L = 0;
	for (int s = 0; s < a.S; s++) {
		float ms = pp[s * (a.hd + 2) + a.hd];
		if (ms != -INFINITY)
			L += pp[s * (a.hd + 2) + a.hd + 1] * expf(ms - M);
	}
	for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
		float v = 0;
		for (int s = 0; s < a.S; s++) {
			float ms = pp[s * (a.hd + 2) + a.hd];
			if (ms != -INFINITY)
				v += pp[s * (a.hd + 2) + d] * expf(ms - M);
		}
		a.out[row * a.hd + d] = v / L;
	}
}

extern "C" int sk_cuda_attention(sk_cuda *c, const float *q, int64_t n, const int32_t *pos, const float *k_past,
                                 const float *v_past, int64_t cap, const float *k_new, const float *v_new, int nh,
                                 int nkv, int hd, int window, float scale, float softcap, float *out)
{
	if (hd > MAX_DPL * 32 || nkv < 1 || nh % nkv) {
		sk_cuda_fail(c, "attention: head_dim %d with %d/%d heads is not supported on the GPU", hd, nh, nkv);
		return sk_cuda_check(c);
	}
	if (n < 1)
		return sk_cuda_check(c);
	// a sequence without a cache (training): through matrix products when the scores fit
	int tiled = k_past ? 0 : sk_cuda_attention_gemm(c, q, n, k_new, v_new, nh, nkv, hd, window, scale, softcap, out);
	if (tiled == 0)
		tiled = sk_cuda_attention_tiled(c, q, n, pos, k_past, v_past, cap, k_new, v_new, nh, nkv, hd, window, scale,
		                                softcap, out, NULL);
	if (tiled != 0)
		return sk_cuda_check(c);
	attn_args a;
	a.q = q;
	a.k_past = k_past;
	a.v_past = v_past;
	a.k_new = k_new;
	a.v_new = v_new;
	a.pos = pos;
	a.n = n;
	a.cap = cap > 0 ? cap : 1;
	a.kvd = (int64_t)nkv * hd;
	a.nh = nh;
	a.group = nh / nkv;
	a.hd = hd;
	a.window = window;
	a.scale = scale;
	a.softcap = softcap;
	a.out = out;
	a.part = NULL;
	// few (row, head) pairs (decoding): split the keys so that every SM has work
	int S = 1;
	if (n * nh < c->sms)
		S = (int)((2 * c->sms + n * nh - 1) / (n * nh));
	if (S > 32)
		S = 32;
	if (S > 1) {
		size_t need = (size_t)n * nh * S * (hd + 2) * sizeof(float);
		if (need > c->attn_cap) {
			if (c->capturing) {
				S = 1; // never allocate inside a recording
			} else {
				sk_cuda_record_drop(c); /* recordings name the old buffer */
				sk_cuda_free(c, c->attn_ws);
				c->attn_ws = sk_cuda_alloc(c, need, "attention partial sums");
				c->attn_cap = c->attn_ws ? need : 0;
				if (!c->attn_ws)
					return sk_cuda_check(c);
			}
		}
		a.part = (float *)c->attn_ws;
	}
	a.S = S;
	dim3 grid((unsigned)n, (unsigned)nh, (unsigned)S);
	int dpl = (hd + 31) / 32;
	if (dpl <= 1)
		sk_launch(c, k_attn<1>, grid, WARPS * 32, 0, a);
	else if (dpl <= 2)
		sk_launch(c, k_attn<2>, grid, WARPS * 32, 0, a);
	else if (dpl <= 4)
		sk_launch(c, k_attn<4>, grid, WARPS * 32, 0, a);
	else if (dpl <= 8)
		sk_launch(c, k_attn<8>, grid, WARPS * 32, 0, a);
	else
		sk_launch(c, k_attn<16>, grid, WARPS * 32, 0, a);
	if (S > 1)
		sk_launch(c, k_attn_merge, (unsigned)(n * nh), hd < 256 ? 128 : 256, 0, a);
	sk_cuda_launched(c, "attention");
	return sk_cuda_check(c);
}
