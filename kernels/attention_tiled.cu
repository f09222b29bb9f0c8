// Causal attention of many query rows at once (a prefill, a training
// forward): the same arithmetic as attention.cu (fp32 scores, scale, softcap,
// online softmax), tiled so that each key and value row read from memory
// serves a block of BQ query rows instead of one. A block takes BQ rows of
// one head and walks the keys they see in tiles of 64:
//   scores: each thread a 4 x 4 patch (rows tq + BQ/4·a, keys tk + 16·b), so
//           that a row's 64 scores sit in one half-warp and its max and sum
//           are shuffles;
//   values: each warp 8 rows, each lane float4 columns of the head.
// Head dimensions 128 and 256 (Gemma 3 and 3n); others go to attention.cu.
#include "kernels/context.cuh"

#include <math.h>

#define BK 64 /* keys a tile */

struct tattn_args {
	const float *q, *k_past, *v_past, *k_new, *v_new;
	const int32_t *pos;
	int64_t n, cap, kvd;
	int nh, group, window;
	float scale, softcap;
	float *out;
	float *lse; // when not NULL: each row's log-sum-exp, [n][nh] (the backward's)
};

template <int HD, int BQ>
struct tattn_smem {
	float q[BQ][HD + 4]; // +4: a quarter-warp's float4 loads of 8 rows fall in 32 different banks
	float k[BK][HD + 4];
	float v[BK][HD];
	float p[BK][BQ + 4]; // probabilities, key-major: 8 rows of one key are two float4
	float corr[BQ], l[BQ];
};

