// y[n][out] = x[n][in] · Wᵀ for bf16 and NF4 weights, plus the LoRA branch
// on flagged rows, for inference. Decoding (few rows) is bound by reading W:
// a warp per output row streams it once in 16-byte loads and keeps one sum
// per input row. Larger batches go to cuBLASLt on bf16 operands (NF4
// dequantized into scratch first) with fp32 accumulation and output. The NF4
// tables live here, so the dequantization and the backward's general kernel
// do too (linear_internal.cuh); training's products are linear_fold.cu and
// linear_bwd.cu.
#include "kernels/linear_internal.cuh"

#include <string.h>

#define MV_WARPS 8

__constant__ float sk_nf4_lut[16];
__constant__ float sk_dmap_signed[256];
// The same tables in global memory, where a block's threads read different
// entries in one coalesced load (constant memory serialises them).
__device__ float sk_dmap_g[256];
__device__ float sk_nf4_lut_g[16];

extern "C" const float sk_nf4_table[16];
extern "C" const float sk_dynamic_map_signed[256];
extern "C" const int8_t sk_q8_nf4_levels[16];
// The CPU backend's 8-bit NF4 levels (round(127 · code value)), four to a
// word in little-endian order: words 0-1 hold levels 0-7, words 2-3 levels 8-15.
__constant__ uint32_t sk_q8_lut[4];

cudaError_t sk_cuda_linear_init(void)
{
	cudaError_t e = cudaMemcpyToSymbol(sk_nf4_lut, sk_nf4_table, sizeof(float) * 16);
	if (e == cudaSuccess)
		e = cudaMemcpyToSymbol(sk_dmap_signed, sk_dynamic_map_signed, sizeof(float) * 256);
	if (e == cudaSuccess)
		e = cudaMemcpyToSymbol(sk_dmap_g, sk_dynamic_map_signed, sizeof(float) * 256);
	if (e == cudaSuccess)
		e = cudaMemcpyToSymbol(sk_nf4_lut_g, sk_nf4_table, sizeof(float) * 16);
	uint32_t lut[4];
	for (int k = 0; k < 4; k++)
		lut[k] = (uint32_t)(uint8_t)sk_q8_nf4_levels[4 * k] | (uint32_t)(uint8_t)sk_q8_nf4_levels[4 * k + 1] << 8 |
		         (uint32_t)(uint8_t)sk_q8_nf4_levels[4 * k + 2] << 16 |
		         (uint32_t)(uint8_t)sk_q8_nf4_levels[4 * k + 3] << 24;
	if (e == cudaSuccess)
		e = cudaMemcpyToSymbol(sk_q8_lut, lut, sizeof lut);
	return e;
}

// The first-level absmax of NF4 block b, in bitsandbytes' order of float32
// operations (no fused multiply-add).
__device__ __forceinline__ float nf4_absmax(const sk_cuda_weight &w, int64_t b)
{
	if (!w.absmax_q)
		return w.absmax[b];
	return __fadd_rn(__fmul_rn(sk_dmap_signed[w.absmax_q[b]], w.nested[b >> 8]), w.offset);
}

// The code table and the absmax map copied into a block's shared memory:
// lanes look up different entries, which constant memory would serialise.
// The code table has 16 entries in 16 banks, so a warp's lookups never
// conflict (run 6: a 256-entry table of code pairs, one lookup for two
// codes, conflicted enough to make decoding 9 % slower).
__device__ __forceinline__ void nf4_tables(float *lut, float *dmap)
{
	for (int i = threadIdx.x; i < 256; i += blockDim.x) {
		dmap[i] = sk_dmap_g[i];
		if (i < 16)
			lut[i] = sk_nf4_lut_g[i];
	}
	__syncthreads();
}

// The code values of one lane's chunk of 32 codes (16 bytes, half an
// absmax block), high nibble first.
__device__ __forceinline__ void nf4_chunk_decode(const uint4 &v, const float *lut, float (&w)[32])
{
	const uint32_t u[4] = { v.x, v.y, v.z, v.w };
#pragma unroll
	for (int k = 0; k < 4; k++)
#pragma unroll
		for (int q = 0; q < 4; q++) {
			uint32_t byte = (u[k] >> (8 * q)) & 0xffu;
			w[8 * k + 2 * q] = lut[byte >> 4];
			w[8 * k + 2 * q + 1] = lut[byte & 15];
		}
}

// Σ code values · x over the chunk; the caller multiplies by the block's
// absmax once instead of once a weight.
__device__ __forceinline__ float nf4_chunk_dot(const float (&w)[32], const float *xr)
{
	float s = 0;
#pragma unroll
	for (int i = 0; i < 32; i++)
		s = fmaf(w[i], xr[i], s);
	return s;
}

// nf4_absmax with the map from shared memory (nf4_tables)
__device__ __forceinline__ float nf4_absmax_sh(const sk_cuda_weight &w, int64_t b, const float *dmap)
{
	return w.absmax_q ? __fadd_rn(__fmul_rn(dmap[w.absmax_q[b]], w.nested[b >> 8]), w.offset) : w.absmax[b];
}

__device__ __forceinline__ float nf4_at(const sk_cuda_weight &w, int64_t e)
{
	uint8_t byte = w.packed[e >> 1];
	int code = (e & 1) ? (byte & 15) : (byte >> 4);
	return __fmul_rn(sk_nf4_lut[code], nf4_absmax(w, e >> 6));
}

__device__ __forceinline__ float w_at(const sk_cuda_weight &w, int64_t e)
{
	return w.kind == SK_CUDA_W_NF4 ? nf4_at(w, e) : sk_bf16f(w.bf16[e]);
}

