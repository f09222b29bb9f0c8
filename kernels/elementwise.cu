// Row and element kernels: embedding rows, RMSNorm, RoPE, additions and
// scalings, the gated GELU with its sparsity cutoff, softcap, AltUp's
// magnitude match, row gathers/scatters and ring writes; conversions and
// random fills for weights.
#include "kernels/launch.cuh"
#include "kernels/rms_row.cuh"

#include <math.h>
#include <string.h>

#define T256 256

// ---- embedding ----

__global__ static void k_embed(const uint16_t *__restrict__ table, int64_t dim, const int32_t *__restrict__ ids,
                               int64_t n, float scale, float *__restrict__ out)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * dim)
		return;
	int64_t i = e / dim, d = e - i * dim;
	float v = sk_bf16f(table[(int64_t)ids[i] * dim + d]);
	out[e] = scale != 1.0f ? v * scale : v;
}

extern "C" int sk_cuda_embed(sk_cuda *c, const uint16_t *table, int64_t dim, const int32_t *ids, int64_t n,
                             float scale, float *out)
{
	if (n * dim > 0)
		sk_launch(c, k_embed, sk_blocks(n * dim, T256), T256, 0, table, dim, ids, n, scale, out);
	sk_cuda_launched(c, "embedding");
	return sk_cuda_check(c);
}

// ---- RMSNorm: one block per row; HF's order: x · (mean(x²) + eps)^-1/2, then · w ----

__global__ static void k_rmsnorm(const float *__restrict__ x, int64_t dim, const float *__restrict__ w, float eps,
                                 float *y)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	const float *xr = x + (int64_t)blockIdx.x * dim;
	float *yr = y + (int64_t)blockIdx.x * dim;
	float inv = sk_row_inv_rms(xr, dim, eps, sh);
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		yr[i] = sk_normed(xr[i], inv, w, i);
	}
}

extern "C" void sk_cuda_rmsnorm(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                                float *y)
{
	if (rows <= 0)
		return;
	int t = sk_norm_threads(dim);
	sk_launch(c, k_rmsnorm, (unsigned)rows, t, 0, x, dim, w, eps, y);
	sk_cuda_launched(c, "rmsnorm");
}

// ---- fused: y = ((a + RMSNorm(x; w)) + b) · scale, one block per row ----

__global__ static void k_norm_add(const float *x, int64_t dim, const float *__restrict__ w, float eps, const float *a,
                                  const float *b, float scale, float *y)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	int64_t off = (int64_t)blockIdx.x * dim;
	float inv = sk_row_inv_rms(x + off, dim, eps, sh);
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		float s = a[off + i] + sk_normed(x[off + i], inv, w, i);
		if (b)
			s = s + b[off + i];
		y[off + i] = scale == 1.0f ? s : s * scale;
	}
}

extern "C" void sk_cuda_norm_add(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w, float eps,
                                 const float *a, const float *b, float scale, float *y)
{
	if (rows <= 0)
		return;
	int t = sk_norm_threads(dim);
	sk_launch(c, k_norm_add, (unsigned)rows, t, 0, x, dim, w, eps, a, b, scale, y);
	sk_cuda_launched(c, "norm_add");
}

// ---- fused: y_k += RMSNorm(x; w) for every stream k but skip, the norm once a row ----

__global__ static void k_norm_add_streams(const float *x, int64_t rows, int64_t dim, const float *__restrict__ w,
                                          float eps, float *y, int A, int skip)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	int64_t off = (int64_t)blockIdx.x * dim;
	float inv = sk_row_inv_rms(x + off, dim, eps, sh);
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		float t = sk_normed(x[off + i], inv, w, i);
		for (int k = 0; k < A; k++)
			if (k != skip) {
				float *yk = y + (int64_t)k * rows * dim + off + i;
				*yk = *yk + t;
			}
	}
}

