// y[n][out] = x[n][in] · Wᵀ for bf16 and NF4 weights, plus the LoRA branch
// on flagged rows. Decoding (few rows) is bound by reading W: a warp per
// output row streams it once in 16-byte loads and keeps one sum per input
// row. Larger batches go to cuBLASLt on bf16 operands (NF4 dequantized into
// scratch first) with fp32 accumulation and output. The training backward
// dx (+)= dy · W takes the same operands through cuBLASLt (W untransposed),
// or an element-wise fp32 kernel for shapes cuBLASLt's layout would not align.
#include "kernels/launch.cuh"

#include <cuda_bf16.h>
#include <string.h>

#define MV_ROWS 8   /* input rows the matrix-vector kernels take at once */
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

// n elements of the NF4 weight from first (a multiple of 16) as bf16 into d
// (packed bytes 8-byte aligned: device allocations are; d from the scratch,
// 256-byte aligned).
static void nf4_to_bf16(sk_cuda *c, const sk_cuda_weight *w, int64_t first, int64_t n, __nv_bfloat16 *d)
{
	sk_launch(c, k_nf4_to_bf16, sk_blocks((n + 15) / 16, 256), 256, 0, *w, first, n, w->cols, w->cols, d);
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
	sk_launch(c, k_to_bf16, sk_blocks(n * in, 256), 256, 0, x, n * in, xh);
	if (sk_cuda_launched(c, "linear: x to bf16") != 0)
		return -1;
	if (w->kind == SK_CUDA_W_NF4) {
		__nv_bfloat16 *d = (__nv_bfloat16 *)(s + xb);
		nf4_to_bf16(c, w, 0, out * in, d);
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
static float *lora_ws(sk_cuda *c, size_t need)
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
	float *t = lora_ws(c, (size_t)(n * l->r) * sizeof(float));
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

// ---- a training product with its LoRA branch in one GEMM (SK_CUDA_LORA_FOLD=1) ----
//
// y = x Wᵀ + scale · t Bᵀ with t = drop(x) Aᵀ is one product over in + 8
// columns: [x | t] · [W | scale · B]ᵀ, t and scale · B in bf16 like the
// other operands and zero past rank r. The branch then costs no pass over
// y of its own (lora_fwd reads and writes the fp32 output once more, which
// was most of its time: a fifth of a training micro-step with lora_bwd).
#define FOLD_COLS 8

// xh[i] = [bf16(x[i]) | bf16(t[i]) | 0 ...], rows of ld = in + FOLD_COLS
__global__ static void k_fold_x(const float *__restrict__ x, const float *__restrict__ t, int64_t n, int64_t in, int r,
                                __nv_bfloat16 *__restrict__ xh)
{
	sk_pdl_wait();
	int64_t ld = in + FOLD_COLS, e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * ld)
		return;
	int64_t i = e / ld, k = e - i * ld, j = k - in;
	float v = k < in ? x[i * in + k] : j < r ? t[i * r + j] : 0.0f;
	xh[e] = __float2bfloat16_rn(v);
}

// The last FOLD_COLS columns of each row of wh: bf16(scale · B[o]), zero past r;
// with A, also the FOLD_COLS rows after the out rows: bf16(A[j]) in their
// first in columns, zero past r (the backward's rank-r update of dx as more
// rows of its product, SK_CUDA_LORA_DX_FOLD=1)
__global__ static void k_fold_b(const float *__restrict__ B, float scale, int64_t out, int64_t in, int r,
                                const float *__restrict__ A, __nv_bfloat16 *__restrict__ wh)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, K = in + FOLD_COLS;
	if (e < out * FOLD_COLS) {
		int64_t o = e / FOLD_COLS;
		int j = (int)(e - o * FOLD_COLS);
		wh[o * K + in + j] = __float2bfloat16_rn(j < r ? scale * B[o * r + j] : 0.0f);
		return;
	}
	e -= out * FOLD_COLS;
	if (!A || e >= FOLD_COLS * in)
		return;
	int64_t j = e / in, k = e - j * in;
	wh[(out + j) * K + k] = __float2bfloat16_rn(j < r ? A[j * in + k] : 0.0f);
}