// ---- matrix-vector: WPR warps per output row (split over the columns
// when the matrix has few rows), NR input rows ----

// Sums each warp's NR partial sums over the WPR warps of its row; the
// row's first lane writes y.
template <int NR, int WPR>
__device__ __forceinline__ void mv_store(float (&acc)[NR], int64_t row, int64_t out, float *y)
{
	__shared__ float part[MV_WARPS][NR];
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
#pragma unroll
	for (int i = 0; i < NR; i++)
		acc[i] = sk_warp_sum(acc[i]);
	if (WPR == 1) {
		if (lane == 0 && row < out)
#pragma unroll
			for (int i = 0; i < NR; i++)
				y[(int64_t)i * out + row] = acc[i];
		return;
	}
	if (lane == 0)
#pragma unroll
		for (int i = 0; i < NR; i++)
			part[w][i] = acc[i];
	__syncthreads();
	if (w % WPR == 0 && lane < NR && row < out) {
		float t = 0;
		for (int k = 0; k < WPR; k++)
			t += part[w + k][lane];
		y[(int64_t)lane * out + row] = t;
	}
}

// One launch for one or two weights that read the same input (q-k-v,
// gate-up): rows [0, w[0].rows) are the first's, then the second's.
struct mv_job {
	sk_cuda_weight w[2];
	float *y[2];
	int n;
};

// Which weight a warp's row belongs to (row and out are within that
// weight; out is 0 past the last row, so the warp computes nothing).
__device__ __forceinline__ int mv_locate(const mv_job &j, int wpr, int64_t *row, int64_t *out)
{
	*row = (int64_t)blockIdx.x * (MV_WARPS / wpr) + (threadIdx.x >> 5) / wpr;
	int which = j.n > 1 && *row >= j.w[0].rows;
	if (which)
		*row -= j.w[0].rows;
	*out = *row < j.w[which].rows ? j.w[which].rows : 0;
	return which;
}

// bf16, in % 8 == 0: eight weights (16 bytes) a load.
template <int NR, int WPR>
__global__ static void __launch_bounds__(MV_WARPS * 32) k_mv_bf16(mv_job j, const float *__restrict__ x)
{
	sk_pdl_wait();
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	int64_t row, out;
	int which = mv_locate(j, WPR, &row, &out);
	const uint16_t *__restrict__ W = j.w[which].bf16;
	int64_t in = j.w[which].cols;
	float *__restrict__ y = j.y[which];
	float acc[NR];
#pragma unroll
	for (int i = 0; i < NR; i++)
		acc[i] = 0;
	if (row < out) {
		const uint4 *wr = reinterpret_cast<const uint4 *>(W + row * in);
		int64_t nch = in / 8;
		for (int64_t ch = (w % WPR) * 32 + lane; ch < nch; ch += 32 * WPR) {
			uint4 v = __ldg(wr + ch);
			float wv[8];
			const uint32_t u[4] = { v.x, v.y, v.z, v.w };
#pragma unroll
			for (int k = 0; k < 4; k++) {
				wv[2 * k] = __uint_as_float(u[k] << 16);
				wv[2 * k + 1] = __uint_as_float(u[k] & 0xffff0000u);
			}
#pragma unroll
			for (int i = 0; i < NR; i++) {
				const float4 *xv = reinterpret_cast<const float4 *>(x + i * in + ch * 8);
				float4 a = xv[0], b = xv[1];
				acc[i] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y +
				          wv[6] * b.z + wv[7] * b.w;
			}
		}
	}
	mv_store<NR, WPR>(acc, row, out, y);
}

// NF4, in % 32 == 0: 32 codes (16 bytes, half a block) a load. The code
// and absmax tables sit in shared memory: lanes look up different entries,
// which constant memory would serialize.
template <int NR, int WPR>
__global__ static void __launch_bounds__(MV_WARPS * 32) k_mv_nf4(mv_job j, const float *__restrict__ x)
{
	sk_pdl_wait();
	__shared__ float lut[16], dmap[256];
	nf4_tables(lut, dmap);
	int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
	int64_t row, out;
	int which = mv_locate(j, WPR, &row, &out);
	const sk_cuda_weight &w = j.w[which];
	int64_t in = w.cols;
	float *__restrict__ y = j.y[which];
	float acc[NR];
#pragma unroll
	for (int i = 0; i < NR; i++)
		acc[i] = 0;
	if (row < out) {
		const uint4 *pr = reinterpret_cast<const uint4 *>(w.packed + row * in / 2);
		int64_t nch = in / 32;
		for (int64_t ch = (wp % WPR) * 32 + lane; ch < nch; ch += 32 * WPR) {
			uint4 v = __ldg(pr + ch);
			int64_t b = (row * in + ch * 32) >> 6;
			float am = nf4_absmax_sh(w, b, dmap);
			float wv[32]; // decoded once for every input row
			nf4_chunk_decode(v, lut, wv);
#pragma unroll
			for (int i = 0; i < NR; i++) {
				const float4 *xv = reinterpret_cast<const float4 *>(x + i * in + ch * 32);
				float xr[32];
#pragma unroll
				for (int q = 0; q < 8; q++) {
					float4 a = xv[q];
					xr[4 * q] = a.x, xr[4 * q + 1] = a.y, xr[4 * q + 2] = a.z, xr[4 * q + 3] = a.w;
				}
				acc[i] = fmaf(nf4_chunk_dot(wv, xr), am, acc[i]);
			}
		}
	}
	mv_store<NR, WPR>(acc, row, out, y);
}

