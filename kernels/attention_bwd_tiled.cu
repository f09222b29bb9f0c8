// Attention backward of one training sequence (positions 0..n-1, no cache),
// tiled like attention_tiled.cu so that each row read from memory serves a
// block of rows, for head dimensions 128 and 256 (others: attention_bwd.cu):
//   1. the forward again through the tiled kernel, keeping each row's
//      log-sum-exp (ws) and its output O (scratch); D = Σ dout ⊙ O per row
//      (equal to the reference's Σ P·dP);
//   2. dq: a block per (head, 32 query rows) walks the keys they see, 64 at
//      a time: P = exp(s − lse), dP = dout · v, dS = P (dP − D) softcap'
//      scale, dq += dS k;
//   3. dk, dv: a block per (KV head, 32 keys) walks the query rows of every
//      head of its group that see them, 64 at a time: dv += Pᵀ dout,
//      dk += dSᵀ q, added into dk and dv (KV-shared layers accumulate into
//      their producer's).
// No two blocks write the same element, so the result does not depend on
// scheduling.
#include "kernels/context.cuh"

#include <math.h>

#define BR 32 /* rows a block owns (query rows for dq, keys for dk/dv) */
#define BC 64 /* rows of the other side a tile walks */
#define NT (BR * 4)

struct tbwd_args {
	const float *q, *k, *v, *dout, *lse, *D;
	float *dq, *dk, *dv;
	int64_t n, kvd;
	int nh, group, window;
	float scale, softcap;
};

template <int HD>
struct tbwd_smem {
	float own_a[BR][HD + 4], own_b[BR][HD + 4]; // dq: q, dout; dk/dv: k, v
	float oth_a[BC][HD + 4], oth_b[BC][HD + 4]; // dq: k, v; dk/dv: q, dout
	float p[BC][BR + 4], ds[BC][BR + 4];        // [other row][own row]
	float lse[BC], D[BC];                       // of the tile's query rows (dk/dv), or the block's (dq)
};

// Rows [r0, r0 + R) of a [n][stride] array (columns off..off+HD) into sm,
// zeros past n.
template <int HD, int R>
__device__ __forceinline__ void load_rows(float (*sm)[HD + 4], const float *src, int64_t r0, int64_t n, int64_t stride,
                                          int64_t off)
{
	for (int e = threadIdx.x; e < R * (HD / 4); e += NT) {
		int r = e / (HD / 4), c = e % (HD / 4);
		float4 v = make_float4(0, 0, 0, 0);
		if (r0 + r < n)
			v = reinterpret_cast<const float4 *>(src + (r0 + r) * stride + off)[c];
		reinterpret_cast<float4 *>(&sm[r][0])[c] = v;
	}
}

// acc[x][y] += own_x · oth_y over the float4 column c, for own rows tq + 8x
// and other rows tk + 16y (the 4 x 4 patches of attention_tiled.cu)
template <int HD>
__device__ __forceinline__ void patch_step(const float (*own)[HD + 4], const float (*oth)[HD + 4], int c, int tq,
                                           int tk, float (&acc)[4][4])
{
	float4 a[4], b[4];
#pragma unroll
	for (int x = 0; x < 4; x++)
		a[x] = reinterpret_cast<const float4 *>(&own[tq + 8 * x][0])[c];
#pragma unroll
	for (int y = 0; y < 4; y++)
		b[y] = reinterpret_cast<const float4 *>(&oth[tk + 16 * y][0])[c];
#pragma unroll
	for (int x = 0; x < 4; x++)
#pragma unroll
		for (int y = 0; y < 4; y++)
			acc[x][y] += a[x].x * b[y].x + a[x].y * b[y].y + a[x].z * b[y].z + a[x].w * b[y].w;
}

// s = own_a · oth_a and t = own_b · oth_b, patch by patch
template <int HD>
__device__ __forceinline__ void patches(const tbwd_smem<HD> &sm, int tq, int tk, float (&s)[4][4], float (&t)[4][4])
{
#pragma unroll
	for (int x = 0; x < 4; x++)
#pragma unroll
		for (int y = 0; y < 4; y++)
			s[x][y] = t[x][y] = 0.0f;
#pragma unroll 2
	for (int c = 0; c < HD / 4; c++) {
		patch_step<HD>(sm.own_a, sm.oth_a, c, tq, tk, s);
		patch_step<HD>(sm.own_b, sm.oth_b, c, tq, tk, t);
	}
}

