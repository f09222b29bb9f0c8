// The LoRA branch of training, in fp32: y += scale · B A drop(x) and its
// backward into the factors' gradients (accumulated) and the input's. The
// dropout mask is the CPU's hash of (seed, row, column) bit for bit
// (sk_dropout_keep in engine/backend/backend_cpu_backward.c), recomputed
// wherever it is needed; where a product reads it, drop(x) is written to
// the context's scratch for that call. The products go through cuBLASLt in
// fp32 (gemm.cu): they are thin (rank r), and cuBLASLt splits their long
// reductions over the device where a thread per output element did not.
#include "kernels/context.cuh"
#include "kernels/launch.cuh"

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

// drop(x) written out (p > 0), for the products that read it
__global__ static void k_lt_drop(const float *__restrict__ x, int64_t n, int64_t in, float p, float inv, uint64_t seed,
                                 float *__restrict__ xd)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e < n * in)
		xd[e] = dropped(x, in, e / in, e % in, p, inv, seed);
}

// dx[i][k] += drop'(Σ_j dt[i][j] A[j][k]), dt in rows of ld: a thread per element
__global__ static void k_lt_dx(const float *__restrict__ A, int r, int64_t n, int64_t in, float p, float inv,
                               uint64_t seed, const float *__restrict__ dt, int ld, float *dx)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * in)
		return;
	int64_t i = e / in, k = e - i * in;
	float s = 0;
	for (int j = 0; j < r; j++)
		s += dt[i * ld + j] * A[(int64_t)j * in + k];
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

const float *sk_cuda_lora_t(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float p, uint64_t seed,
                           float *xd_buf, float *t)
{
	int64_t in = l->in;
	const float *xd = x;
	if (p > 0.0f) {
		sk_launch(c, k_lt_drop, sk_blocks(n * in, 256), 256, 0, x, n, in, p, 1.0f / (1.0f - p), seed, xd_buf);
		xd = xd_buf;
	}
	sk_cuda_gemm_shape st = { l->r, n, in, in, in, l->r, 1, 0, 0, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, st, 1.0f, l->A, xd, 0.0f, t) == 0 ? xd : NULL;
}

// The scratch for t ([n][r]) and `more` floats after it, then drop(x) when
// p > 0 (written out for the products that read it), and t computed.
// Returns the rows the products read (x or drop(x)), NULL on failure.
static const float *lora_t(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float p, uint64_t seed,
                           int64_t more, float **t)
{
	size_t tb = ((size_t)(n * l->r + more) * sizeof(float) + 255) & ~(size_t)255;
	size_t xb = p > 0.0f ? (size_t)(n * l->in) * sizeof(float) : 0;
	char *s = (char *)sk_cuda_scratch(c, tb + xb);
	if (!s)
		return NULL;
	*t = (float *)s;
	return sk_cuda_lora_t(c, l, x, n, p, seed, (float *)(s + tb), *t);
}

int sk_cuda_lora_a(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float dropout, uint64_t seed,
                   float *t)
{
	if (check_pair(c, l) != 0)
		return -1;
	float p = dropout > 0.0f ? dropout : 0.0f, *xd_buf = NULL;
	if (p > 0.0f && !(xd_buf = (float *)sk_cuda_scratch(c, (size_t)(n * l->in) * sizeof(float))))
		return -1;
	return sk_cuda_lora_t(c, l, x, n, p, seed, xd_buf, t) ? 0 : -1;
}

// t = drop(x) Aᵀ, then y += scale · t Bᵀ (yᵀ(out x n) += (B as r x out)ᵀ · tᵀ)
extern "C" int sk_cuda_lora_fwd(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float dropout,
                                uint64_t seed, float *y)
{
	if (check_pair(c, l) != 0 || n <= 0)
		return sk_cuda_check(c);
	float p = dropout > 0.0f ? dropout : 0.0f, *t;
	if (lora_t(c, l, x, n, p, seed, 0, &t)) {
		sk_cuda_gemm_shape sy = { l->out, n, l->r, l->r, l->r, l->out, 1, 0, 0, 0, 1, 0, 0, 0 };
		sk_cuda_matmul(c, sy, l->scale, l->B, t, 1.0f, y);
	}
	sk_cuda_launched(c, "LoRA forward (training)");
	return sk_cuda_check(c);
}

// The thin products of the backward, row-major arrays in cuBLASLt's
// column-major terms (a row-major [R][C] array is a C x R column-major one):
//   dt[n][r] = scale · dy[n][out] B[out][r]      dtᵀ = Bᵀ(r x out) · dyᵀ(out x n)
//   gB[out][r] += scale · dyᵀ t                  gBᵀ(r x out) += tᵀ(r x n) · dy(n x out)
//   gA[r][in] += dtᵀ drop(x)                     gAᵀ(in x r) += xᵀ(in x n) · dt(n x r)
// Each is deterministic (the same algorithm for the same shape).
extern "C" int sk_cuda_lora_bwd(sk_cuda *c, const sk_cuda_lora *l, const float *x, const float *dy, int64_t n,
                                float dropout, uint64_t seed, float *gA, float *gB, float *dx)
{
	if (check_pair(c, l) != 0 || n <= 0)
		return sk_cuda_check(c);
	int r = l->r;
	int64_t in = l->in, out = l->out;
	float p = dropout > 0.0f ? dropout : 0.0f, inv = 1.0f / (1.0f - p);
	float *t;
	const float *xd = lora_t(c, l, x, n, p, seed, n * r, &t);
	if (!xd)
		return sk_cuda_check(c);
	float *dt = t + n * r;
	sk_cuda_gemm_shape sdt = { r, n, out, r, out, r, 0, 0, 0, 0, 1, 0, 0, 0 };
	if (sk_cuda_matmul(c, sdt, l->scale, l->B, dy, 0.0f, dt) != 0)
		return sk_cuda_check(c);
	if (gB) {
		sk_cuda_gemm_shape s_gb = { r, out, n, r, out, r, 0, 1, 0, 0, 1, 0, 0, 0 };
		if (sk_cuda_matmul(c, s_gb, l->scale, t, dy, 1.0f, gB) != 0)
			return sk_cuda_check(c);
	}
	if (gA) {
		sk_cuda_gemm_shape s_ga = { in, r, n, in, r, in, 0, 1, 0, 0, 1, 0, 0, 0 };
		if (sk_cuda_matmul(c, s_ga, 1.0f, xd, dt, 1.0f, gA) != 0)
			return sk_cuda_check(c);
	}
	if (dx)
		sk_launch(c, k_lt_dx, sk_blocks(n * in, 256), 256, 0, l->A, r, n, in, p, inv, seed, (const float *)dt, r, dx);
	sk_cuda_launched(c, "LoRA backward");
	return sk_cuda_check(c);
}

void sk_cuda_lora_dx(sk_cuda *c, const sk_cuda_lora *l, int64_t n, float p, uint64_t seed, const float *dt, int ld,
                     float *dx)
{
	sk_launch(c, k_lt_dx, sk_blocks(n * l->in, 256), 256, 0, l->A, l->r, n, l->in, p, 1.0f / (1.0f - p), seed, dt,
	          ld, dx);
}