// A warp's group of RPW rows (WPR warps a group, each a slice of the
// columns): the weight and output it is in, its first row within that
// weight, out (the weight's rows, or 0 past the last: the warp computes
// nothing), and the warp's first chunk of each row.
struct mv_rows {
	const sk_cuda_weight *w;
	float *y;
	int64_t row0, out, ch0;
};

template <int RPW, int WPR>
__device__ __forceinline__ mv_rows rows_at(const mv_job &j)
{
	mv_rows g;
	int warp = threadIdx.x >> 5;
	g.row0 = ((int64_t)blockIdx.x * (MV_WARPS / WPR) + warp / WPR) * RPW;
	int which = j.n > 1 && g.row0 >= j.w[0].rows;
	if (which)
		g.row0 -= j.w[0].rows;
	g.w = &j.w[which];
	g.y = j.y[which];
	g.out = g.row0 < g.w->rows ? g.w->rows : 0;
	g.ch0 = (warp % WPR) * 32 + (threadIdx.x & 31);
	return g;
}

// Chunk ch (32 codes, 16 bytes) of RPW rows from row0 and each one's block
// absmax, the loads issued together; rows past out read the last row's
// (never stored).
template <int RPW>
__device__ __forceinline__ void nf4_load_rows(const sk_cuda_weight &w, int64_t row0, int64_t out, int64_t ch,
                                              const float *dmap, uint4 (&v)[RPW], float (&am)[RPW])
{
#pragma unroll
	for (int r = 0; r < RPW; r++) {
		int64_t row = row0 + r < out ? row0 + r : out - 1;
		v[r] = __ldg(reinterpret_cast<const uint4 *>(w.packed + row * w.cols / 2) + ch);
		am[r] = nf4_absmax_sh(w, (row * w.cols + ch * 32) >> 6, dmap);
	}
}

// The sums of a warp's RPW rows; with WPR warps a row group (each a slice
// of the columns) the slices' sums are added through shared memory.
template <int NR, int RPW, int WPR>
__device__ __forceinline__ void rows_store(float (&acc)[NR][RPW], int64_t row0, int64_t out, float *y)
{
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
	for (int i = 0; i < NR; i++)
#pragma unroll
		for (int r = 0; r < RPW; r++)
			acc[i][r] = sk_warp_sum(acc[i][r]);
	if (WPR == 1) {
		if (lane == 0)
#pragma unroll
			for (int i = 0; i < NR; i++)
#pragma unroll
				for (int r = 0; r < RPW; r++)
					if (row0 + r < out)
						y[(int64_t)i * out + row0 + r] = acc[i][r];
		return;
	}
	__shared__ float part[MV_WARPS][NR * RPW];
	if (lane == 0)
#pragma unroll
		for (int i = 0; i < NR; i++)
#pragma unroll
			for (int r = 0; r < RPW; r++)
				part[warp][i * RPW + r] = acc[i][r];
	__syncthreads();
	if (warp % WPR == 0 && lane < NR * RPW) {
		int i = lane / RPW, r = lane % RPW;
		float t = 0;
		for (int k = 0; k < WPR; k++)
			t += part[warp + k][lane];
		if (row0 + r < out)
			y[(int64_t)i * out + row0 + r] = t;
	}
}

// NF4 with RPW rows a warp (whole rows, no column split): the lane's 32
// inputs of a chunk are loaded once and used for all RPW rows, and the
// RPW 16-byte weight loads are in flight together. Decoding reads x from
// L1 once per RPW rows instead of once per row, which is what held the
// one-row kernel to a fifth of the memory bandwidth.
template <int NR, int RPW, int WPR>
__global__ static void __launch_bounds__(MV_WARPS * 32) k_mv_nf4_rows(mv_job j, const float *__restrict__ x)
{
	sk_pdl_wait();
	__shared__ float lut[16], dmap[256];
	nf4_tables(lut, dmap);
	const mv_rows g = rows_at<RPW, WPR>(j);
	const sk_cuda_weight &w = *g.w;
	const int64_t in = w.cols, row0 = g.row0, out = g.out;
	float acc[NR][RPW] = {};
	if (out) {
#pragma unroll 2
		for (int64_t ch = g.ch0; ch < in / 32; ch += 32 * WPR) {
			uint4 v[RPW];
			float am[RPW];
			nf4_load_rows<RPW>(w, row0, out, ch, dmap, v, am);
#pragma unroll
			for (int i = 0; i < NR; i++) {
				const float4 *xv = reinterpret_cast<const float4 *>(x + i * in + ch * 32);
				float xr[32];
#pragma unroll
				for (int q = 0; q < 8; q++) {
					float4 a = xv[q];
					xr[4 * q] = a.x, xr[4 * q + 1] = a.y, xr[4 * q + 2] = a.z, xr[4 * q + 3] = a.w;
				}
#pragma unroll
				for (int r = 0; r < RPW; r++) { // decoded again per input row: RPW decoded chunks would not fit in registers
					float wv[32];
					nf4_chunk_decode(v[r], lut, wv);
					acc[i][r] = fmaf(nf4_chunk_dot(wv, xr), am[r], acc[i][r]);
				}
			}
		}
	}
	rows_store<NR, RPW, WPR>(acc, row0, out, g.y);
}