// P and dS of query i and key kp from the score s = q·k and dP = dout·v
__device__ __forceinline__ void p_ds(const tbwd_args &a, int64_t i, int64_t kp, float s, float dp, float lse, float D,
                                     float *p, float *ds)
{
	int ok = i < a.n && kp <= i && (a.window <= 0 || kp > i - a.window);
	float v = s * a.scale, dcap = 1.0f;
	if (a.softcap > 0) {
		v = tanhf(v / a.softcap) * a.softcap;
		dcap = 1.0f - (v / a.softcap) * (v / a.softcap);
	}
	*p = ok ? expf(v - lse) : 0.0f;
	*ds = *p * (dp - D) * dcap * a.scale;
}

// acc[r][c] += Σ_j w[j][8·warp + r] · m[j][lane·4 + 128c .. +3] over j < cnt
template <int HD>
__device__ __forceinline__ void accumulate(float4 (&acc)[8][HD / 128], const float (*w)[BR + 4],
                                           const float (*m)[HD + 4], int cnt, int warp, int lane)
{
	for (int j = 0; j < cnt; j++) {
		float4 w0 = reinterpret_cast<const float4 *>(&w[j][8 * warp])[0];
		float4 w1 = reinterpret_cast<const float4 *>(&w[j][8 * warp])[1];
		float wr[8] = { w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w };
#pragma unroll
		for (int c = 0; c < HD / 128; c++) {
			float4 mv = reinterpret_cast<const float4 *>(&m[j][0])[lane + 32 * c];
#pragma unroll
			for (int r = 0; r < 8; r++) {
				acc[r][c].x += wr[r] * mv.x;
				acc[r][c].y += wr[r] * mv.y;
				acc[r][c].z += wr[r] * mv.z;
				acc[r][c].w += wr[r] * mv.w;
			}
		}
	}
}

template <int HD>
__global__ static void __launch_bounds__(NT) k_bwd_dq(tbwd_args a)
{
	extern __shared__ float4 smem_raw[];
	tbwd_smem<HD> &sm = *reinterpret_cast<tbwd_smem<HD> *>(smem_raw);
	const int t = threadIdx.x, lane = t & 31, w = t >> 5, tq = t >> 4, tk = t & 15;
	const int64_t i0 = (int64_t)blockIdx.x * BR;
	const int h = blockIdx.y;
	const int64_t off = (int64_t)(h / a.group) * HD, qd = (int64_t)a.nh * HD;
	load_rows<HD, BR>(sm.own_a, a.q, i0, a.n, qd, (int64_t)h * HD);
	load_rows<HD, BR>(sm.own_b, a.dout, i0, a.n, qd, (int64_t)h * HD);
	for (int r = t; r < BR; r += NT) {
		int64_t i = i0 + r;
		sm.lse[r] = i < a.n ? a.lse[i * a.nh + h] : 0.0f;
		sm.D[r] = i < a.n ? a.D[i * a.nh + h] : 0.0f;
	}
	int64_t last = (i0 + BR < a.n ? i0 + BR : a.n) - 1;
	int64_t kstart = a.window > 0 && i0 - a.window + 1 > 0 ? i0 - a.window + 1 : 0;
	float4 acc[8][HD / 128];
#pragma unroll
	for (int r = 0; r < 8; r++)
#pragma unroll
		for (int c = 0; c < HD / 128; c++)
			acc[r][c] = make_float4(0, 0, 0, 0);
	for (int64_t k0 = kstart; k0 <= last; k0 += BC) {
		__syncthreads();
		load_rows<HD, BC>(sm.oth_a, a.k, k0, last + 1, a.kvd, off);
		load_rows<HD, BC>(sm.oth_b, a.v, k0, last + 1, a.kvd, off);
		__syncthreads();
		float s[4][4], dp[4][4];
		patches<HD>(sm, tq, tk, s, dp);
#pragma unroll
		for (int x = 0; x < 4; x++) {
			int r = tq + 8 * x;
#pragma unroll
			for (int y = 0; y < 4; y++) {
				float p, ds;
				p_ds(a, i0 + r, k0 + tk + 16 * y, s[x][y], dp[x][y], sm.lse[r], sm.D[r], &p, &ds);
				sm.ds[tk + 16 * y][r] = ds;
			}
		}
		__syncthreads();
		int cnt = last - k0 + 1 < BC ? (int)(last - k0 + 1) : BC;
		accumulate<HD>(acc, sm.ds, sm.oth_a, cnt, w, lane);
	}
#pragma unroll
	for (int r = 0; r < 8; r++) {
		int64_t i = i0 + 8 * w + r;
		if (i >= a.n)
			continue;
		float4 *dst = reinterpret_cast<float4 *>(a.dq + i * qd + (int64_t)h * HD);
#pragma unroll
		for (int c = 0; c < HD / 128; c++)
			dst[lane + 32 * c] = acc[r][c];
	}
}