// Bytes of a kept NF4 weight's bf16 copy (weight_cache.cu): out rows of ld
// in + FOLD_COLS, then FOLD_COLS rows for A
static size_t kept_bytes(int64_t out, int64_t in)
{
	return (size_t)((out + FOLD_COLS) * (in + FOLD_COLS)) * 2;
}

// rows of cols fp32 values (ld ldx) to bf16 rows of ld ldy: blockIdx.y steps
// through the rows, so no element's row is found by a 64-bit division; four
// values (16 bytes in, 8 out) a thread where the rows allow (v4)
template <bool v4>
__global__ static void k_rows_to_bf16(const float *__restrict__ x, int64_t n, int64_t cols, int64_t ldx,
                                      __nv_bfloat16 *__restrict__ y, int64_t ldy)
{
	sk_pdl_wait();
	int64_t k = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * (v4 ? 4 : 1);
	if (k >= cols)
		return;
	for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
		if (v4) {
			float4 v = *(const float4 *)(x + i * ldx + k);
			__align__(8) __nv_bfloat16 h[4] = { __float2bfloat16_rn(v.x), __float2bfloat16_rn(v.y),
				                            __float2bfloat16_rn(v.z), __float2bfloat16_rn(v.w) };
			*(uint2 *)(y + i * ldy + k) = *(const uint2 *)h;
		} else {
			y[i * ldy + k] = __float2bfloat16_rn(x[i * ldx + k]);
		}
	}
}

static void rows_to_bf16(sk_cuda *c, const float *x, int64_t n, int64_t cols, int64_t ldx, __nv_bfloat16 *y,
                         int64_t ldy)
{
	int v4 = cols % 4 == 0 && ldx % 4 == 0 && ldy % 4 == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)y & 7) == 0;
	int64_t per = v4 ? 4 : 1, th = (cols + per - 1) / per;
	// narrow rows (dt's eight columns) take a warp a row, not a block of mostly idle threads
	unsigned block = th >= 256 ? 256 : (unsigned)((th + 31) / 32 * 32);
	dim3 grid((unsigned)((th + block - 1) / block), (unsigned)(n < 65535 ? n : 65535));
	if (n <= 0 || cols <= 0)
		return;
	if (v4)
		sk_launch(c, k_rows_to_bf16<true>, grid, block, 0, x, n, cols, ldx, y, ldy);
	else
		sk_launch(c, k_rows_to_bf16<false>, grid, block, 0, x, n, cols, ldx, y, ldy);
}

// A bf16 weight's rows copied into rows of ld = in + FOLD_COLS
__global__ static void k_copy_rows_bf16(const uint16_t *__restrict__ w, int64_t out, int64_t in,
                                        uint16_t *__restrict__ wh)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= out * in)
		return;
	int64_t o = e / in;
	wh[o * (in + FOLD_COLS) + (e - o * in)] = w[e];
}