// the same thread count as sk_cuda_norm_add, so the row sums round alike
extern "C" void sk_cuda_norm_add_streams(sk_cuda *c, const float *x, int64_t rows, int64_t dim, const float *w,
                                         float eps, float *y, int A, int skip)
{
	if (rows <= 0)
		return;
	int t = sk_norm_threads(dim);
	sk_launch(c, k_norm_add_streams, (unsigned)rows, t, 0, x, rows, dim, w, eps, y, A, skip);
	sk_cuda_launched(c, "norm_add_streams");
}

// ---- fused: y = rope(RMSNorm(x; w)) per head, one block per (row, head) ----

__global__ static void k_norm_rope(const float *x, int heads, int hd, const float *__restrict__ w, float eps,
                                   const int32_t *__restrict__ pos, float theta, float factor, float *y)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	int64_t ih = blockIdx.x, i = ih / heads;
	const float *v = x + ih * hd;
	float inv = sk_row_inv_rms(v, hd, eps, sh);
	sk_norm_rope_head(v, y + ih * hd, w, inv, pos[i], hd, theta, factor);
}

extern "C" void sk_cuda_norm_rope(sk_cuda *c, const float *x, int64_t n, int heads, int hd, const float *w, float eps,
                                  const int32_t *pos, float theta, float factor, float *y)
{
	if (n * heads <= 0)
		return;
	sk_launch(c, k_norm_rope, (unsigned)(n * heads), hd / 2 >= 128 ? 128 : 32, 0, x, heads, hd, w, eps, pos, theta,
	                                                                                factor, y);
	sk_cuda_launched(c, "norm_rope");
}

// ---- RoPE, half-split: pair m of head h at row i rotated by pos[i]·inv_freq[m]
// (sign -1: the inverse rotation, the backward's) ----

__global__ static void k_rope(float *x, int64_t n, int heads, int hd, const int32_t *__restrict__ pos, float theta,
                              float factor, float sign)
{
	sk_pdl_wait();
	int half = hd / 2;
	int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (t >= n * heads * half)
		return;
	int m = (int)(t % half);
	int64_t ih = t / half;
	float cs, sn;
	sk_rope_cs(pos[ih / heads], m, hd, theta, factor, sign, &cs, &sn);
	float *v = x + ih * hd;
	float a = v[m], b = v[m + half];
	v[m] = a * cs - b * sn;
	v[m + half] = b * cs + a * sn;
}

void sk_cuda_rope_rotate(sk_cuda *c, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                         float factor, float sign)
{
	int64_t total = n * heads * (hd / 2);
	if (total > 0)
		sk_launch(c, k_rope, sk_blocks(total, T256), T256, 0, x, n, heads, hd, pos, theta, factor, sign);
	sk_cuda_launched(c, "rope");
}

extern "C" void sk_cuda_rope(sk_cuda *c, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                             float factor)
{
	sk_cuda_rope_rotate(c, x, n, heads, hd, pos, theta, factor, 1.0f);
}

// ---- element-wise ----

__global__ static void k_add(const float *a, const float *b, int64_t n, float scale, float *y)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = scale == 1.0f ? a[i] + b[i] : (a[i] + b[i]) * scale;
}

extern "C" void sk_cuda_add(sk_cuda *c, const float *a, const float *b, int64_t count, float scale, float *y)
{
	sk_cuda_wcache_lora_written(c, y, (size_t)count * sizeof(float));
	if (count > 0)
		sk_launch(c, k_add, sk_blocks(count, T256), T256, 0, a, b, count, scale, y);
	sk_cuda_launched(c, "add");
}

__global__ static void k_scale(const float *x, int64_t n, float s, float *y)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = x[i] * s;
}

extern "C" void sk_cuda_scale(sk_cuda *c, const float *x, int64_t count, float s, float *y)
{
	sk_cuda_wcache_lora_written(c, y, (size_t)count * sizeof(float));
	if (count <= 0 || (s == 1.0f && x == y))
		return;
	if (s == 1.0f)
		cudaMemcpyAsync(y, x, (size_t)count * sizeof(float), cudaMemcpyDeviceToDevice, c->stream);
	else
		sk_launch(c, k_scale, sk_blocks(count, T256), T256, 0, x, count, s, y);
	sk_cuda_launched(c, "scale");
}

