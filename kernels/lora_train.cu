// The LoRA branch of training, in fp32: y += scale · B A drop(x) and its
// backward into the factors' gradients (accumulated) and the input's. The
// dropout mask is the CPU's hash of (seed, row, column) bit for bit
// (sk_dropout_keep in engine/backend/backend_cpu_backward.c), recomputed
// wherever it is needed and never stored. Every output element has one
// writer; t = A drop(x) and dt = scale · dy B ([n][r] each) live in the
// context's scratch.
#include "kernels/context.cuh"

__device__ __forceinline__ uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

__device__ __forceinline__ int dropout_keep(uint64_t seed, int64_t row, int64_t col, float p)
{
	uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ull * (uint64_t)(row + 1));
	h = mix64(h ^ (0xD1B54A32D192ED03ull * (uint64_t)(col + 1)));
	float u = (float)(h >> 40) * (1.0f / 16777216.0f);
	return u >= p;
}

// drop(x)[i][k]: x, or x / (1 − p) where kept and 0 where dropped (p > 0)
__device__ __forceinline__ float dropped(const float *x, int64_t in, int64_t i, int64_t k, float p, float inv,
                                         uint64_t seed)
{
	float v = x[i * in + k];
	if (p > 0.0f)
		v = dropout_keep(seed, i, k, p) ? v * inv : 0.0f;
	return v;
}

// t[i][j] = Σ_k A[j][k] drop(x)[i][k]: a block per (i, j), grid (n, r)
__global__ static void k_lt_t(const float *__restrict__ A, int r, int64_t in, const float *__restrict__ x, float p,
                              float inv, uint64_t seed, float *__restrict__ t)
{
	__shared__ float sh[32];
	int64_t i = blockIdx.x;
	int j = blockIdx.y;
	float s = 0;
	for (int64_t k = threadIdx.x; k < in; k += blockDim.x)
		s += A[(int64_t)j * in + k] * dropped(x, in, i, k, p, inv, seed);
	s = sk_block_sum(s, sh);
	if (threadIdx.x == 0)
		t[i * r + j] = s;
}

// y[i][o] += scale · Σ_j B[o][j] t[i][j]: a thread per element
__global__ static void k_lt_y(const float *__restrict__ B, int r, int64_t n, int64_t out, float scale,
                              const float *__restrict__ t, float *y)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * out)
		return;
	int64_t i = e / out, o = e - i * out;
	float s = 0;
	for (int j = 0; j < r; j++)
		s += B[o * r + j] * t[i * r + j];
	y[e] += scale * s;
}

// dt[i][j] = scale · Σ_o dy[i][o] B[o][j]: a block per (i, j), grid (n, r)
__global__ static void k_lt_dt(const float *__restrict__ B, int r, int64_t out, float scale,
                               const float *__restrict__ dy, float *__restrict__ dt)
{
	__shared__ float sh[32];
	int64_t i = blockIdx.x;
	int j = blockIdx.y;
	float s = 0;
	for (int64_t o = threadIdx.x; o < out; o += blockDim.x)
		s += dy[i * out + o] * B[o * r + j];
	s = sk_block_sum(s, sh);
	if (threadIdx.x == 0)
		dt[i * r + j] = scale * s;
}

// gB[o][j] += scale · Σ_i dy[i][o] t[i][j]: a thread per element
__global__ static void k_lt_gb(int r, int64_t n, int64_t out, float scale, const float *__restrict__ dy,
                               const float *__restrict__ t, float *gB)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= out * r)
		return;
	int64_t o = e / r;
	int j = (int)(e - o * r);
	float s = 0;
	for (int64_t i = 0; i < n; i++)
		s += dy[i * out + o] * t[i * r + j];
	gB[e] += scale * s;
}

#define GA_J 8 /* ranks a thread of the gA kernel takes */