// bf16 with RPW rows a warp, as k_mv_nf4_rows: eight inputs a load, used
// for all RPW rows.
template <int NR, int RPW, int WPR>
__global__ static void __launch_bounds__(MV_WARPS * 32) k_mv_bf16_rows(mv_job j, const float *__restrict__ x)
{
	sk_pdl_wait();
	const mv_rows g = rows_at<RPW, WPR>(j);
	const sk_cuda_weight &w = *g.w;
	const int64_t in = w.cols, row0 = g.row0, out = g.out;
	float acc[NR][RPW] = {};
	if (out) {
#pragma unroll 2
		for (int64_t ch = g.ch0; ch < in / 8; ch += 32 * WPR) {
			uint4 v[RPW];
#pragma unroll
			for (int r = 0; r < RPW; r++) {
				int64_t row = row0 + r < out ? row0 + r : out - 1;
				v[r] = __ldg(reinterpret_cast<const uint4 *>(w.bf16 + row * in) + ch);
			}
#pragma unroll
			for (int i = 0; i < NR; i++) {
				const float4 *xv = reinterpret_cast<const float4 *>(x + i * in + ch * 8);
				float4 a = xv[0], b = xv[1];
#pragma unroll
				for (int r = 0; r < RPW; r++) {
					const uint32_t u[4] = { v[r].x, v[r].y, v[r].z, v[r].w };
					float wv[8];
#pragma unroll
					for (int k = 0; k < 4; k++) {
						wv[2 * k] = __uint_as_float(u[k] << 16);
						wv[2 * k + 1] = __uint_as_float(u[k] & 0xffff0000u);
					}
					acc[i][r] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x +
					             wv[5] * b.y + wv[6] * b.z + wv[7] * b.w;
				}
			}
		}
	}
	rows_store<NR, RPW, WPR>(acc, row0, out, g.y);
}

// Any shape: element by element.
template <int NR, int WPR>
__global__ static void __launch_bounds__(MV_WARPS * 32) k_mv_any(mv_job j, const float *__restrict__ x)
{
	sk_pdl_wait();
	int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
	int64_t row, out;
	int which = mv_locate(j, WPR, &row, &out);
	const sk_cuda_weight &w = j.w[which];
	int64_t in = w.cols;
	float *__restrict__ y = j.y[which];
	float acc[NR];
#pragma unroll
	for (int i = 0; i < NR; i++)
		acc[i] = 0;
	if (row < out)
		for (int64_t k = (wp % WPR) * 32 + lane; k < in; k += 32 * WPR) {
			float wv = w_at(w, row * in + k);
#pragma unroll
			for (int i = 0; i < NR; i++)
				acc[i] += wv * x[i * in + k];
		}
	mv_store<NR, WPR>(acc, row, out, y);
}

static int mv_fast(const sk_cuda_weight *w, const float *x)
{
	if (((uintptr_t)x & 15) != 0)
		return 0;
	if (w->kind == SK_CUDA_W_BF16)
		return w->cols % 8 == 0 && ((uintptr_t)w->bf16 & 15) == 0;
	return w->cols % 32 == 0 && ((uintptr_t)w->packed & 15) == 0;
}

template <int NR, int WPR>
static void mv_launch2(sk_cuda *c, const mv_job &j, const float *x)
{
	int64_t total = j.w[0].rows + (j.n > 1 ? j.w[1].rows : 0);
	unsigned blocks = sk_blocks(total, MV_WARPS / WPR);
	int fast = mv_fast(&j.w[0], x) && (j.n == 1 || mv_fast(&j.w[1], x));
	if (fast && j.w[0].kind == SK_CUDA_W_BF16)
		sk_launch(c, k_mv_bf16<NR, WPR>, blocks, MV_WARPS * 32, 0, j, x);
	else if (fast)
		sk_launch(c, k_mv_nf4<NR, WPR>, blocks, MV_WARPS * 32, 0, j, x);
	else
		sk_launch(c, k_mv_any<NR, WPR>, blocks, MV_WARPS * 32, 0, j, x);
}

// Several rows a warp (the inputs read once for all of them) while that
// still leaves two blocks an SM (one for a row a warp: fewer rows go to the
// kernels that split a row's columns over warps). RPW divides the first
// weight's rows, so that no warp's rows straddle the two weights.
template <int NR, int RPW, int WPR>
static int mv_launch_rows(sk_cuda *c, const mv_job &j, const float *x)
{
	int64_t total = j.w[0].rows + (j.n > 1 ? j.w[1].rows : 0);
	int64_t groups = (total + RPW - 1) / RPW, per_block = MV_WARPS / WPR;
	int64_t blocks = (groups + per_block - 1) / per_block;
	// two blocks an SM at least; a row a warp: one (fewer rows go to the column-split kernels above)
	int one = RPW == 1 && WPR == 1;
	if (j.w[0].rows % RPW != 0 || blocks < (int64_t)c->sms * (one ? 1 : 2))
		return 0;
	if (j.w[0].kind == SK_CUDA_W_BF16)
		sk_launch(c, k_mv_bf16_rows<NR, RPW, WPR>, (unsigned)blocks, MV_WARPS * 32, 0, j, x);
	else
		sk_launch(c, k_mv_nf4_rows<NR, RPW, WPR>, (unsigned)blocks, MV_WARPS * 32, 0, j, x);
	return 1;
}