// Without dropout, [x | t] in one pass: FOLD_XT_ROWS rows a block, each thread
// four columns at a time, converting x to bf16 (WX) and summing t = x Aᵀ for
// the rows as it goes (A's float4 read once for all the block's rows); the
// block's partial sums then reduced, bf16(t) written to th (rows of ldt:
// after each row of xh in the forward, rows of 8 in the backward), zero
// past r. It replaces k_fold_x and the thin fp32 product that made t, which
// read x once more (SK_CUDA_FOLD_XT=1). Needs in % 4 == 0 and x, A 16-byte aligned.
#define FOLD_XT_ROWS 4
template <bool WX>
__global__ static void __launch_bounds__(256) k_fold_xt(const float *__restrict__ x, const float *__restrict__ A, int64_t n,
                                                        int64_t in, int r, __nv_bfloat16 *__restrict__ xh,
                                                        __nv_bfloat16 *__restrict__ th, int64_t ldt)
{
	sk_pdl_wait();
	__shared__ float red[8][FOLD_XT_ROWS * FOLD_COLS];
	const int64_t i0 = (int64_t)blockIdx.x * FOLD_XT_ROWS, K = in + FOLD_COLS;
	float acc[FOLD_XT_ROWS][FOLD_COLS];
#pragma unroll
	for (int q = 0; q < FOLD_XT_ROWS; q++)
#pragma unroll
		for (int j = 0; j < FOLD_COLS; j++)
			acc[q][j] = 0.0f;
	for (int64_t k = (int64_t)threadIdx.x * 4; k < in; k += (int64_t)blockDim.x * 4) {
		float4 a[FOLD_COLS];
#pragma unroll
		for (int j = 0; j < FOLD_COLS; j++)
			a[j] = j < r ? *(const float4 *)(A + j * in + k) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
		for (int q = 0; q < FOLD_XT_ROWS; q++) {
			if (i0 + q >= n)
				break;
			float4 v = *(const float4 *)(x + (i0 + q) * in + k);
			if (WX) {
				__align__(8) __nv_bfloat16 h[4] = { __float2bfloat16_rn(v.x), __float2bfloat16_rn(v.y),
					                            __float2bfloat16_rn(v.z), __float2bfloat16_rn(v.w) };
				*(uint2 *)(xh + (i0 + q) * K + k) = *(const uint2 *)h;
			}
#pragma unroll
			for (int j = 0; j < FOLD_COLS; j++)
				acc[q][j] += v.x * a[j].x + v.y * a[j].y + v.z * a[j].z + v.w * a[j].w;
		}
	}
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
	for (int q = 0; q < FOLD_XT_ROWS; q++)
#pragma unroll
		for (int j = 0; j < FOLD_COLS; j++) {
			float v = sk_warp_sum(acc[q][j]);
			if (lane == 0)
				red[warp][q * FOLD_COLS + j] = v;
		}
	__syncthreads();
	if (threadIdx.x < FOLD_XT_ROWS * FOLD_COLS) {
		int q = threadIdx.x / FOLD_COLS, j = threadIdx.x % FOLD_COLS;
		float v = 0.0f;
		for (int w = 0; w < (int)(blockDim.x >> 5); w++)
			v += red[w][threadIdx.x];
		if (i0 + q < n)
			th[(i0 + q) * ldt + j] = __float2bfloat16_rn(j < r ? v : 0.0f);
	}
}

extern "C" int sk_cuda_linear_lora_fold(sk_cuda *c, const sk_cuda_weight *w, const float *x, int64_t n, float *y,
                                        const sk_cuda_lora *l, float dropout, uint64_t seed)
{
	int64_t out = w->rows, in = w->cols, K = in + FOLD_COLS;
	if (!c->lora_fold || c->exact || n <= MV_ROWS || in % 16 != 0 || !l || l->r < 1 || l->r > FOLD_COLS ||
	    l->in != in || l->out != out || (w->kind == SK_CUDA_W_BF16 && ((uintptr_t)w->bf16 & 15) != 0))
		return 0;
	size_t xb = ((size_t)(n * K) * 2 + 255) & ~(size_t)255;
	const int one_pass = c->fold_xt && dropout <= 0.0f && in % 4 == 0 && ((uintptr_t)x & 15) == 0 &&
	                     ((uintptr_t)l->A & 15) == 0;
	float *t = NULL;
	if (!one_pass) { // t first: with dropout, drop(x) passes through the scratch
		t = lora_ws(c, (size_t)(n * l->r) * sizeof(float));
		if (!t || sk_cuda_lora_a(c, l, x, n, dropout, seed, t) != 0)
			return -1;
	}
	// an NF4 weight's bf16 rows in the weight cache when it is on (SK_CUDA_WCACHE), for the
	// backward to read and for a forward computed again to reuse; else in the scratch
	int kept = 0;
	__nv_bfloat16 *wh = w->kind == SK_CUDA_W_NF4
		? (__nv_bfloat16 *)sk_cuda_wcache_get(c, w->packed, kept_bytes(out, in), &kept) : NULL;
	const float *a_rows = wh && c->lora_dx_fold ? l->A : NULL;
	char *s = (char *)sk_cuda_scratch(c, xb + (wh ? 0 : (size_t)(out * K) * 2));
	if (!s)
		return -1;
	__nv_bfloat16 *xh = (__nv_bfloat16 *)s;
	if (!wh)
		wh = (__nv_bfloat16 *)(s + xb);
	if (one_pass)
		sk_launch(c, k_fold_xt<true>, (unsigned)((n + FOLD_XT_ROWS - 1) / FOLD_XT_ROWS), 256, 0, x, l->A, n, in,
		          l->r, xh, xh + in, K);
	else
		sk_launch(c, k_fold_x, sk_blocks(n * K, 256), 256, 0, x, (const float *)t, n, in, l->r, xh);
	if (sk_cuda_launched(c, "fold: [x | t] to bf16") != 0)
		return -1;
	if (!kept) {
		if (w->kind == SK_CUDA_W_NF4)
			sk_launch(c, k_nf4_to_bf16, sk_blocks((out * in + 15) / 16, 256), 256, 0, *w, (int64_t)0, out * in,
			          in, K, wh);
		else
			sk_launch(c, k_copy_rows_bf16, sk_blocks(out * in, 256), 256, 0, w->bf16, out, in, (uint16_t *)wh);
		if (sk_cuda_launched(c, "fold: weight to bf16") != 0)
			return -1;
	}
	// scale·B's columns (and A's rows) are already in a kept copy this pair was folded into since
	// its last change: a forward computed again under checkpointing skips them
	if (!kept || !c->keep_b || !sk_cuda_wcache_lora_current(c, w->packed, l, a_rows != NULL)) {
		sk_launch(c, k_fold_b, sk_blocks(out * FOLD_COLS + (a_rows ? FOLD_COLS * in : 0), 256), 256, 0, l->B,
		          l->scale, out, in, l->r, a_rows, wh);
		if (sk_cuda_launched(c, "fold: scale B columns") != 0)
			return -1;
		if (w->kind == SK_CUDA_W_NF4)
			sk_cuda_wcache_lora_folded(c, w->packed, l, a_rows != NULL);
	}
	sk_cuda_gemm_shape sh = { out, n, K, K, K, out, 1, 0, 1, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, sh, 1.0f, wh, xh, 0.0f, y) == 0 ? 1 : -1;
}