extern "C" void sk_cuda_zero(sk_cuda *c, float *x, int64_t count)
{
	sk_cuda_wcache_lora_written(c, x, (size_t)count * sizeof(float));
	if (count > 0)
		cudaMemsetAsync(x, 0, (size_t)count * sizeof(float), c->stream);
	sk_cuda_launched(c, "zero");
}

__global__ static void k_mul_rows(const float *x, const float *__restrict__ w, int64_t w_stride, int64_t rows,
                                  int64_t dim, float *y)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= rows * dim)
		return;
	int64_t r = e / dim, d = e - r * dim;
	y[e] = x[e] * w[r * w_stride + d];
}

extern "C" void sk_cuda_mul_rows(sk_cuda *c, const float *x, const float *w, int64_t w_stride, int64_t rows,
                                 int64_t dim, float *y)
{
	if (rows * dim > 0)
		sk_launch(c, k_mul_rows, sk_blocks(rows * dim, T256), T256, 0, x, w, w_stride, rows, dim, y);
	sk_cuda_launched(c, "mul_rows");
}

__global__ static void k_softcap(float *x, int64_t n, float cap)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		x[i] = tanhf(x[i] / cap) * cap;
}

extern "C" void sk_cuda_softcap(sk_cuda *c, float *x, int64_t count, float cap)
{
	if (count > 0)
		sk_launch(c, k_softcap, sk_blocks(count, T256), T256, 0, x, count, cap);
	sk_cuda_launched(c, "softcap");
}

// ---- gated GELU: out ← gelu_tanh(g') ⊙ u, g' = relu(g − (mean + z·std)) with the cutoff (out may be g) ----

__device__ __forceinline__ float gelu_tanh(float x)
{
	const float k = 0.7978845608028654f; // sqrt(2/pi)
	float inner = k * (x + 0.044715f * x * x * x);
	return 0.5f * x * (1.0f + tanhf(inner));
}

// One block per row: the row's mean and population std first, when cut.
__global__ static void k_gelu_mul(const float *g, const float *__restrict__ u, int64_t u_stride, int64_t dim, float z,
                                  float *out)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	const float *gr = g + (int64_t)blockIdx.x * dim;
	float *orow = out + (int64_t)blockIdx.x * dim;
	const float *ur = u ? u + (int64_t)blockIdx.x * u_stride : NULL;
	float cut = 0;
	if (z != 0.0f) {
		float s = 0;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
			s += gr[i];
		float mean = sk_block_sum(s, sh) / (float)dim;
		float v = 0;
		for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
			float d = gr[i] - mean;
			v += d * d;
		}
		float stdv = sqrtf(sk_block_sum(v, sh) / (float)dim);
		cut = mean + stdv * z;
	}
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		float v = gr[i];
		if (z != 0.0f)
			v = fmaxf(v - cut, 0.0f);
		v = gelu_tanh(v);
		orow[i] = ur ? v * ur[i] : v;
	}
}

extern "C" void sk_cuda_gelu_mul(sk_cuda *c, const float *g, const float *u, int64_t u_stride, int64_t rows,
                                 int64_t dim, float sparsity_z, float *out)
{
	if (rows > 0)
		sk_launch(c, k_gelu_mul, (unsigned)rows, dim >= 4096 ? 1024 : 256, 0, g, u, u_stride, dim, sparsity_z,
		          out);
	sk_cuda_launched(c, "gelu_mul");
}

// ---- bf16 storage of activations (training's kept layer inputs) ----

__global__ static void k_pack_bf16(const float *__restrict__ x, int64_t n, __nv_bfloat16 *__restrict__ y)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = __float2bfloat16_rn(x[i]);
}

__global__ static void k_unpack_bf16(const __nv_bfloat16 *__restrict__ y, int64_t n, float *__restrict__ x)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		x[i] = __bfloat162float(y[i]);
}