// Whole rows a warp when a row gives each lane a full chunk (1,024 NF4
// codes or 256 bf16 weights a row and more) and the rows fill the GPU, as
// many rows a warp as keep it busy; long rows (16 chunks a lane and more:
// the down projection) split over 4 warps a row group, so that more loads
// are in flight; else the kernels above, where 8 warps share a row when
// there are few rows.
template <int NR>
static void mv_launch(sk_cuda *c, const mv_job &j, const float *x)
{
	int64_t total = j.w[0].rows + (j.n > 1 ? j.w[1].rows : 0);
	int fast = mv_fast(&j.w[0], x) && (j.n == 1 || mv_fast(&j.w[1], x));
	int64_t per_chunk = j.w[0].kind == SK_CUDA_W_BF16 ? 8 : 32;
	int64_t cols = j.n > 1 && j.w[1].cols < j.w[0].cols ? j.w[1].cols : j.w[0].cols;
	int64_t lane_chunks = cols / per_chunk / 32;
	if (fast && lane_chunks >= 16 &&
	    (mv_launch_rows<NR, 2, 4>(c, j, x) || mv_launch_rows<NR, 1, 4>(c, j, x)))
		return;
	if (fast && lane_chunks >= 1 &&
	    (mv_launch_rows<NR, 4, 1>(c, j, x) || mv_launch_rows<NR, 2, 1>(c, j, x) || mv_launch_rows<NR, 1, 1>(c, j, x)))
		return;
	if (total >= (int64_t)c->sms * 64)
		mv_launch2<NR, 1>(c, j, x);
	else
		mv_launch2<NR, 8>(c, j, x);
}

// ---- NF4 on 8-bit activations (SK_CUDA_NF4_Q8=1): the CPU backend's
// inference arithmetic (engine/backend/backend_cpu_q8.h). Each input row is
// quantized in blocks of 32 (d = max|x| / 127, q = x · 127 / max|x| rounded
// to even), every weight code becomes its 8-bit level, and a block's
// products are summed in integers (dp4a) and scaled once: (absmax / 127 ·
// d) · Σ level·q. Four codes become four levels with three byte
// permutations and no memory lookups, and the activations are a quarter
// of the bytes fp32 ones are: fewer instructions a weight than the fp32
// kernels above, which are bound by theirs. ----

// x [n][in] (in % 32 == 0) to q [n][in] and d [n][in / 32], a warp a block
// of 32, the float operations of the CPU's quantizer. Each pair of values
// is stored swapped (q[k ^ 1]): the order in which nf4_q8_levels4 gives the
// levels of a word of codes.
__global__ static void k_q8_quantize(const float *__restrict__ x, int64_t blocks, int8_t *__restrict__ q,
                                     float *__restrict__ d)
{
	sk_pdl_wait();
	int lane = threadIdx.x & 31;
	int64_t b = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
	if (b >= blocks)
		return; // the warp's lanes share b: whole warps leave
	float v = x[b * 32 + lane];
	float amax = sk_warp_max(fabsf(v));
	float id = amax > 0 ? __fdiv_rn(127.0f, amax) : 0.0f;
	int l = __float2int_rn(__fmul_rn(v, id));
	l = l > 127 ? 127 : l < -127 ? -127 : l;
	q[b * 32 + (lane ^ 1)] = (int8_t)l;
	if (lane == 0)
		d[b] = __fdiv_rn(amax, 127.0f);
}

// The levels of four codes given as the nibbles of sel (bits 0-15): the
// low three bits of each pick among levels 0-7 (t0, t1) and 8-15 (t2, t3),
// the fourth between the two. A word u of packed codes holds elements
// 1, 0, 3, 2 in its low 16 bits and 5, 4, 7, 6 in its high ones.
__device__ __forceinline__ int nf4_q8_levels4(uint32_t sel, uint32_t t0, uint32_t t1, uint32_t t2, uint32_t t3)
{
	uint32_t m = sel & 0x7777u;
	uint32_t lo = __byte_perm(t0, t1, m), hi = __byte_perm(t2, t3, m);
	return (int)__byte_perm(lo, hi, 0x3210u | ((sel & 0x8888u) >> 1));
}

// As k_mv_nf4_rows: RPW rows a warp, WPR warps a row group (a slice of the
// columns each); a chunk's levels are made once and used for all NR input
// rows, whose 32 quantized values (two 16-byte loads) stay in registers.
template <int NR, int RPW, int WPR>
__global__ static void __launch_bounds__(MV_WARPS * 32)
	k_mv_nf4_q8(mv_job j, const int8_t *__restrict__ xq, const float *__restrict__ xd)
{
	sk_pdl_wait();
	__shared__ float dmap[256];
	for (int i = threadIdx.x; i < 256; i += blockDim.x)
		dmap[i] = sk_dmap_g[i];
	__syncthreads();
	const uint32_t t0 = sk_q8_lut[0], t1 = sk_q8_lut[1], t2 = sk_q8_lut[2], t3 = sk_q8_lut[3];
	const mv_rows g = rows_at<RPW, WPR>(j);
	const sk_cuda_weight &w = *g.w;
	const int64_t in = w.cols, row0 = g.row0, out = g.out;
	float acc[NR][RPW] = {};
	if (out) {
		const int64_t nch = in / 32;
		for (int64_t ch = g.ch0; ch < nch; ch += 32 * WPR) {
			uint4 v[RPW];
			float dw[RPW];
			nf4_load_rows<RPW>(w, row0, out, ch, dmap, v, dw);
#pragma unroll
			for (int r = 0; r < RPW; r++)
				dw[r] = __fmul_rn(dw[r], 1.0f / 127.0f); // the 8-bit levels are 127 times the code values
			int qw[NR][8];
			float dx[NR];
#pragma unroll
			for (int i = 0; i < NR; i++) {
				const int4 *qp = reinterpret_cast<const int4 *>(xq + i * in + ch * 32);
				int4 a = __ldg(qp), b = __ldg(qp + 1);
				qw[i][0] = a.x, qw[i][1] = a.y, qw[i][2] = a.z, qw[i][3] = a.w;
				qw[i][4] = b.x, qw[i][5] = b.y, qw[i][6] = b.z, qw[i][7] = b.w;
				dx[i] = __ldg(xd + i * nch + ch);
			}
#pragma unroll
			for (int r = 0; r < RPW; r++) {
				const uint32_t u[4] = { v[r].x, v[r].y, v[r].z, v[r].w };
				int lv[8];
#pragma unroll
				for (int k = 0; k < 4; k++) {
					lv[2 * k] = nf4_q8_levels4(u[k] & 0xffffu, t0, t1, t2, t3);
					lv[2 * k + 1] = nf4_q8_levels4(u[k] >> 16, t0, t1, t2, t3);
				}
#pragma unroll
				for (int i = 0; i < NR; i++) {
					int s = 0;
#pragma unroll
					for (int k = 0; k < 8; k++)
						s = __dp4a(lv[k], qw[i][k], s);
					acc[i][r] = __fadd_rn(acc[i][r], __fmul_rn(__fmul_rn(dw[r], dx[i]), (float)s));
				}
			}
		}
	}
	rows_store<NR, RPW, WPR>(acc, row0, out, g.y);
}