// ---- backward: dx[n][in] (+)= dy[n][out] · W ----

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

// dxᵀ (in x n) = (W's rows as in x k) · (k columns of dy as k x n, rows of
// ld_dy) on bf16 operands with fp32 accumulation; beta 1 adds to dx.
static int gemm_bwd(sk_cuda *c, const __nv_bfloat16 *W, int64_t ld_w, const __nv_bfloat16 *DY, int64_t ld_dy,
                    int64_t n, int64_t k, int64_t in, float beta, float *DX)
{
	sk_cuda_gemm_shape s = { in, n, k, ld_w, ld_dy, in, 0, 0, 1, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, s, 1.0f, W, DY, beta, DX);
}

// Rows of an NF4 weight [out][in] the backward dequantizes at a time: as
// many as SK_CUDA_NF4_DX_CHUNK elements hold (0: the whole matrix), a
// multiple of 8 so that each chunk's columns of dy start 16-byte aligned.
static int64_t dx_chunk_rows(const sk_cuda *c, int64_t out, int64_t in)
{
	if (c->nf4_dx_chunk <= 0)
		return out;
	int64_t r = c->nf4_dx_chunk / in / 8 * 8;
	return r < 8 ? 8 : r >= out ? out : r;
}

// An NF4 weight's bf16 copy kept by the folded forward (weight_cache.cu), or NULL
static const __nv_bfloat16 *kept_copy(sk_cuda *c, const sk_cuda_weight *w)
{
	return w->kind == SK_CUDA_W_NF4
		? (const __nv_bfloat16 *)sk_cuda_wcache_find(c, w->packed, kept_bytes(w->rows, w->cols)) : NULL;
}

