// A training product with its LoRA branch in one GEMM, and the bf16
// operand kernels it shares with the backward (linear_bwd.cu).
#include "kernels/linear_internal.cuh"

// SK_CUDA_LORA_FOLD (default on):
//
// y = x Wᵀ + scale · t Bᵀ with t = drop(x) Aᵀ is one product over in + 8
// columns: [x | t] · [W | scale · B]ᵀ, t and scale · B in bf16 like the
// other operands and zero past rank r. The branch then costs no pass over
// y of its own (lora_fwd reads and writes the fp32 output once more, which
// was most of its time: a fifth of a training micro-step with lora_bwd).

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

void sk_cuda_rows_to_bf16(sk_cuda *c, const float *x, int64_t n, int64_t cols, int64_t ldx, __nv_bfloat16 *y,
                         int64_t ldy)
{
	if (n <= 0 || cols <= 0)
		return;
	int v4 = cols % 4 == 0 && ldx % 4 == 0 && ldy % 4 == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)y & 7) == 0;
	int64_t per = v4 ? 4 : 1, th = (cols + per - 1) / per;
	// narrow rows (dt's eight columns) take a warp a row, not a block of mostly idle threads
	unsigned block = th >= 256 ? 256 : (unsigned)((th + 31) / 32 * 32);
	dim3 grid((unsigned)((th + block - 1) / block), (unsigned)(n < 65535 ? n : 65535));
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

void sk_cuda_fold_x(sk_cuda *c, const float *x, const float *t, int64_t n, int64_t in, int r, __nv_bfloat16 *xh)
{
	sk_launch(c, k_fold_x, sk_blocks(n * (in + FOLD_COLS), 256), 256, 0, x, t, n, in, r, xh);
}

void sk_cuda_fold_b(sk_cuda *c, const float *B, float scale, int64_t out, int64_t in, int r, const float *A,
                    __nv_bfloat16 *wh)
{
	sk_launch(c, k_fold_b, sk_blocks(out * FOLD_COLS + (A ? FOLD_COLS * in : 0), 256), 256, 0, B, scale, out, in, r, A,
	          wh);
}

void sk_cuda_fold_xt(sk_cuda *c, const float *x, const float *A, int64_t n, int64_t in, int r, __nv_bfloat16 *xh,
                     __nv_bfloat16 *th, int64_t ldt)
{
	unsigned blocks = (unsigned)((n + FOLD_XT_ROWS - 1) / FOLD_XT_ROWS);
	if (xh)
		sk_launch(c, k_fold_xt<true>, blocks, 256, 0, x, A, n, in, r, xh, th, ldt);
	else
		sk_launch(c, k_fold_xt<false>, blocks, 256, 0, x, A, n, in, r, xh, th, ldt);
}

int sk_cuda_fold_weight_fill(sk_cuda *c, const sk_cuda_weight *w, const sk_cuda_lora *l, __nv_bfloat16 *wh, int kept,
                             const float *a_rows)
{
	int64_t out = w->rows, in = w->cols, K = in + FOLD_COLS;
	if (!kept) {
		if (w->kind == SK_CUDA_W_NF4)
			sk_cuda_nf4_to_bf16(c, w, 0, out * in, in, K, wh);
		else
			sk_launch(c, k_copy_rows_bf16, sk_blocks(out * in, 256), 256, 0, w->bf16, out, in, (uint16_t *)wh);
		if (sk_cuda_launched(c, "fold: weight to bf16") != 0)
			return -1;
	}
	// scale·B's columns (and A's rows) are already in a kept copy this pair was folded into since
	// its last change: a forward computed again under checkpointing skips them
	if (!kept || !c->keep_b || !sk_cuda_wcache_lora_current(c, w->packed, l, a_rows != NULL)) {
		sk_cuda_fold_b(c, l->B, l->scale, out, in, l->r, a_rows, wh);
		if (sk_cuda_launched(c, "fold: scale B columns") != 0)
			return -1;
		if (w->kind == SK_CUDA_W_NF4)
			sk_cuda_wcache_lora_folded(c, w->packed, l, a_rows != NULL);
	}
	return 0;
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
		t = sk_cuda_lora_ws(c, (size_t)(n * l->r) * sizeof(float));
		if (!t || sk_cuda_lora_a(c, l, x, n, dropout, seed, t) != 0)
			return -1;
	}
	// an NF4 weight's bf16 rows in the weight cache when it is on (SK_CUDA_WCACHE), for the
	// backward to read and for a forward computed again to reuse; else in the scratch
	int kept = 0;
	__nv_bfloat16 *wh = w->kind == SK_CUDA_W_NF4
		? (__nv_bfloat16 *)sk_cuda_wcache_get(c, w->packed, sk_cuda_kept_bytes(out, in), &kept) : NULL;
	const float *a_rows = wh && c->lora_dx_fold ? l->A : NULL;
	char *s = (char *)sk_cuda_scratch(c, xb + (wh ? 0 : (size_t)(out * K) * 2));
	if (!s)
		return -1;
	__nv_bfloat16 *xh = (__nv_bfloat16 *)s;
	if (!wh)
		wh = (__nv_bfloat16 *)(s + xb);
	if (one_pass)
		sk_cuda_fold_xt(c, x, l->A, n, in, l->r, xh, xh + in, K);
	else
		sk_cuda_fold_x(c, x, t, n, in, l->r, xh);
	if (sk_cuda_launched(c, "fold: [x | t] to bf16") != 0)
		return -1;
	if (sk_cuda_fold_weight_fill(c, w, l, wh, kept, a_rows) != 0)
		return -1;
	sk_cuda_gemm_shape sh = { out, n, K, K, K, out, 1, 0, 1, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, sh, 1.0f, wh, xh, 0.0f, y) == 0 ? 1 : -1;
}