// Launches k_mv_nf4_q8 with RPW rows a warp and WPR warps a row group when
// RPW divides the first weight's rows and (unless force) the blocks fill
// the GPU twice over (once for a row a warp).
template <int NR, int RPW, int WPR>
static int q8_launch_rows(sk_cuda *c, const mv_job &j, const int8_t *xq, const float *xd, int force)
{
	int64_t total = j.w[0].rows + (j.n > 1 ? j.w[1].rows : 0);
	int64_t groups = (total + RPW - 1) / RPW, per_block = MV_WARPS / WPR;
	int64_t blocks = (groups + per_block - 1) / per_block;
	int one = RPW == 1 && WPR == 1;
	if (j.w[0].rows % RPW != 0 || (!force && blocks < (int64_t)c->sms * (one ? 1 : 2)))
		return 0;
	sk_launch(c, k_mv_nf4_q8<NR, RPW, WPR>, (unsigned)blocks, MV_WARPS * 32, 0, j, xq, xd);
	return 1;
}

// The shapes' choice of mv_launch, with fewer rows a warp for more input
// rows (their quantized values are held in registers).
template <int NR>
static void q8_launch(sk_cuda *c, const mv_job &j, const int8_t *xq, const float *xd)
{
	int64_t lane_chunks = j.w[0].cols / 32 / 32;
	if (lane_chunks >= 16 &&
	    (q8_launch_rows<NR, 2, 4>(c, j, xq, xd, 0) || q8_launch_rows<NR, 1, 4>(c, j, xq, xd, 0)))
		return;
	if constexpr (NR <= 4) // four rows' levels and NR rows' values: too many registers past 4
		if (q8_launch_rows<NR, 4, 1>(c, j, xq, xd, 0))
			return;
	if (q8_launch_rows<NR, 2, 1>(c, j, xq, xd, 0) || q8_launch_rows<NR, 1, 1>(c, j, xq, xd, 0))
		return;
	q8_launch_rows<NR, 1, 8>(c, j, xq, xd, 1); // few rows: a block's 8 warps share each
}

// NF4 weights whose rows the 16-byte loads can stream (both, for a pair)
static int q8_fits(const sk_cuda *c, const mv_job &j, const float *x)
{
	if (!c->nf4_q8 || ((uintptr_t)x & 15) != 0)
		return 0;
	for (int k = 0; k < j.n; k++)
		if (j.w[k].kind != SK_CUDA_W_NF4 || j.w[k].cols % 32 != 0 || ((uintptr_t)j.w[k].packed & 15) != 0 ||
		    j.w[k].cols != j.w[0].cols)
			return 0;
	return 1;
}

// x quantized into the scratch, then the products: 0, or -1 when the
// scratch could not be had (the caller takes the fp32 kernels)
static int matvec_q8(sk_cuda *c, const mv_job &j, const float *x, int64_t n)
{
	int64_t in = j.w[0].cols;
	size_t qb = ((size_t)(n * in) + 255) & ~(size_t)255;
	char *s = (char *)sk_cuda_scratch(c, qb + (size_t)(n * (in / 32)) * sizeof(float));
	if (!s)
		return -1;
	int8_t *xq = (int8_t *)s;
	float *xd = (float *)(s + qb);
	int64_t blocks = n * (in / 32);
	sk_launch(c, k_q8_quantize, sk_blocks(blocks * 32, 256), 256, 0, x, blocks, xq, xd);
	switch (n) {
	case 1: q8_launch<1>(c, j, xq, xd); break;
	case 2: q8_launch<2>(c, j, xq, xd); break;
	case 3: q8_launch<3>(c, j, xq, xd); break;
	case 4: q8_launch<4>(c, j, xq, xd); break;
	case 5: q8_launch<5>(c, j, xq, xd); break;
	case 6: q8_launch<6>(c, j, xq, xd); break;
	case 7: q8_launch<7>(c, j, xq, xd); break;
	default: q8_launch<8>(c, j, xq, xd); break;
	}
	return 0;
}

static void matvec_job(sk_cuda *c, const mv_job &j, const float *x, int64_t n)
{
	if (q8_fits(c, j, x)) {
		if (matvec_q8(c, j, x, n) == 0)
			return;
		sk_cuda_check(c); // no scratch (during a recording): the fp32 kernels instead
	}
	switch (n) {
	case 1: mv_launch<1>(c, j, x); break;
	case 2: mv_launch<2>(c, j, x); break;
	case 3: mv_launch<3>(c, j, x); break;
	case 4: mv_launch<4>(c, j, x); break;
	case 5: mv_launch<5>(c, j, x); break;
	case 6: mv_launch<6>(c, j, x); break;
	case 7: mv_launch<7>(c, j, x); break;
	default: mv_launch<8>(c, j, x); break;
	}
}