extern "C" void sk_cuda_pack_bf16(sk_cuda *c, const float *x, int64_t n, uint16_t *y)
{
	if (n > 0)
		sk_launch(c, k_pack_bf16, sk_blocks(n, T256), T256, 0, x, n, (__nv_bfloat16 *)y);
	sk_cuda_launched(c, "to bf16");
}

extern "C" void sk_cuda_unpack_bf16(sk_cuda *c, const uint16_t *y, int64_t n, float *x)
{
	if (n > 0)
		sk_launch(c, k_unpack_bf16, sk_blocks(n, T256), T256, 0, (const __nv_bfloat16 *)y, n, x);
	sk_cuda_launched(c, "from bf16");
}

// ---- AltUp magnitude match: u ← u · rms(ref) / sqrt(max(mean(u²), 1e-5)) ----

__global__ static void k_rescale_rms(float *u, const float *__restrict__ ref, int64_t dim)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	float *ur = u + (int64_t)blockIdx.x * dim;
	const float *rr = ref + (int64_t)blockIdx.x * dim;
	float a = 0, b = 0;
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
		a += rr[i] * rr[i];
		b += ur[i] * ur[i];
	}
	float target = sqrtf(sk_block_sum(a, sh) / (float)dim);
	float ms = sk_block_sum(b, sh) / (float)dim;
	float cur = sqrtf(ms < 1e-5f ? 1e-5f : ms);
	for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
		ur[i] = ur[i] * target / cur;
}

extern "C" void sk_cuda_rescale_rms(sk_cuda *c, float *u, const float *ref, int64_t rows, int64_t dim)
{
	if (rows > 0)
		sk_launch(c, k_rescale_rms, (unsigned)rows, 256, 0, u, ref, dim);
	sk_cuda_launched(c, "rescale_rms");
}

// ---- rows ----

__global__ static void k_rows(const float *x, int64_t dim, const int64_t *__restrict__ idx, int64_t n, float *y,
                              int scatter)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= n * dim)
		return;
	int64_t i = e / dim, d = e - i * dim;
	if (scatter)
		y[idx[i] * dim + d] = x[e];
	else
		y[e] = x[idx[i] * dim + d];
}

extern "C" void sk_cuda_gather_rows(sk_cuda *c, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y)
{
	if (n * dim > 0)
		sk_launch(c, k_rows, sk_blocks(n * dim, T256), T256, 0, x, dim, idx, n, y, 0);
	sk_cuda_launched(c, "gather_rows");
}

extern "C" void sk_cuda_scatter_rows(sk_cuda *c, const float *x, int64_t dim, const int64_t *idx, int64_t n, float *y)
{
	if (n * dim > 0)
		sk_launch(c, k_rows, sk_blocks(n * dim, T256), T256, 0, x, dim, idx, n, y, 1);
	sk_cuda_launched(c, "scatter_rows");
}

__global__ static void k_ring_write(const float *x, int64_t n, int64_t first, int64_t dim, float *ring, int64_t cap,
                                    const int32_t *__restrict__ pos)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= (n - first) * dim)
		return;
	int64_t i = first + e / dim, d = e % dim;
	ring[((int64_t)pos[i] % cap) * dim + d] = x[i * dim + d];
}

extern "C" void sk_cuda_ring_write(sk_cuda *c, const float *x, int64_t n, int64_t dim, float *ring, int64_t cap,
                                   const int32_t *pos)
{
	int64_t first = n > cap ? n - cap : 0;
	if ((n - first) * dim > 0)
		sk_launch(c, k_ring_write, sk_blocks((n - first) * dim, T256), T256, 0, x, n, first, dim, ring, cap, pos);
	sk_cuda_launched(c, "ring_write");
}

// many ring writes of the same rows and positions: blockIdx.y picks the entry
struct ring_many_args {
	sk_cuda_ring_dst d[SK_CUDA_RING_MANY];
};