// dx (+)= yh · W from dy's bf16 copy yh: one product over the weight's
// bf16 rows (kept: the folded forward's copy of an NF4 weight when the
// weight cache kept it, rows of ld in + 8), or a sum over row chunks [r0, r0 + k)
// of W, dy[:, r0 : r0 + k] · W[r0 : r0 + k], an NF4 weight's R rows at a
// time dequantized into wbuf. A product with beta 0 reads nothing of dx;
// only a chunked sum that overwrites zeroes dx first (so that nothing it
// held, NaN included, reaches the sum). 0 or -1 (recorded).
static int bwd_products(sk_cuda *c, const sk_cuda_weight *w, const __nv_bfloat16 *kept, const __nv_bfloat16 *yh,
                        int64_t n, float *dx, int accumulate, int64_t R, __nv_bfloat16 *wbuf)
{
	int64_t out = w->rows, in = w->cols;
	if (kept)
		return gemm_bwd(c, kept, in + FOLD_COLS, yh, out, n, out, in, accumulate ? 1.0f : 0.0f, dx);
	if (!accumulate && R < out) {
		cudaError_t e = cudaMemsetAsync(dx, 0, (size_t)(n * in) * sizeof(float), c->stream);
		if (e != cudaSuccess) {
			sk_cuda_fail(c, "linear backward: %s", cudaGetErrorString(e));
			return -1;
		}
	}
	for (int64_t r0 = 0; r0 < out; r0 += R) {
		int64_t k = out - r0 < R ? out - r0 : R;
		const __nv_bfloat16 *wh;
		if (w->kind == SK_CUDA_W_NF4) {
			nf4_to_bf16(c, w, r0 * in, k * in, wbuf);
			wh = wbuf;
			if (sk_cuda_launched(c, "linear backward: NF4 weight to bf16") != 0)
				return -1;
		} else {
			wh = (const __nv_bfloat16 *)w->bf16 + r0 * in;
		}
		if (gemm_bwd(c, wh, in, yh + r0, out, n, k, in, accumulate || r0 > 0 ? 1.0f : 0.0f, dx) != 0)
			return -1;
	}
	return 0;
}

extern "C" int sk_cuda_linear_bwd(sk_cuda *c, const sk_cuda_weight *w, const float *dy, int64_t n, float *dx,
                                  int accumulate)
{
	int64_t out = w->rows, in = w->cols;
	if (n <= 0 || in <= 0)
		return sk_cuda_check(c);
	int gemm_ok = in % 8 == 0 && out % 8 == 0 && ((uintptr_t)dx & 15) == 0 &&
	              (w->kind == SK_CUDA_W_NF4 || ((uintptr_t)w->bf16 & 15) == 0);
	if (!gemm_ok || out <= 0 || c->exact) {
		sk_launch(c, k_linear_bwd_any, sk_blocks(n * in, 256), 256, 0, *w, dy, n, dx, accumulate);
		sk_cuda_launched(c, "linear backward");
		return sk_cuda_check(c);
	}
	// dy in bf16, then (NF4) the weight dequantized to bf16, all of it or R rows at a time
	int64_t R = w->kind == SK_CUDA_W_NF4 ? dx_chunk_rows(c, out, in) : out;
	size_t yb = ((size_t)(n * out) * 2 + 255) & ~(size_t)255;
	size_t wb = w->kind == SK_CUDA_W_NF4 ? (size_t)(R * in) * 2 : 0;
	char *s = (char *)sk_cuda_scratch(c, yb + wb);
	if (!s)
		return sk_cuda_check(c);
	__nv_bfloat16 *yh = (__nv_bfloat16 *)s;
	sk_launch(c, k_to_bf16, sk_blocks(n * out, 256), 256, 0, dy, n * out, yh);
	if (sk_cuda_launched(c, "linear backward: dy to bf16") != 0)
		return sk_cuda_check(c);
	bwd_products(c, w, kept_copy(c, w), yh, n, dx, accumulate, R, (__nv_bfloat16 *)(s + yb));
	return sk_cuda_check(c);
}

// ---- a training product's backward with its LoRA branch's (default; SK_CUDA_LORA_BWD=0: off) ----
//
// dx (+)= dy · W + drop'(dt · A), gB += scale · dyᵀ t, gA += dtᵀ drop(x), with
// t = drop(x) Aᵀ and dt = dy · (scale · B). dy's bf16 copy, made once for dx,
// also feeds the branch's two products over out (dt and gB), on bf16 operands
// like the folded forward's; where lora_bwd read the fp32 dy twice more in
// thin fp32 products. The products over n (gA) and the rank-r update of dx
// stay in fp32.

// What one such backward will read and where its scratch parts lie, decided
// before anything is launched
typedef struct {
	const __nv_bfloat16 *kc;   // the forward's kept bf16 copy of an NF4 weight, or NULL
	int kb;                    // kc's scale·B columns are this pair's current ones
	const __nv_bfloat16 *kept; // SK_CUDA_LORA_DX_FOLD: dx in one product [dy | dt] · [W ; A] over kc, or NULL
	int64_t ldy, R;            // dy's bf16 rows; an NF4 weight's rows dequantized at a time
	size_t at[7], bytes;       // the scratch parts' offsets, and the whole
} lora_bwd_plan;