// gA[j][k] += Σ_i dt[i][j] drop(x)[i][k]: a thread per column k and GA_J
// consecutive ranks (each mask bit computed once for them), grid
// (columns / 256, ceil(r / GA_J))
__global__ static void k_lt_ga(int r, int64_t n, int64_t in, const float *__restrict__ x, float p, float inv,
                               uint64_t seed, const float *__restrict__ dt, float *gA)
{
	int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	int j0 = blockIdx.y * GA_J;
	if (k >= in)
		return;
	float acc[GA_J];
#pragma unroll
	for (int jj = 0; jj < GA_J; jj++)
		acc[jj] = 0;
	for (int64_t i = 0; i < n; i++) {
		float xv = dropped(x, in, i, k, p, inv, seed);
#pragma unroll
		for (int jj = 0; jj < GA_J; jj++)
			if (j0 + jj < r)
				acc[jj] += dt[i * r + j0 + jj] * xv;
	}
#pragma unroll
	for (int jj = 0; jj < GA_J; jj++)
		if (j0 + jj < r)
			gA[(int64_t)(j0 + jj) * in + k] += acc[jj];
}

// dx[i][k] += drop'(Σ_j dt[i][j] A[j][k]): a thread per element
__global__ static void k_lt_dx(const float *__restrict__ A, int r, int64_t n, int64_t in, float p, float inv,
                               uint64_t seed, const float *__restrict__ dt, float *dx)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * in)
		return;
	int64_t i = e / in, k = e - i * in;
	float s = 0;
	for (int j = 0; j < r; j++)
		s += dt[i * r + j] * A[(int64_t)j * in + k];
	if (p <= 0.0f)
		dx[e] += s;
	else if (dropout_keep(seed, i, k, p))
		dx[e] += s * inv;
}

static int check_pair(sk_cuda *c, const sk_cuda_lora *l)
{
	if (!l || !l->A || !l->B || l->r <= 0 || l->r > 65535 || l->in <= 0 || l->out <= 0) {
		sk_cuda_fail(c, "LoRA: invalid pair on the device");
		return -1;
	}
	return 0;
}

extern "C" int sk_cuda_lora_fwd(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float dropout,
                                uint64_t seed, float *y)
{
	if (check_pair(c, l) != 0 || n <= 0)
		return sk_cuda_check(c);
	int r = l->r;
	float p = dropout > 0.0f ? dropout : 0.0f, inv = 1.0f / (1.0f - p);
	float *t = (float *)sk_cuda_scratch(c, (size_t)(n * r) * sizeof(float));
	if (!t)
		return sk_cuda_check(c);
	k_lt_t<<<dim3((unsigned)n, (unsigned)r), 128, 0, c->stream>>>(l->A, r, l->in, x, p, inv, seed, t);
	k_lt_y<<<sk_blocks(n * l->out, 256), 256, 0, c->stream>>>(l->B, r, n, l->out, l->scale, t, y);
	sk_cuda_launched(c, "LoRA forward (training)");
	return sk_cuda_check(c);
}

extern "C" int sk_cuda_lora_bwd(sk_cuda *c, const sk_cuda_lora *l, const float *x, const float *dy, int64_t n,
                                float dropout, uint64_t seed, float *gA, float *gB, float *dx)
{
	if (check_pair(c, l) != 0 || n <= 0)
		return sk_cuda_check(c);
	int r = l->r;
	int64_t in = l->in, out = l->out;
	float p = dropout > 0.0f ? dropout : 0.0f, inv = 1.0f / (1.0f - p);
	float *t = (float *)sk_cuda_scratch(c, (size_t)(2 * n * r) * sizeof(float));
	if (!t)
		return sk_cuda_check(c);
	float *dt = t + n * r;
	dim3 nr((unsigned)n, (unsigned)r);
	// t = drop(x) Aᵀ, dt = scale · dy B
	k_lt_t<<<nr, 128, 0, c->stream>>>(l->A, r, in, x, p, inv, seed, t);
	k_lt_dt<<<nr, 128, 0, c->stream>>>(l->B, r, out, l->scale, dy, dt);
	if (gB)
		k_lt_gb<<<sk_blocks(out * r, 256), 256, 0, c->stream>>>(r, n, out, l->scale, dy, t, gB);
	if (gA)
		k_lt_ga<<<dim3(sk_blocks(in, 256), (unsigned)((r + GA_J - 1) / GA_J)), 256, 0, c->stream>>>(
			r, n, in, x, p, inv, seed, dt, gA);
	if (dx)
		k_lt_dx<<<sk_blocks(n * in, 256), 256, 0, c->stream>>>(l->A, r, n, in, p, inv, seed, dt, dx);
	sk_cuda_launched(c, "LoRA backward");
	return sk_cuda_check(c);
}