template <int HD>
__global__ static void __launch_bounds__(NT) k_bwd_dkdv(tbwd_args a)
{
	extern __shared__ float4 smem_raw[];
	tbwd_smem<HD> &sm = *reinterpret_cast<tbwd_smem<HD> *>(smem_raw);
	const int t = threadIdx.x, lane = t & 31, w = t >> 5, tq = t >> 4, tk = t & 15;
	const int64_t j0 = (int64_t)blockIdx.x * BR; // the block's keys
	const int g = blockIdx.y;
	const int64_t off = (int64_t)g * HD, qd = (int64_t)a.nh * HD;
	load_rows<HD, BR>(sm.own_a, a.k, j0, a.n, a.kvd, off);
	load_rows<HD, BR>(sm.own_b, a.v, j0, a.n, a.kvd, off);
	int64_t jl = (j0 + BR < a.n ? j0 + BR : a.n) - 1;
	int64_t qend = a.n - 1; // the last query row that sees one of the keys
	if (a.window > 0 && jl + a.window - 1 < qend)
		qend = jl + a.window - 1;
	float4 dk[8][HD / 128], dv[8][HD / 128];
#pragma unroll
	for (int r = 0; r < 8; r++)
#pragma unroll
		for (int c = 0; c < HD / 128; c++)
			dk[r][c] = dv[r][c] = make_float4(0, 0, 0, 0);
	for (int hh = 0; hh < a.group; hh++) {
		int h = g * a.group + hh;
		for (int64_t q0 = j0; q0 <= qend; q0 += BC) {
			__syncthreads();
			load_rows<HD, BC>(sm.oth_a, a.q, q0, qend + 1, qd, (int64_t)h * HD);
			load_rows<HD, BC>(sm.oth_b, a.dout, q0, qend + 1, qd, (int64_t)h * HD);
			for (int r = t; r < BC; r += NT) {
				int64_t i = q0 + r;
				sm.lse[r] = i <= qend ? a.lse[i * a.nh + h] : 0.0f;
				sm.D[r] = i <= qend ? a.D[i * a.nh + h] : 0.0f;
			}
			__syncthreads();
			// s = k · q, dp = v · dout: own rows are keys, the tile's are queries
			float s[4][4], dp[4][4];
			patches<HD>(sm, tq, tk, s, dp);
#pragma unroll
			for (int x = 0; x < 4; x++) {
				int r = tq + 8 * x;
#pragma unroll
				for (int y = 0; y < 4; y++) {
					int qr = tk + 16 * y;
					float p, ds;
					int64_t i = q0 + qr;
					p_ds(a, i <= qend ? i : a.n, j0 + r, s[x][y], dp[x][y], sm.lse[qr], sm.D[qr], &p, &ds);
					if (j0 + r >= a.n)
						p = ds = 0.0f;
					sm.p[qr][r] = p;
					sm.ds[qr][r] = ds;
				}
			}
			__syncthreads();
			int cnt = qend - q0 + 1 < BC ? (int)(qend - q0 + 1) : BC;
			accumulate<HD>(dv, sm.p, sm.oth_b, cnt, w, lane);
			accumulate<HD>(dk, sm.ds, sm.oth_a, cnt, w, lane);
		}
	}
#pragma unroll
	for (int r = 0; r < 8; r++) {
		int64_t j = j0 + 8 * w + r;
		if (j >= a.n)
			continue;
		float4 *ok = reinterpret_cast<float4 *>(a.dk + j * a.kvd + off);
		float4 *ov = reinterpret_cast<float4 *>(a.dv + j * a.kvd + off);
#pragma unroll
		for (int c = 0; c < HD / 128; c++) {
			float4 x = ok[lane + 32 * c], y = ov[lane + 32 * c];
			x.x += dk[r][c].x, x.y += dk[r][c].y, x.z += dk[r][c].z, x.w += dk[r][c].w;
			y.x += dv[r][c].x, y.y += dv[r][c].y, y.z += dv[r][c].z, y.w += dv[r][c].w;
			ok[lane + 32 * c] = x;
			ov[lane + 32 * c] = y;
		}
	}
}