static int lora_bwd_takes(const sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, int64_t n,
                          const float *gA, const float *gB, const float *dx)
{
	int64_t out = w->rows, in = w->cols;
	return c->lora_bwd && !c->exact && n > 0 && in % 8 == 0 && out % 8 == 0 && ((uintptr_t)dx & 15) == 0 &&
	       (w->kind == SK_CUDA_W_NF4 || ((uintptr_t)w->bf16 & 15) == 0) && l && l->r >= 1 && l->r <= FOLD_COLS &&
	       l->in == in && l->out == out && gA && gB && dx;
}

// own_dy: dy's bf16 rows are made in the scratch (0: the caller hands them in, rows of pl->ldy)
static void lora_bwd_plan_make(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, int64_t n, float p,
                               int own_dy, lora_bwd_plan *pl)
{
	int64_t out = w->rows, in = w->cols;
	pl->R = w->kind == SK_CUDA_W_NF4 ? dx_chunk_rows(c, out, in) : out;
	// the weight kept by the forward with A's rows below it, without dropout: the rank-r update
	// of dx as FOLD_COLS more rows of dx's product, [yh | bf16(dt)] · [W ; A] (the kept copy holds
	// this pair's current scale·B columns, and A's rows with the fold, unless the pair was
	// written since it was folded)
	pl->kc = kept_copy(c, w);
	pl->kb = c->keep_b && pl->kc && sk_cuda_wcache_lora_current(c, w->packed, l, 0);
	pl->kept = c->lora_dx_fold && p <= 0.0f && pl->kc && sk_cuda_wcache_lora_current(c, w->packed, l, 1) ? pl->kc
	                                                                                                        : NULL;
	pl->ldy = pl->kept ? out + FOLD_COLS : out;
	// dy in bf16 (rows of ldy) | an NF4 chunk | bf16(scale · B) [out][8] | bf16(t) [n][8] | t [n][r] |
	// dt [n][8] | drop(x)
	const size_t bytes[6] = { own_dy ? (size_t)(n * pl->ldy) * 2 : 0,
		                  w->kind == SK_CUDA_W_NF4 && !pl->kept ? (size_t)(pl->R * in) * 2 : 0,
		                  (size_t)(out * FOLD_COLS) * 2,
		                  (size_t)(n * FOLD_COLS) * 2,
		                  (size_t)(n * l->r) * 4,
		                  (size_t)(n * FOLD_COLS) * 4 };
	size_t off = 0;
	for (int i = 0; i < 6; i++) {
		pl->at[i] = off;
		off += (bytes[i] + 255) & ~(size_t)255;
	}
	pl->at[6] = off;
	pl->bytes = off + (p > 0.0f ? (size_t)(n * in) * 4 : 0);
}