__global__ static void k_ring_write_many(ring_many_args a, int64_t n, int64_t first, int64_t dim,
                                         const int32_t *__restrict__ pos)
{
	sk_pdl_wait();
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= (n - first) * dim)
		return;
	const sk_cuda_ring_dst &d = a.d[blockIdx.y];
	int64_t i = first + e / dim, k = e % dim;
	// a ring shorter than the rows keeps only its last cap of them
	if (n - i > d.cap)
		return;
	d.ring[((int64_t)pos[i] % d.cap) * dim + k] = d.x[i * dim + k];
}

extern "C" void sk_cuda_ring_write_many(sk_cuda *c, int64_t n, int64_t dim, const int32_t *pos,
                                        const sk_cuda_ring_dst *d, int count)
{
	for (int i0 = 0; i0 < count && n * dim > 0; i0 += SK_CUDA_RING_MANY) {
		int k = count - i0 < SK_CUDA_RING_MANY ? count - i0 : SK_CUDA_RING_MANY;
		ring_many_args a;
		memcpy(a.d, d + i0, (size_t)k * sizeof *d);
		sk_launch(c, k_ring_write_many, dim3(sk_blocks(n * dim, T256), (unsigned)k), T256, 0, a, n, (int64_t)0,
		          dim, pos);
	}
	sk_cuda_launched(c, "ring_write_many");
}

// ---- conversions and stand-in weights ----

__global__ static void k_f32_to_bf16(const float *src, uint16_t *dst, int64_t n)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n)
		return;
	uint32_t u = __float_as_uint(src[i]);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		dst[i] = (uint16_t)((u >> 16) | 0x40); // NaN stays NaN
	else
		dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

extern "C" void sk_cuda_f32_to_bf16(sk_cuda *c, const float *src, uint16_t *dst, int64_t n)
{
	if (n > 0)
		sk_launch(c, k_f32_to_bf16, sk_blocks(n, T256), T256, 0, src, dst, n);
	sk_cuda_launched(c, "f32_to_bf16");
}

__device__ __forceinline__ uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

__global__ static void k_random_bf16(uint16_t *dst, int64_t n, float scale, uint64_t seed)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n)
		return;
	uint64_t r = mix64(seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
	float v = ((float)(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
	dst[i] = (uint16_t)(__float_as_uint(v) >> 16);
}

extern "C" void sk_cuda_fill_random_bf16(sk_cuda *c, uint16_t *dst, int64_t n, float scale, uint64_t seed)
{
	sk_cuda_wcache_lora_written(c, dst, (size_t)n * 2);
	if (n > 0)
		sk_launch(c, k_random_bf16, sk_blocks(n, T256), T256, 0, dst, n, scale, seed);
	sk_cuda_launched(c, "random weights");
}

__global__ static void k_random_bytes(uint8_t *dst, int64_t n, uint64_t seed, int lo, int span)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		dst[i] = (uint8_t)(lo + (int)(mix64(seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)) % (uint64_t)span));
}

__global__ static void k_fill(float *dst, int64_t n, float v)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		dst[i] = v;
}

extern "C" void sk_cuda_fill_random_nf4(sk_cuda *c, uint8_t *packed, uint8_t *absmax_q, float *nested, int64_t n,
                                        float scale, uint64_t seed)
{
	sk_cuda_wcache_lora_written(c, NULL, 0); // rare: forget every fold
	int64_t nb = (n + 63) / 64, nn = (nb + 255) / 256;
	sk_launch(c, k_random_bytes, sk_blocks((n + 1) / 2, T256), T256, 0, packed, (n + 1) / 2, seed, 0, 256);
	// first-level codes in the upper part of the signed map: absmax values of order nested
	sk_launch(c, k_random_bytes, sk_blocks(nb, T256), T256, 0, absmax_q, nb, seed ^ 0x51ull, 200, 56);
	sk_launch(c, k_fill, sk_blocks(nn, T256), T256, 0, nested, nn, scale);
	sk_cuda_launched(c, "random NF4 weights");
}