static void matvec(sk_cuda *c, const sk_cuda_weight *w, const float *x, int64_t n, float *y)
{
	mv_job j;
	memset(&j, 0, sizeof j);
	j.w[0] = *w;
	j.y[0] = y;
	j.n = 1;
	matvec_job(c, j, x, n);
}

// ---- matrix products through cuBLASLt ----

__global__ static void k_to_bf16(const float *__restrict__ x, int64_t n, __nv_bfloat16 *__restrict__ y)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = __float2bfloat16_rn(x[i]);
}

// NF4 to bf16, 16 values (8 bytes, one quarter of a 64-value block) a
// thread, the code table and the absmax map in shared memory: in constant
// memory the lanes' different codes would serialise the lookups. Element e
// first + e (row e / cols of the part, column e % cols) goes to y[row · ld +
// column]; ld > cols leaves room after each row (sk_cuda_linear_lora_fold),
// and needs cols % 16 == 0. first (a multiple of 16) starts a part of the
// weight (the backward's row chunks).
__global__ static void k_nf4_to_bf16(sk_cuda_weight w, int64_t first, int64_t n, int64_t cols, int64_t ld,
                                     __nv_bfloat16 *__restrict__ y)
{
	sk_pdl_wait();
	__shared__ float lut[16], dmap[256];
	nf4_tables(lut, dmap);
	int64_t e0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * 16;
	if (e0 >= n)
		return;
	int64_t g0 = first + e0; // the element in the whole weight
	float am = nf4_absmax_sh(w, g0 >> 6, dmap);
	if (ld != cols)
		y += (e0 / cols) * (ld - cols); // whole 16-value runs lie in one row
	if (e0 + 16 > n) {
		for (int64_t e = e0; e < n; e++) {
			uint8_t byte = w.packed[(first + e) >> 1];
			y[e] = __float2bfloat16_rn(__fmul_rn(lut[((first + e) & 1) ? (byte & 15) : (byte >> 4)], am));
		}
		return;
	}
	uint2 q = *(const uint2 *)(w.packed + (g0 >> 1));
	uint32_t words[2] = { q.x, q.y };
	__align__(16) __nv_bfloat16 v[16];
#pragma unroll
	for (int k = 0; k < 8; k++) {
		uint32_t byte = (words[k >> 2] >> (8 * (k & 3))) & 0xff;
		v[2 * k] = __float2bfloat16_rn(__fmul_rn(lut[byte >> 4], am));
		v[2 * k + 1] = __float2bfloat16_rn(__fmul_rn(lut[byte & 15], am));
	}
	uint4 *dst = (uint4 *)(y + e0);
	dst[0] = ((const uint4 *)v)[0];
	dst[1] = ((const uint4 *)v)[1];
}

void sk_cuda_nf4_to_bf16(sk_cuda *c, const sk_cuda_weight *w, int64_t first, int64_t n, int64_t cols, int64_t ld,
                         __nv_bfloat16 *d)
{
	sk_launch(c, k_nf4_to_bf16, sk_blocks((n + 15) / 16, 256), 256, 0, *w, first, n, cols, ld, d);
}

void sk_cuda_to_bf16(sk_cuda *c, const float *x, int64_t n, __nv_bfloat16 *y)
{
	sk_launch(c, k_to_bf16, sk_blocks(n, 256), 256, 0, x, n, y);
}

// y[n][out] = x · Wᵀ: in column-major terms yᵀ (out x n) = (W as in x out)ᵀ · (x as in x n)
static int gemm(sk_cuda *c, const __nv_bfloat16 *W, const __nv_bfloat16 *X, int64_t n, int64_t out, int64_t in,
                float *Y)
{
	sk_cuda_gemm_shape s = { out, n, in, in, in, out, 1, 0, 1, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, s, 1.0f, W, X, 0.0f, Y);
}

static int linear_gemm(sk_cuda *c, const sk_cuda_weight *w, const float *x, int64_t n, float *y)
{
	int64_t out = w->rows, in = w->cols;
	size_t xb = ((size_t)(n * in) * 2 + 255) & ~(size_t)255;
	size_t wb = w->kind == SK_CUDA_W_NF4 ? (size_t)(out * in) * 2 : 0;
	char *s = (char *)sk_cuda_scratch(c, xb + wb);
	if (!s)
		return -1;
	__nv_bfloat16 *xh = (__nv_bfloat16 *)s;
	const __nv_bfloat16 *wh = (const __nv_bfloat16 *)w->bf16;
	sk_cuda_to_bf16(c, x, n * in, xh);
	if (sk_cuda_launched(c, "linear: x to bf16") != 0)
		return -1;
	if (w->kind == SK_CUDA_W_NF4) {
		__nv_bfloat16 *d = (__nv_bfloat16 *)(s + xb);
		sk_cuda_nf4_to_bf16(c, w, 0, out * in, in, in, d);
		wh = d;
		if (sk_cuda_launched(c, "linear: NF4 weight to bf16") != 0)
			return -1;
	}
	return gemm(c, wh, xh, n, out, in, y);
}

// ---- LoRA: t = A x_i (rank r) on flagged rows, then y_i += scale · B t ----