// The backward on the scratch s laid out by pl; yh: dy's bf16 rows when the
// caller made them (NULL: from dy). 1 or -1 (recorded).
static int lora_bwd_run(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, const lora_bwd_plan *pl,
                        const float *x, const float *dy, __nv_bfloat16 *yh, int64_t n, float p, uint64_t seed,
                        float *gA, float *gB, float *dx, int accumulate, char *s)
{
	int64_t out = w->rows, in = w->cols, ldy = pl->ldy;
	int r = l->r;
	const __nv_bfloat16 *kc = pl->kc, *kept = pl->kept;
	__nv_bfloat16 *wbuf = (__nv_bfloat16 *)(s + pl->at[1]);
	__nv_bfloat16 *bh = (__nv_bfloat16 *)(s + pl->at[2]), *th = (__nv_bfloat16 *)(s + pl->at[3]);
	float *t = (float *)(s + pl->at[4]), *dt = (float *)(s + pl->at[5]), *xd_buf = (float *)(s + pl->at[6]);

	if (!yh) {
		yh = (__nv_bfloat16 *)(s + pl->at[0]);
		if (kept)
			rows_to_bf16(c, dy, n, out, out, yh, ldy);
		else
			sk_launch(c, k_to_bf16, sk_blocks(n * out, 256), 256, 0, dy, n * out, yh);
		if (sk_cuda_launched(c, "linear backward: dy to bf16") != 0)
			return -1;
	}
	if (!kept && bwd_products(c, w, kc, yh, n, dx, accumulate, pl->R, wbuf) != 0)
		return -1;
	// t, then bf16(t) and bf16(scale · B), zero past r (k_fold_x, k_fold_b with no x columns);
	// without dropout bf16(t) in one pass over x (SK_CUDA_FOLD_XT=1, as the forward)
	const float *xd = x;
	if (c->fold_xt && p <= 0.0f && in % 4 == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)l->A & 15) == 0) {
		sk_launch(c, k_fold_xt<false>, (unsigned)((n + FOLD_XT_ROWS - 1) / FOLD_XT_ROWS), 256, 0, x, l->A, n, in, r,
		          (__nv_bfloat16 *)NULL, th, (int64_t)FOLD_COLS);
	} else {
		if (!(xd = sk_cuda_lora_t(c, l, x, n, p, seed, xd_buf, t)))
			return -1;
		sk_launch(c, k_fold_x, sk_blocks(n * FOLD_COLS, 256), 256, 0, (const float *)NULL, (const float *)t, n,
		          (int64_t)0, r, th);
	}
	int64_t ldb = FOLD_COLS;
	if (pl->kb) { // scale·B's columns of the kept copy, rows of in + 8
		bh = (__nv_bfloat16 *)kc + in;
		ldb = in + FOLD_COLS;
	} else {
		sk_launch(c, k_fold_b, sk_blocks(out * FOLD_COLS, 256), 256, 0, l->B, l->scale, out, (int64_t)0, r,
		          (const float *)NULL, bh);
	}
	if (sk_cuda_launched(c, "LoRA backward: t and scale B to bf16") != 0)
		return -1;
	// dt[n][8] = yh · bh: dtᵀ (8 x n) = (bh as 8 x out, ld ldb) · (yh as out x n, ld ldy)
	sk_cuda_gemm_shape sdt = { FOLD_COLS, n, out, ldb, ldy, FOLD_COLS, 0, 0, 1, 0, 1, 0, 0, 0 };
	// gB[out][r] += scale · yhᵀ t: gBᵀ (r x out) += (th as r x n, ld 8) · (yh as out x n, ld ldy)ᵀ
	sk_cuda_gemm_shape sgb = { r, out, n, FOLD_COLS, ldy, r, 0, 1, 1, 0, 1, 0, 0, 0 };
	// gA[r][in] += dtᵀ drop(x): gAᵀ (in x r) += (drop(x) as in x n) · (dt as r x n, ld 8)ᵀ
	sk_cuda_gemm_shape sga = { in, r, n, in, FOLD_COLS, in, 0, 1, 0, 0, 1, 0, 0, 0 };
	if (sk_cuda_matmul(c, sdt, 1.0f, bh, yh, 0.0f, dt) != 0 || sk_cuda_matmul(c, sgb, l->scale, th, yh, 1.0f, gB) != 0 ||
	    sk_cuda_matmul(c, sga, 1.0f, xd, dt, 1.0f, gA) != 0)
		return -1;
	if (kept) { // bf16(dt) after dy's columns (zero past r, as bh is), then dx in one product
		rows_to_bf16(c, dt, n, FOLD_COLS, FOLD_COLS, yh + out, ldy);
		if (sk_cuda_launched(c, "LoRA backward: dt to bf16") != 0)
			return -1;
		return gemm_bwd(c, kept, in + FOLD_COLS, yh, ldy, n, out + FOLD_COLS, in, accumulate ? 1.0f : 0.0f, dx) == 0
			? 1 : -1;
	}
	sk_cuda_lora_dx(c, l, n, p, seed, dt, FOLD_COLS, dx);
	return sk_cuda_launched(c, "LoRA backward") == 0 ? 1 : -1;
}