template <int HD, int BQ>
__global__ static void __launch_bounds__(BQ * 4) k_attn_tiled(tattn_args a)
{
	extern __shared__ float4 smem_raw[];
	tattn_smem<HD, BQ> &sm = *reinterpret_cast<tattn_smem<HD, BQ> *>(smem_raw);
	const int NT = BQ * 4, RS = BQ / 4; // threads; row stride of a thread's score rows
	const int t = threadIdx.x, lane = t & 31, w = t >> 5;
	const int tq = t >> 4, tk = t & 15;
	const int64_t i0 = (int64_t)blockIdx.x * BQ;
	const int h = blockIdx.y;
	const int64_t past_hi = a.pos ? a.pos[0] : 0; // no positions: a sequence from 0 (training)
	const int64_t off = (int64_t)(h / a.group) * HD;
	const int64_t last = (i0 + BQ < a.n ? i0 + BQ : a.n) - 1; // the block's last row
	const int64_t range_lo = a.k_past ? (past_hi > a.cap ? past_hi - a.cap : 0) : past_hi;

	// the block's query rows
	for (int e = t; e < BQ * (HD / 4); e += NT) {
		int r = e / (HD / 4), c = e % (HD / 4);
		float4 v = make_float4(0, 0, 0, 0);
		if (i0 + r < a.n)
			v = reinterpret_cast<const float4 *>(a.q + ((i0 + r) * a.nh + h) * HD)[c];
		reinterpret_cast<float4 *>(&sm.q[r][0])[c] = v;
	}
	// the keys any row sees: [kstart, kend]
	int64_t kstart = range_lo, kend = past_hi + last;
	if (a.window > 0 && past_hi + i0 - a.window + 1 > kstart)
		kstart = past_hi + i0 - a.window + 1;

	float m[4], l[4];
#pragma unroll
	for (int x = 0; x < 4; x++)
		m[x] = -INFINITY, l[x] = 0.0f;
	const int C = HD / 128; // float4 columns a lane holds per row
	float4 o[8][C];
#pragma unroll
	for (int r = 0; r < 8; r++)
#pragma unroll
		for (int c = 0; c < C; c++)
			o[r][c] = make_float4(0, 0, 0, 0);

	for (int64_t k0 = kstart; k0 <= kend; k0 += BK) {
		__syncthreads(); // the previous tile's k, v and p are no longer read
		for (int e = t; e < BK * (HD / 4); e += NT) {
			int r = e / (HD / 4), c = e % (HD / 4);
			int64_t kp = k0 + r;
			float4 kv = make_float4(0, 0, 0, 0), vv = kv;
			if (kp <= kend) {
				kv = reinterpret_cast<const float4 *>(
					sk_kv_row(a.k_new, a.k_past, kp, past_hi, a.cap, a.kvd, off))[c];
				vv = reinterpret_cast<const float4 *>(
					sk_kv_row(a.v_new, a.v_past, kp, past_hi, a.cap, a.kvd, off))[c];
			}
			reinterpret_cast<float4 *>(&sm.k[r][0])[c] = kv;
			reinterpret_cast<float4 *>(&sm.v[r][0])[c] = vv;
		}
		__syncthreads();

		// scores of rows tq + RS·x and keys tk + 16·y
		float s[4][4];
#pragma unroll
		for (int x = 0; x < 4; x++)
#pragma unroll
			for (int y = 0; y < 4; y++)
				s[x][y] = 0.0f;
#pragma unroll 4
		for (int c = 0; c < HD / 4; c++) {
			float4 qv[4], kv[4];
#pragma unroll
			for (int x = 0; x < 4; x++)
				qv[x] = reinterpret_cast<const float4 *>(&sm.q[tq + RS * x][0])[c];
#pragma unroll
			for (int y = 0; y < 4; y++)
				kv[y] = reinterpret_cast<const float4 *>(&sm.k[tk + 16 * y][0])[c];
#pragma unroll
			for (int x = 0; x < 4; x++)
#pragma unroll
				for (int y = 0; y < 4; y++)
					s[x][y] += qv[x].x * kv[y].x + qv[x].y * kv[y].y + qv[x].z * kv[y].z + qv[x].w * kv[y].w;
		}
		// mask, softcap, and the online softmax of each row (its 16 threads agree)
#pragma unroll
		for (int x = 0; x < 4; x++) {
			int r = tq + RS * x;
			int64_t p = past_hi + i0 + r;
			int64_t lo = range_lo;
			if (a.window > 0 && p - a.window + 1 > lo)
				lo = p - a.window + 1;
			float mx = -INFINITY;
#pragma unroll
			for (int y = 0; y < 4; y++) {
				int64_t kp = k0 + tk + 16 * y;
				float v = s[x][y] * a.scale;
				if (a.softcap > 0)
					v = tanhf(v / a.softcap) * a.softcap;
				if (i0 + r >= a.n || kp < lo || kp > p)
					v = -INFINITY;
				s[x][y] = v;
				mx = fmaxf(mx, v);
			}
#pragma unroll
			for (int sh = 8; sh > 0; sh >>= 1)
				mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, sh));
			float mn = fmaxf(m[x], mx);
			float corr = mn == -INFINITY ? 1.0f : expf(m[x] - mn), sum = 0.0f;
#pragma unroll
			for (int y = 0; y < 4; y++) {
				float e = mn == -INFINITY ? 0.0f : expf(s[x][y] - mn);
				sum += e;
				sm.p[tk + 16 * y][r] = e;
			}
#pragma unroll
			for (int sh = 8; sh > 0; sh >>= 1)
				sum += __shfl_xor_sync(0xffffffffu, sum, sh);
			l[x] = l[x] * corr + sum;
			m[x] = mn;
			if (tk == 0)
				sm.corr[r] = corr;
		}
		__syncthreads();

		// o = o · corr + p v over the tile, rows 8w..8w+7
		float cr[8];
#pragma unroll
		for (int r = 0; r < 8; r++)
			cr[r] = sm.corr[8 * w + r];
#pragma unroll
		for (int r = 0; r < 8; r++)
#pragma unroll
			for (int c = 0; c < C; c++) {
				o[r][c].x *= cr[r];
				o[r][c].y *= cr[r];
				o[r][c].z *= cr[r];
				o[r][c].w *= cr[r];
			}
		int kn = kend - k0 + 1 < BK ? (int)(kend - k0 + 1) : BK;
		for (int j = 0; j < kn; j++) {
			float4 p0 = reinterpret_cast<const float4 *>(&sm.p[j][8 * w])[0];
			float4 p1 = reinterpret_cast<const float4 *>(&sm.p[j][8 * w])[1];
			float pr[8] = { p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w };
#pragma unroll
			for (int c = 0; c < C; c++) {
				float4 vv = reinterpret_cast<const float4 *>(&sm.v[j][0])[lane + 32 * c];
#pragma unroll
				for (int r = 0; r < 8; r++) {
					o[r][c].x += pr[r] * vv.x;
					o[r][c].y += pr[r] * vv.y;
					o[r][c].z += pr[r] * vv.z;
					o[r][c].w += pr[r] * vv.w;
				}
			}
		}
	}
	if (tk == 0)
