// The LoRA factor A's gradient of training, gA[r][in] += dtᵀ x over the n
// rows of a pass: r ≤ 8 outputs a column of x, summed over a thousand rows
// or more. As a cuBLASLt product it is 8 columns wide, and its few output
// tiles ran at 45 µs for 2,048 columns and 161 µs for 16,384 (run 15's
// kernel profile: 6.8 % of a training step), where reading x once takes 3
// and 22. Here the rows are split into chunks, each block sums a chunk for
// its columns (x read once, four columns a thread, dt's rows from shared
// memory), and a second kernel adds the chunks' sums in order: the same
// result on every run.
#include "kernels/linear_internal.cuh"

#define GA_T 128         // threads a block of the first kernel (four columns each)
#define GA_ROWS 32       // rows of dt a block stages in shared memory at a time
#define GA_BLOCKS 256    // blocks the first kernel aims for

// part[s][j][k] = Σ over rows i of chunk s of dt[i][j] · x[i][k], j < 8
__global__ static void __launch_bounds__(GA_T) k_ga_chunks(const float *__restrict__ x, const float *__restrict__ dt,
                                                          int64_t n, int64_t in, int64_t rows_per,
                                                          float *__restrict__ part)
{
	sk_pdl_wait();
	__shared__ float sd[GA_ROWS][FOLD_COLS];
	const int64_t k = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * 4, s = blockIdx.y;
	const int64_t i0 = s * rows_per, i1 = i0 + rows_per < n ? i0 + rows_per : n;
	float acc[FOLD_COLS][4];
#pragma unroll
	for (int j = 0; j < FOLD_COLS; j++)
#pragma unroll
		for (int c = 0; c < 4; c++)
			acc[j][c] = 0.0f;
	for (int64_t b = i0; b < i1; b += GA_ROWS) {
		const int64_t m = i1 - b < GA_ROWS ? i1 - b : GA_ROWS;
		__syncthreads(); // the previous rows are read
		for (int64_t e = threadIdx.x; e < m * FOLD_COLS; e += blockDim.x)
			sd[e / FOLD_COLS][e % FOLD_COLS] = dt[(b + e / FOLD_COLS) * FOLD_COLS + e % FOLD_COLS];
		__syncthreads();
		if (k < in)
			for (int64_t q = 0; q < m; q++) {
				const float4 v = *(const float4 *)(x + (b + q) * in + k);
#pragma unroll
				for (int j = 0; j < FOLD_COLS; j++) {
					const float d = sd[q][j];
					acc[j][0] = fmaf(d, v.x, acc[j][0]);
					acc[j][1] = fmaf(d, v.y, acc[j][1]);
					acc[j][2] = fmaf(d, v.z, acc[j][2]);
					acc[j][3] = fmaf(d, v.w, acc[j][3]);
				}
			}
	}
	if (k >= in)
		return;
#pragma unroll
	for (int j = 0; j < FOLD_COLS; j++)
		*(float4 *)(part + (s * FOLD_COLS + j) * in + k) = make_float4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]);
}

// gA[j][k] += Σ_s part[s][j][k] in order of s, j < r
__global__ static void k_ga_sum(const float *__restrict__ part, int64_t chunks, int64_t in, int r, float *gA)
{
	sk_pdl_wait();
	const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= (int64_t)r * in)
		return;
	const int64_t j = e / in, k = e - j * in;
	float sum = 0.0f;
	for (int64_t s = 0; s < chunks; s++)
		sum += part[(s * FOLD_COLS + j) * in + k];
	gA[e] += sum;
}

size_t sk_cuda_lora_ga_bytes(int64_t n, int64_t in)
{
	const int64_t cols = (in / 4 + GA_T - 1) / GA_T;
	int64_t chunks = (GA_BLOCKS + cols - 1) / cols;
	if (chunks > (n + 7) / 8)
		chunks = (n + 7) / 8;
	return (size_t)((chunks > 0 ? chunks : 1) * FOLD_COLS * in) * sizeof(float);
}

int sk_cuda_lora_ga(sk_cuda *c, const float *x, const float *dt, int64_t n, int64_t in, int r, float *gA, float *part)
{
	if (n <= 0)
		return 0;
	const int64_t cols = (in / 4 + GA_T - 1) / GA_T;
	int64_t chunks = (GA_BLOCKS + cols - 1) / cols;
	if (chunks > (n + 7) / 8)
		chunks = (n + 7) / 8;
	const int64_t rows_per = (n + chunks - 1) / chunks;
	chunks = (n + rows_per - 1) / rows_per;
	sk_launch(c, k_ga_chunks, dim3((unsigned)cols, (unsigned)chunks), GA_T, 0, x, dt, n, in, rows_per, part);
	sk_launch(c, k_ga_sum, sk_blocks((int64_t)r * in, 256), 256, 0, (const float *)part, chunks, in, r, gA);
	return sk_cuda_launched(c, "LoRA backward: gA");
}