// An NF4 weight's kept copy made by the backward when no forward left one (a
// checkpointed layer computed again skips the products whose outputs were
// kept): dequantized into the weight cache with scale·B's columns and A's
// rows, as the folded forward leaves it, so that dx and its rank-r update are
// one product. The dequantization costs what the backward's own would. 0 or -1.
static int kept_copy_make(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, float p)
{
	int64_t out = w->rows, in = w->cols, K = in + FOLD_COLS;
	if (w->kind != SK_CUDA_W_NF4 || !c->lora_fold || !c->lora_dx_fold || p > 0.0f || in % 16 != 0 || kept_copy(c, w))
		return 0;
	int hit = 0;
	__nv_bfloat16 *wh = (__nv_bfloat16 *)sk_cuda_wcache_get(c, w->packed, kept_bytes(out, in), &hit);
	if (!wh || hit)
		return 0;
	sk_launch(c, k_nf4_to_bf16, sk_blocks((out * in + 15) / 16, 256), 256, 0, *w, (int64_t)0, out * in, in, K, wh);
	sk_launch(c, k_fold_b, sk_blocks(out * FOLD_COLS + FOLD_COLS * in, 256), 256, 0, l->B, l->scale, out, in, l->r,
	          (const float *)l->A, wh);
	if (sk_cuda_launched(c, "backward: weight to bf16 with B and A folded") != 0)
		return -1;
	sk_cuda_wcache_lora_folded(c, w->packed, l, 1);
	return 0;
}

extern "C" int sk_cuda_linear_lora_bwd(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, const float *x,
                                       const float *dy, int64_t n, float dropout, uint64_t seed, float *gA,
                                       float *gB, float *dx, int accumulate)
{
	if (!lora_bwd_takes(c, w, l, n, gA, gB, dx))
		return 0;
	float p = dropout > 0.0f ? dropout : 0.0f;
	if (kept_copy_make(c, w, l, p) != 0)
		return -1;
	lora_bwd_plan pl;
	lora_bwd_plan_make(c, w, l, n, p, 1, &pl);
	char *s = (char *)sk_cuda_scratch(c, pl.bytes);
	if (!s)
		return -1;
	return lora_bwd_run(c, w, l, &pl, x, dy, NULL, n, p, seed, gA, gB, dx, accumulate, s);
}

// ---- the gated GELU's backward into gate's and up's (default; SK_CUDA_GATED_BWD=0: off) ----
//
// dg and du go from the GELU's backward straight into the two products'
// bf16 operands, in the rows each backward reads: never written in fp32,
// read back and converted (at E4B 2 x 512, 128 MB written, 128 read and
// 64 written again a layer).
extern "C" int sk_cuda_gelu_lora_bwd2(sk_cuda *c, const sk_cuda_gated_bwd *a)
{
	float p = a->dropout > 0.0f ? a->dropout : 0.0f;
	if (!c->gated_bwd)
		return 0;
	for (int k = 0; k < 2; k++)
		if (!lora_bwd_takes(c, a->w[k], a->l[k], a->n, a->gA[k], a->gB[k], a->dx) || a->w[k]->rows != a->dim ||
		    a->w[k]->cols != a->w[0]->cols)
			return 0;
	lora_bwd_plan pl[2];
	size_t hb[2], rest = 0;
	// both copies first: making the second may take the first's cache buffer, and the plans then
	// see that (the first's backward then dequantizes for itself)
	for (int k = 0; k < 2; k++)
		if (kept_copy_make(c, a->w[k], a->l[k], p) != 0)
			return -1;
	for (int k = 0; k < 2; k++) {
		lora_bwd_plan_make(c, a->w[k], a->l[k], a->n, p, 0, &pl[k]);
		hb[k] = ((size_t)(a->n * pl[k].ldy) * 2 + 255) & ~(size_t)255;
		rest = pl[k].bytes > rest ? pl[k].bytes : rest;
	}
	char *s = (char *)sk_cuda_scratch(c, hb[0] + hb[1] + rest);
	if (!s)
		return -1;
	__nv_bfloat16 *hg = (__nv_bfloat16 *)s, *hu = (__nv_bfloat16 *)(s + hb[0]);
	sk_cuda_gelu_mul_bwd_bf16(c, a->g, a->u, a->n, a->dim, a->sparsity_z, a->dh, a->tmp, hg, pl[0].ldy, hu,
	                          pl[1].ldy);
	if (c->failed) // the launch's error is recorded for the op to report
		return -1;
	__nv_bfloat16 *h[2] = { hg, hu };
	for (int k = 0; k < 2; k++)
		if (lora_bwd_run(c, a->w[k], a->l[k], &pl[k], a->x, NULL, h[k], a->n, p, a->seed[k], a->gA[k], a->gB[k],
		                 a->dx, k, s + hb[0] + hb[1]) < 0)
			return -1;
	return 1;
}