__global__ static void k_lora_a(const float *__restrict__ A, int r, int64_t in, const float *__restrict__ x,
                                const uint8_t *__restrict__ rows, float *__restrict__ t)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	int64_t i = blockIdx.x;
	int j = blockIdx.y;
	if (rows && !rows[i])
		return;
	float s = 0;
	for (int64_t k = threadIdx.x; k < in; k += blockDim.x)
		s += A[j * in + k] * x[i * in + k];
	s = sk_block_sum(s, sh);
	if (threadIdx.x == 0)
		t[i * r + j] = s;
}

__global__ static void k_lora_b(const float *__restrict__ B, int r, int64_t n, int64_t out, float scale,
                                const uint8_t *__restrict__ rows, const float *__restrict__ t, float *y)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * out)
		return;
	int64_t i = e / out, o = e - i * out;
	if (rows && !rows[i])
		return;
	float s = 0;
	for (int j = 0; j < r; j++)
		s += B[o * r + j] * t[i * r + j];
	y[e] += scale * s;
}

// The buffer of LoRA intermediates (t = A x), grown to need bytes; NULL
// (recorded) when it cannot be, or would have to grow during a recording.
float *sk_cuda_lora_ws(sk_cuda *c, size_t need)
{
	if (need > c->lora_cap) {
		if (c->capturing) {
			c->capture_spoiled = 1;
			sk_cuda_fail(c, "LoRA buffer grown during a recording");
			return NULL;
		}
		sk_cuda_record_drop(c); /* recordings name the old buffer */
		sk_cuda_free(c, c->lora_ws);
		c->lora_ws = sk_cuda_alloc(c, need, "LoRA intermediates");
		c->lora_cap = c->lora_ws ? need : 0;
	}
	return (float *)c->lora_ws;
}

static int lora(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float *y, const uint8_t *rows)
{
	float *t = sk_cuda_lora_ws(c, (size_t)(n * l->r) * sizeof(float));
	if (!t)
		return -1;
	sk_launch(c, k_lora_a, dim3((unsigned)n, (unsigned)l->r), 128, 0, l->A, l->r, l->in, x, rows, t);
	sk_launch(c, k_lora_b, sk_blocks(n * l->out, 256), 256, 0, l->B, l->r, n, l->out, l->scale, rows, t, y);
	return sk_cuda_launched(c, "LoRA");
}

extern "C" int sk_cuda_linear2(sk_cuda *c, const sk_cuda_weight *w1, const sk_cuda_weight *w2, const float *x,
                               int64_t n, float *y1, float *y2, const sk_cuda_lora *l1, const sk_cuda_lora *l2,
                               const uint8_t *rows)
{
	// one launch for both when they are read a row at a time alike; else one each
	if (n <= 0 || n > MV_ROWS || w1->kind != w2->kind || w1->cols != w2->cols || w1->cols % 8 != 0) {
		if (sk_cuda_linear(c, w1, x, n, y1, l1, rows) != 0)
			return -1;
		return sk_cuda_linear(c, w2, x, n, y2, l2, rows);
	}
	mv_job j;
	memset(&j, 0, sizeof j);
	j.w[0] = *w1;
	j.w[1] = *w2;
	j.y[0] = y1;
	j.y[1] = y2;
	j.n = 2;
	matvec_job(c, j, x, n);
	if (sk_cuda_launched(c, "linear") != 0)
		return sk_cuda_check(c);
	if (l1 && lora(c, l1, x, n, y1, rows) != 0)
		return sk_cuda_check(c);
	if (l2 && lora(c, l2, x, n, y2, rows) != 0)
		return sk_cuda_check(c);
	return sk_cuda_check(c);
}

extern "C" int sk_cuda_linear(sk_cuda *c, const sk_cuda_weight *w, const float *x, int64_t n, float *y,
                              const sk_cuda_lora *l, const uint8_t *rows)
{
	if (n <= 0)
		return sk_cuda_check(c);
	if (n <= MV_ROWS || (w->cols % 8) != 0 || c->exact) {
		// few rows, a row width cuBLASLt's bf16 layout would not align, or fp32 asked for: read W once per 8 rows
		for (int64_t i = 0; i < n; i += MV_ROWS) {
			int64_t k = n - i < MV_ROWS ? n - i : MV_ROWS;
			matvec(c, w, x + i * w->cols, k, y + i * w->rows);
		}
		sk_cuda_launched(c, "linear");
	} else if (linear_gemm(c, w, x, n, y) != 0) {
		return sk_cuda_check(c);
	}
	if (l && lora(c, l, x, n, y, rows) != 0)
		return sk_cuda_check(c);
	return sk_cuda_check(c);
}

// ---- the training backward's product for any shape ----

// Any shape or alignment: one thread per element of dx, W read element by
// element in fp32 (bf16 exactly, NF4 dequantized as in the forward).
__global__ static void k_linear_bwd_any(sk_cuda_weight w, const float *__restrict__ dy, int64_t n, float *dx,
                                        int accumulate)
{
	sk_pdl_wait();
	int64_t out = w.rows, in = w.cols;
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * in)
		return;
	int64_t i = e / in, k = e - i * in;
	const float *g = dy + i * out;
	float s = 0;
	for (int64_t o = 0; o < out; o++)
		s += g[o] * w_at(w, o * in + k);
	dx[e] = accumulate ? dx[e] + s : s;
}

void sk_cuda_linear_bwd_any(sk_cuda *c, const sk_cuda_weight *w, const float *dy, int64_t n, float *dx, int accumulate)
{
	sk_launch(c, k_linear_bwd_any, sk_blocks(n * w->cols, 256), 256, 0, *w, dy, n, dx, accumulate);
}