#pragma unroll
		for (int x = 0; x < 4; x++) {
			sm.l[tq + RS * x] = l[x];
			if (a.lse && i0 + tq + RS * x < a.n)
				a.lse[(i0 + tq + RS * x) * a.nh + h] = m[x] + logf(l[x]);
		}
	__syncthreads();
#pragma unroll
	for (int r = 0; r < 8; r++) {
		int64_t i = i0 + 8 * w + r;
		if (i >= a.n)
			continue;
		float inv = 1.0f / sm.l[8 * w + r];
		float4 *dst = reinterpret_cast<float4 *>(a.out + (i * a.nh + h) * HD);
#pragma unroll
		for (int c = 0; c < C; c++)
			dst[lane + 32 * c] = make_float4(o[r][c].x * inv, o[r][c].y * inv, o[r][c].z * inv, o[r][c].w * inv);
	}
}

template <int HD, int BQ>
static cudaError_t allow_smem(void)
{
	return cudaFuncSetAttribute(k_attn_tiled<HD, BQ>, cudaFuncAttributeMaxDynamicSharedMemorySize,
	                            (int)sizeof(tattn_smem<HD, BQ>));
}

// The opt-in to more than 48 KB of shared memory, once per device at context
// creation (never inside a recording).
cudaError_t sk_cuda_attention_tiled_init(void)
{
	cudaError_t e = allow_smem<256, 64>();
	if (e == cudaSuccess)
		e = allow_smem<256, 32>();
	if (e == cudaSuccess)
		e = allow_smem<128, 64>();
	if (e == cudaSuccess)
		e = allow_smem<128, 32>();
	return e;
}

template <int HD, int BQ>
static void launch(sk_cuda *c, const tattn_args &a)
{
	dim3 grid((unsigned)((a.n + BQ - 1) / BQ), (unsigned)a.nh);
	k_attn_tiled<HD, BQ><<<grid, BQ * 4, sizeof(tattn_smem<HD, BQ>), c->stream>>>(a);
}

// 1 when the tiled kernel took the call, 0 when it does not handle this
// shape (the caller uses attention.cu's), -1 on a launch error.
int sk_cuda_attention_tiled(sk_cuda *c, const float *q, int64_t n, const int32_t *pos, const float *k_past,
                            const float *v_past, int64_t cap, const float *k_new, const float *v_new,
                            int nh, int nkv, int hd, int window, float scale, float softcap, float *out, float *lse)
{
	const uintptr_t al = (uintptr_t)q | (uintptr_t)k_new | (uintptr_t)v_new | (uintptr_t)out |
	                     (uintptr_t)(k_past ? k_past : k_new) | (uintptr_t)(v_past ? v_past : v_new);
	if (!c->tiled_attn || n < 16 || (hd != 128 && hd != 256) || nkv < 1 || nh % nkv || (al & 15))
		return 0;
	tattn_args a;
	a.q = q, a.k_past = k_past, a.v_past = v_past, a.k_new = k_new, a.v_new = v_new, a.pos = pos;
	a.n = n, a.cap = cap > 0 ? cap : 1, a.kvd = (int64_t)nkv * hd;
	a.nh = nh, a.group = nh / nkv, a.window = window;
	a.scale = scale, a.softcap = softcap, a.out = out, a.lse = lse;
	// 64 rows a block when that still gives every SM two blocks, else 32
	int big = (n + 63) / 64 * nh >= 2 * c->sms;
	if (hd == 256)
		big ? launch<256, 64>(c, a) : launch<256, 32>(c, a);
	else
		big ? launch<128, 64>(c, a) : launch<128, 32>(c, a);
	return sk_cuda_launched(c, "attention (tiled)") != 0 ? -1 : 1;
}