// D[t] = Σ_d dout[t][d] · o[t][d], a warp a row
__global__ static void k_rowdot(const float *__restrict__ dout, const float *__restrict__ o, int64_t rows, int hd,
                                float *__restrict__ D)
{
	int64_t t = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
	int lane = threadIdx.x & 31;
	if (t >= rows)
		return;
	float s = 0;
	for (int d = lane; d < hd; d += 32)
		s += dout[t * hd + d] * o[t * hd + d];
	s = sk_warp_sum(s);
	if (lane == 0)
		D[t] = s;
}

template <int HD>
static cudaError_t allow(void)
{
	cudaError_t e = cudaFuncSetAttribute(k_bwd_dq<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
	                                     (int)sizeof(tbwd_smem<HD>));
	if (e == cudaSuccess)
		e = cudaFuncSetAttribute(k_bwd_dkdv<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
		                         (int)sizeof(tbwd_smem<HD>));
	return e;
}

cudaError_t sk_cuda_attention_bwd_tiled_init(void)
{
	cudaError_t e = allow<256>();
	return e == cudaSuccess ? allow<128>() : e;
}

template <int HD>
static void launch(sk_cuda *c, const tbwd_args &a, int nkv)
{
	unsigned blocks = (unsigned)((a.n + BR - 1) / BR);
	size_t bytes = sizeof(tbwd_smem<HD>);
	k_bwd_dq<HD><<<dim3(blocks, (unsigned)a.nh), NT, bytes, c->stream>>>(a);
	k_bwd_dkdv<HD><<<dim3(blocks, (unsigned)nkv), NT, bytes, c->stream>>>(a);
}

int sk_cuda_attention_bwd_tiled(sk_cuda *c, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                                int hd, int window, float scale, float softcap, const float *dout, float *dq,
                                float *dk, float *dv, float *ws)
{
	const uintptr_t al = (uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)dout | (uintptr_t)dq |
	                     (uintptr_t)dk | (uintptr_t)dv;
	if (!c->tiled_attn || n < 16 || (hd != 128 && hd != 256) || nkv < 1 || nh % nkv || (al & 15))
		return 0;
	// O of the forward again, in the scratch; lse and D into ws
	float *o = (float *)sk_cuda_scratch(c, (size_t)(n * nh) * hd * sizeof(float));
	if (!o)
		return -1;
	float *lse = ws, *D = ws + n * nh;
	int r = sk_cuda_attention_tiled(c, q, n, NULL, NULL, NULL, 0, k, v, nh, nkv, hd, window, scale, softcap, o, lse);
	if (r != 1)
		return r < 0 ? -1 : 0;
	k_rowdot<<<sk_blocks(n * nh * 32, 256), 256, 0, c->stream>>>(dout, o, n * nh, hd, D);
	tbwd_args a;
	a.q = q, a.k = k, a.v = v, a.dout = dout, a.lse = lse, a.D = D;
	a.dq = dq, a.dk = dk, a.dv = dv;
	a.n = n, a.kvd = (int64_t)nkv * hd;
	a.nh = nh, a.group = nh / nkv, a.window = window;
	a.scale = scale, a.softcap = softcap;
	if (hd == 256)
		launch<256>(c, a, nkv);
	else
		launch<128>(c, a, nkv);
	return sk_cuda_launched(c, "attention backward (tiled)") != 0 ? -1 : 1;
}
