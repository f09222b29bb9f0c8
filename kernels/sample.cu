// Drawing the next token of each row on the GPU, with the CPU sampler's
// rules (engine/model/sampler.c): repetition penalty over the ids a
// sequence has seen, temperature, top-k (ties at the boundary kept), top-p,
// min-p, then a draw with the caller's uniform number over the kept tokens
// in the CPU's order, so that the same logits and number give the same
// token. No sort of the vocabulary: a radix select finds the k-th largest
// logit, the survivors (at most SAMPLE_CAP) are compacted in id order and
// only they are sorted, in shared memory. When more than SAMPLE_CAP tokens
// would survive top-k (top-k off or very large), the SAMPLE_CAP most likely
// stand in for them.
#include "kernels/launch.cuh"

#include <math.h>

#define ST 1024          /* threads per row */
#define SAMPLE_CAP 2048  /* candidates kept in shared memory */

__device__ __forceinline__ uint32_t order_key(float f)
{
	uint32_t u = __float_as_uint(f);
	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Block-wide exclusive prefix sum of one value per thread (ST threads).
template <typename T>
__device__ T block_exclusive_scan(T v, T *sh, T *total)
{
	int t = threadIdx.x;
	sh[t] = v;
	__syncthreads();
	for (int o = 1; o < ST; o <<= 1) {
		T a = t >= o ? sh[t - o] : (T)0;
		__syncthreads();
		sh[t] += a;
		__syncthreads();
	}
	T inc = sh[t];
	*total = sh[ST - 1];
	__syncthreads();
	return inc - v;
}

struct cand {
	float l;
	int32_t id;
};

// Descending by logit, ties by increasing id (the CPU's order).
__device__ __forceinline__ bool before(const cand &a, const cand &b)
{
	return a.l > b.l || (a.l == b.l && a.id < b.id);
}

__global__ static void __launch_bounds__(ST) k_sample(float *logits, int64_t V, const sk_cuda_sample_row *rows,
                                                       const uint32_t *seen, int64_t seen_words,
                                                       const int32_t *row_seq, int32_t *out)
{
	sk_pdl_wait();
	__shared__ cand cs[SAMPLE_CAP];
	__shared__ double dsh[ST];
	__shared__ int ish[ST];
	__shared__ float fsh[32];
	__shared__ int hist[256];
	__shared__ int s_n, s_inf, s_best;
	__shared__ float s_max;
	__shared__ uint32_t s_prefix;
	__shared__ int s_need;

	int64_t r = blockIdx.x;
	int t = threadIdx.x;
	float *x = logits + r * V;
	const sk_cuda_sample_row p = rows[r];
	const uint32_t *sn = seen && row_seq ? seen + (int64_t)row_seq[r] * seen_words : NULL;

	// pass 1: penalty, NaN removed, +inf counted, finite counted, temperature; the maximum
	int nfin = 0, ninf = 0;
	float mx = -INFINITY;
	int arg = 0x7fffffff;
	for (int64_t i = t; i < V; i += ST) {
		float v = x[i];
		if (sn && p.penalty != 1.0f && ((sn[i >> 5] >> (i & 31)) & 1u))
			v = v > 0.0f ? v / p.penalty : v * p.penalty;
		if (isnan(v))
			v = -INFINITY;
		nfin += v > -INFINITY;
		ninf += v == INFINITY;
		if (!p.greedy && p.temperature != 1.0f && p.temperature > 0.0f)
			v /= p.temperature;
		x[i] = v;
		if (v > mx || (v == mx && i < arg)) {
			mx = v;
			arg = (int)i;
		}
	}
	if (t == 0) {
		s_n = 0, s_inf = 0, s_best = 0x7fffffff;
		s_max = -INFINITY;
	}
	__syncthreads();
	atomicAdd(&s_n, nfin);
	atomicAdd(&s_inf, ninf);
	// the maximum, the lowest id among equals (torch.argmax's tie rule)
	for (int o = 16; o > 0; o >>= 1) {
		float om = __shfl_xor_sync(0xffffffffu, mx, o);
		int oa = __shfl_xor_sync(0xffffffffu, arg, o);
		if (om > mx || (om == mx && oa < arg)) {
			mx = om;
			arg = oa;
		}
	}
	if ((t & 31) == 0) {
		fsh[t >> 5] = mx;
		ish[t >> 5] = arg;
	}
	__syncthreads();
	if (t == 0) {
		for (int w = 0; w < ST / 32; w++)
			if (fsh[w] > s_max || (fsh[w] == s_max && ish[w] < s_best)) {
				s_max = fsh[w];
				s_best = ish[w];
			}
	}
	__syncthreads();
	if (s_n == 0) { // every token masked out
		if (t == 0)
			out[r] = -1;
		return;
	}
	if (p.greedy || p.temperature <= 0.0f) {
		if (t == 0)
			out[r] = s_best;
		return;
	}
	if (s_inf > 0) { // +inf takes all the mass: those tokens share it
		for (int64_t i = t; i < V; i += ST)
			x[i] = x[i] == INFINITY ? 0.0f : -INFINITY;
		__syncthreads();
		if (t == 0)
			s_n = s_inf;
		__syncthreads();
	}

	// top-k threshold: the K-th largest key by radix select (K capped)
	int K = p.top_k > 0 && p.top_k < s_n ? p.top_k : s_n;
	int all_kept = K == s_n; // top-k removes nothing: top-p's mass is over every token
	if (K > SAMPLE_CAP)
		K = SAMPLE_CAP;
	if (t == 0) {
		s_prefix = 0;
		s_need = K;
	}
	for (int shift = 24; shift >= 0; shift -= 8) {
		if (t < 256)
			hist[t] = 0;
		__syncthreads();
		uint32_t hi_mask = shift == 24 ? 0u : (0xffffffffu << (shift + 8));
		for (int64_t i = t; i < V; i += ST) {
			float v = x[i];
			if (!(v > -INFINITY))
				continue;
			uint32_t k = order_key(v);
			if ((k & hi_mask) == (s_prefix & hi_mask))
				atomicAdd(&hist[(k >> shift) & 255u], 1);
		}
		__syncthreads();
		if (t == 0) {
			int need = s_need, b = 255;
			for (; b > 0; b--) {
				if (hist[b] >= need)
					break;
				need -= hist[b];
			}
			s_prefix |= (uint32_t)b << shift;
			s_need = need;
		}
		__syncthreads();
	}
	uint32_t kth = s_prefix; // the key of the K-th largest

	// survivors (key >= kth) compacted in id order: contiguous chunks per thread
	int64_t per = (V + ST - 1) / ST, lo = t * per, hi = lo + per < V ? lo + per : V;
	int cnt = 0;
	for (int64_t i = lo; i < hi; i++) {
		float v = x[i];
		cnt += v > -INFINITY && order_key(v) >= kth;
	}
	int total = 0;
	int base = block_exclusive_scan<int>(cnt, ish, &total);
	for (int64_t i = lo; i < hi; i++) {
		float v = x[i];
		if (v > -INFINITY && order_key(v) >= kth) {
			if (base < SAMPLE_CAP)
				cs[base] = cand{ v, (int32_t)i };
			base++;
		}
	}
	int n = total < SAMPLE_CAP ? total : SAMPLE_CAP;
	__syncthreads();
	float maxl = s_max;
	if (s_inf > 0)
		maxl = 0.0f;

	if (p.top_p < 1.0f) {
		// bitonic sort of the candidates (padded to a power of two)
		int m = 1;
		while (m < n)
			m <<= 1;
		for (int i = n + t; i < m; i += ST)
			cs[i] = cand{ -INFINITY, 0x7fffffff };
		__syncthreads();
		for (int k = 2; k <= m; k <<= 1)
			for (int j = k >> 1; j > 0; j >>= 1) {
				for (int i = t; i < m; i += ST) {
					int l = i ^ j;
					if (l > i) {
						bool up = (i & k) == 0;
						cand a = cs[i], b = cs[l];
						if (up ? before(b, a) : before(a, b)) {
							cs[i] = b;
							cs[l] = a;
						}
					}
				}
				__syncthreads();
			}
		// keep the smallest top set whose mass reaches p: keep = min{k >= 1 : Σ_{j<k} e_j >= p·total},
		// the total over every token top-k kept (all of them: one more pass over the row
		// when the candidates stand in for more tokens than the cap holds)
		double sum_all = 0;
		if (all_kept && s_n > n) {
			for (int64_t i = t; i < V; i += ST)
				if (x[i] > -INFINITY)
					sum_all += exp((double)x[i] - maxl);
		} else {
			for (int i = t; i < n; i += ST)
				sum_all += exp((double)cs[i].l - maxl);
		}
		dsh[t] = sum_all;
		__syncthreads();
		if (t == 0) {
			double s = 0;
			for (int w = 0; w < ST; w++)
				s += dsh[w];
			dsh[0] = s;
		}
		__syncthreads();
		double target = (double)p.top_p * dsh[0];
		__syncthreads();
		// prefix sums over the sorted candidates, a run of (n / ST) per thread
		int per2 = (n + ST - 1) / ST, a0 = t * per2, a1 = a0 + per2 < n ? a0 + per2 : n;
		double part = 0;
		for (int i = a0; i < a1; i++)
			part += exp((double)cs[i].l - maxl);
		double dtot = 0;
		double before_me = block_exclusive_scan<double>(part, dsh, &dtot);
		if (t == 0)
			s_need = n;
		__syncthreads();
		double run = before_me;
		for (int i = a0; i < a1; i++) {
			// the prefix Σ_{j<i+1} reaches the target: keep = i + 1
			run += exp((double)cs[i].l - maxl);
			if (run >= target) {
				atomicMin(&s_need, i + 1);
				break;
			}
		}
		__syncthreads();
		int keep = s_need;
		if (p.min_p > 0.0f) { // sorted: the tokens that pass min-p are a prefix
			if (t == 0)
				s_need = keep;
			__syncthreads();
			for (int i = 1 + t; i < keep; i += ST)
				if (!(exp((double)cs[i].l - maxl) >= (double)p.min_p))
					atomicMin(&s_need, i);
			__syncthreads();
			keep = s_need;
		}
		n = keep;
	} else {
		if (p.min_p > 0.0f) { // unsorted; keep id order
			int c2 = 0;
			int per2 = (n + ST - 1) / ST, a0 = t * per2, a1 = a0 + per2 < n ? a0 + per2 : n;
			cand mine[(SAMPLE_CAP + ST - 1) / ST];
			for (int i = a0; i < a1; i++) {
				mine[i - a0] = cs[i];
				c2 += exp((double)cs[i].l - maxl) >= (double)p.min_p;
			}
			int tot2 = 0;
			int b2 = block_exclusive_scan<int>(c2, ish, &tot2);
			__syncthreads();
			for (int i = a0; i < a1; i++)
				if (exp((double)mine[i - a0].l - maxl) >= (double)p.min_p)
					cs[b2++] = mine[i - a0];
			n = tot2;
			__syncthreads();
		}
		// the first maximum goes first, as the CPU sampler swaps it there
		if (t == 0) {
			int mxj = 0;
			for (int j = 1; j < n; j++)
				if (cs[j].l > cs[mxj].l)
					mxj = j;
			cand c0 = cs[0];
			cs[0] = cs[mxj];
			cs[mxj] = c0;
		}
		__syncthreads();
	}

	// the draw: the first candidate whose running mass passes u · total
	int per3 = (n + ST - 1) / ST, a0 = t * per3, a1 = a0 + per3 < n ? a0 + per3 : n;
	double part = 0;
	for (int i = a0; i < a1; i++)
		part += exp((double)cs[i].l - (double)cs[0].l);
	double tot = 0;
	double run = block_exclusive_scan<double>(part, dsh, &tot);
	double u = p.u * tot;
	if (t == 0)
		s_best = n - 1; // rounding left u just past the sum
	__syncthreads();
	for (int i = a0; i < a1; i++) {
		run += exp((double)cs[i].l - (double)cs[0].l);
		if (u < run) {
			atomicMin(&s_best, i);
			break;
		}
	}
	__syncthreads();
	if (t == 0)
		out[r] = cs[s_best].id;
}

__global__ static void k_mark_seen(uint32_t *seen, int64_t words, const int32_t *ids, const int32_t *seq, int64_t n)
{
	sk_pdl_wait();
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n && ids[i] >= 0)
		atomicOr(&seen[(int64_t)seq[i] * words + (ids[i] >> 5)], 1u << (ids[i] & 31));
}

extern "C" int sk_cuda_sample(sk_cuda *c, float *logits, int64_t n, int64_t vocab, const sk_cuda_sample_row *rows,
                              const uint32_t *seen, int64_t seen_words, const int32_t *row_seq, int32_t *ids)
{
	if (n > 0)
		sk_launch(c, k_sample, (unsigned)n, ST, 0, logits, vocab, rows, seen, seen_words, row_seq, ids);
	sk_cuda_launched(c, "sampling");
	return sk_cuda_check(c);
}

extern "C" void sk_cuda_mark_seen(sk_cuda *c, uint32_t *seen, int64_t words, const int32_t *ids, const int32_t *seq,
                                  int64_t n)
{
	if (n > 0)
		sk_launch(c, k_mark_seen, sk_blocks(n, 256), 256, 0, seen, words, ids, seq, n);
	sk_cuda_launched(c, "seen ids");
}
