// Attention of several training sequences (no cache) in one call, forward
// and backward: a merged pass holds a handful of conversations of a few
// hundred tokens, and going one at a time (attention_gemm.cu) made each
// layer tens of small products and row kernels a sequence. Here the
// sequences of a batch are copied, zero-padded to one length L, into
// head-major buffers ([seq][head][L][hd]), and every product is one
// strided batch over (sequence, KV group), a group's query heads stacked
// as group·L rows: the scores, the softmax, P·V, and in the backward dP,
// dS, dQ, dK, dV, each one launch for all the sequences. Padding costs
// little: the products are a few percent of a step's FLOPs, and zero
// padded q, k, v and dO rows give zero gradients (attention_softmax.cuh).
// Sequences are batched longest first while the batch's padded scores stay
// within the one-sequence path's largest (MAX_AREA) and a sequence is at
// least half the batch's length; a sequence past MAX_L goes alone through
// attention_gemm.cu or the tiled kernels.
//
// Column-major terms as in attention_gemm.cu: a head-major [L][hd] block is
// the column-major (hd x L) matrix, and row-major scores S[i][j] are Sᵀ.
#include "kernels/attention_softmax.cuh"

#include <cuda_bf16.h>
#include <stdlib.h>
#include <string.h>

#define MAX_L 2048                         // the one-sequence path's longest
#define MAX_AREA ((int64_t)MAX_L * MAX_L) // padded scores a head, summed over a batch's sequences
#define MAX_SEQS 64                        // sequences a batch (kernel parameter arrays)
#define L_ROUND 32                         // padded lengths: fewer product shapes, aligned rows

// A batch's sequences as kernel parameters
struct seqs {
	int count;
	int len[MAX_SEQS];
	int64_t row0[MAX_SEQS];
};

// y[b][h][i][d] = x[row0_b + i][h][d] for rows i < len_b, else 0; the same for
// x2 into y2 when given (k and v, q and dO). blockIdx.y is the sequence b.
template <typename T>
__global__ static void k_gather(const float *__restrict__ x, const float *__restrict__ x2, int heads, int hd,
                                int64_t L, seqs s, T *__restrict__ y, T *__restrict__ y2)
{
	const int b = blockIdx.y;
	const int64_t per = L * heads * hd, e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= per)
		return;
	const int64_t h = e / (L * hd), r = e - h * L * hd, i = r / hd, d = r - i * hd;
	const int64_t at = (s.row0[b] + i) * heads * hd + h * hd + d, to = (int64_t)b * per + e;
	const int in = i < s.len[b];
	y[to] = (T)(in ? x[at] : 0.0f);
	if (x2)
		y2[to] = (T)(in ? x2[at] : 0.0f);
}

// x[row0_b + i][h][d] = y[b][h][i][d] (or +=), rows i < len_b; the same for
// y2 into x2 when given. Indexed by the destination, whose rows are
// contiguous.
__global__ static void k_scatter(const float *__restrict__ y, const float *__restrict__ y2, int heads, int hd,
                                 int64_t L, seqs s, int add, float *__restrict__ x, float *__restrict__ x2)
{
	const int b = blockIdx.y;
	const int64_t rd = (int64_t)heads * hd, e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= s.len[b] * rd)
		return;
	const int64_t i = e / rd, r = e - i * rd, h = r / hd, d = r - h * hd;
	const int64_t from = (((int64_t)b * heads + h) * L + i) * hd + d, at = (s.row0[b] + i) * rd + r;
	x[at] = add ? x[at] + y[from] : y[from];
	if (y2)
		x2[at] = add ? x2[at] + y2[from] : y2[from];
}

// One batch's shape and its buffers in the scratch (fp32 scores S, P, dP;
// with bf16 operands, P and dS in bf16 too; q, k, v, dO padded head-major
// in the products' operand type; the products' fp32 outputs O/dQ, dK, dV).
struct sb {
	sk_cuda *c;
	int B, nh, nkv, group, hd, bf;
	int64_t L;
	float *S, *P, *dP, *O, *dK, *dV;
	void *Pb, *Db, *Q, *K, *V, *dO;
	seqs s;
};

static size_t up256(size_t b)
{
	return (b + 255) & ~(size_t)255;
}

// the scratch laid out for a batch; 0 or -1
static int setup(sb *g, sk_cuda *c, const seqs &s, int64_t L, int nh, int nkv, int hd, int bwd)
{
	const int bf = c->attn_bf16;
	const size_t es = bf ? 2 : 4, B = (size_t)s.count, LL = (size_t)(L * L), qn = B * nh * L * hd,
	             kn = B * nkv * L * hd;
	size_t sz[12] = { B * nh * LL * 4,           B * nh * LL * 4, bwd ? B * nh * LL * 4 : 0,
		          bf ? B * nh * LL * 2 : 0,  bf && bwd ? B * nh * LL * 2 : 0,
		          qn * es,                   kn * es,         kn * es,
		          bwd ? qn * es : 0,         qn * 4,          bwd ? kn * 4 : 0,
		          bwd ? kn * 4 : 0 };
	size_t at[12], total = 0;
	for (int i = 0; i < 12; i++) {
		at[i] = total;
		total += up256(sz[i]);
	}
	char *base = (char *)sk_cuda_scratch(c, total);
	if (!base)
		return -1;
	void *p[12];
	for (int i = 0; i < 12; i++)
		p[i] = sz[i] ? base + at[i] : NULL;
	*g = sb{ c,
		 s.count,
		 nh,
		 nkv,
		 nh / nkv,
		 hd,
		 bf,
		 L,
		 (float *)p[0],
		 (float *)p[1],
		 (float *)p[2],
		 (float *)p[9],
		 (float *)p[10],
		 (float *)p[11],
		 p[3],
		 p[4],
		 p[5],
		 p[6],
		 p[7],
		 p[8],
		 s };
	return 0;
}

static int gather(const sb &g, const float *x, const float *x2, int heads, void *y, void *y2)
{
	const int64_t per = g.L * heads * g.hd;
	dim3 grid((unsigned)sk_blocks(per, 256), (unsigned)g.B);

	if (g.bf)
		k_gather<__nv_bfloat16><<<grid, 256, 0, g.c->stream>>>(x, x2, heads, g.hd, g.L, g.s, (__nv_bfloat16 *)y,
		                                                       (__nv_bfloat16 *)y2);
	else
		k_gather<float><<<grid, 256, 0, g.c->stream>>>(x, x2, heads, g.hd, g.L, g.s, (float *)y, (float *)y2);
	return sk_cuda_launched(g.c, "attention (sequences): padded operands");
}

static int scatter(const sb &g, const float *y, const float *y2, int heads, int add, float *x, float *x2)
{
	int64_t longest = 0;
	for (int b = 0; b < g.B; b++)
		longest = g.s.len[b] > longest ? g.s.len[b] : longest;
	dim3 grid((unsigned)sk_blocks(longest * heads * g.hd, 256), (unsigned)g.B);
	k_scatter<<<grid, 256, 0, g.c->stream>>>(y, y2, heads, g.hd, g.L, g.s, add, x, x2);
	return sk_cuda_launched(g.c, "attention (sequences): rows back");
}


static int mm(const sb &g, int64_t m, int64_t n, int64_t k, int ta, const void *A, int64_t lda, int64_t sa, int tb,
              const void *B, int64_t ldb, int64_t sb_, float *D, int64_t ldd, int64_t sd)
{
	sk_cuda_gemm_shape s = { m, n, k, lda, ldb, ldd, ta, tb, g.bf ? 1 : g.c->attn_tf32 ? 2 : 0, 0, g.B * g.nkv,
		                 sa, sb_, sd };
	return sk_cuda_matmul(g.c, s, 1.0f, A, B, 0.0f, D);
}

// X = A Bᵀ for every (sequence, group), row-major [group·L][L]: the group's
// stacked rows of A (q or dO, head-major) against the group's B (k or v)
static int stacked_scores(const sb &g, const void *A, const void *B, float *X)
{
	const int64_t gl = (int64_t)g.group * g.L;
	return mm(g, g.L, gl, g.hd, 1, B, g.hd, g.L * g.hd, 0, A, g.hd, gl * g.hd, X, g.L, gl * g.L);
}

// Y = X · V for every (sequence, group): X row-major [group·L][L] (P or
// dS, in the products' type), V [L][hd]; Y head-major fp32 [group·L][hd]
static int stacked_apply(const sb &g, const void *X, const void *V, float *Y)
{
	const int64_t gl = (int64_t)g.group * g.L;
	return mm(g, g.hd, gl, g.L, 0, V, g.hd, g.L * g.hd, 0, X, g.L, gl * g.L, Y, g.hd, gl * g.hd);
}

// Y = Σ over the group's stacked rows r of X[r][j] A_r for every (sequence,
// group): X [group·L][L] (dS or P), A head-major [group·L][hd] (q or dO);
// Y [L][hd] fp32 (dK or dV of the KV head)
static int stacked_reduce(const sb &g, const void *X, const void *A, float *Y)
{
	const int64_t gl = (int64_t)g.group * g.L;
	return mm(g, g.hd, g.L, gl, 0, A, g.hd, gl * g.hd, 1, X, g.L, gl * g.L, Y, g.hd, g.L * g.hd);
}

// S and P of every head of every sequence from the padded q and k
static int scores(const sb &g, int window, float scale, float softcap)
{
	if (stacked_scores(g, g.Q, g.K, g.S))
		return -1;
	k_softmax_rows<<<dim3((unsigned)g.L, (unsigned)(g.B * g.nh)), SK_ATTN_ROW_T, 0, g.c->stream>>>(
		g.S, g.P, g.L, window, scale, softcap, (__nv_bfloat16 *)g.Pb);
	return sk_cuda_launched(g.c, "attention (sequences): softmax");
}

static int forward_batch(sk_cuda *c, const seqs &s, int64_t L, const float *q, const float *k, const float *v,
                         int nh, int nkv, int hd, int window, float scale, float softcap, float *out)
{
	sb g;
	if (setup(&g, c, s, L, nh, nkv, hd, 0) || gather(g, q, NULL, nh, g.Q, NULL) || gather(g, k, v, nkv, g.K, g.V) ||
	    scores(g, window, scale, softcap) || stacked_apply(g, g.bf ? g.Pb : (void *)g.P, g.V, g.O))
		return -1;
	return scatter(g, g.O, NULL, nh, 0, out, NULL);
}

static int backward_batch(sk_cuda *c, const seqs &s, int64_t L, const float *q, const float *k, const float *v,
                          int nh, int nkv, int hd, int window, float scale, float softcap, const float *dout,
                          float *dq, float *dk, float *dv)
{
	sb g;
	if (setup(&g, c, s, L, nh, nkv, hd, 1) || gather(g, q, dout, nh, g.Q, g.dO) || gather(g, k, v, nkv, g.K, g.V) ||
	    scores(g, window, scale, softcap) || stacked_scores(g, g.dO, g.V, g.dP))
		return -1;
	k_softmax_bwd_rows<<<dim3((unsigned)L, (unsigned)(g.B * nh)), SK_ATTN_ROW_T, 0, c->stream>>>(
		g.S, g.P, g.dP, L, scale, softcap, (__nv_bfloat16 *)g.Db);
	if (sk_cuda_launched(c, "attention (sequences): softmax backward"))
		return -1;
	const void *dS = g.bf ? g.Db : (const void *)g.dP, *P = g.bf ? g.Pb : (const void *)g.P;
	// dQ into O's buffer, then dK and dV
	if (stacked_apply(g, dS, g.K, g.O) || stacked_reduce(g, dS, g.Q, g.dK) || stacked_reduce(g, P, g.dO, g.dV) ||
	    scatter(g, g.O, NULL, nh, 0, dq, NULL))
		return -1;
	return scatter(g, g.dK, g.dV, nkv, 1, dk, dv);
}

static int by_length(const void *a, const void *b)
{
	const sk_cuda_span *x = (const sk_cuda_span *)a, *y = (const sk_cuda_span *)b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

static int64_t round_up(int64_t n)
{
	return (n + L_ROUND - 1) / L_ROUND * L_ROUND;
}

// Runs batch on the sequences in batches (longest first); a sequence past
// MAX_L, or any when the path is off, goes to one (the one-sequence ops).
// 0, or -1 with the message set; the context's error is cleared either way.
template <typename Batch, typename One>
static int in_batches(sk_cuda *c, const char *what, int nh, int nkv, int hd, const sk_cuda_span *spans, int n_spans,
                      Batch batch, One one)
{
	if (nkv < 1 || nh % nkv || hd % 4) {
		sk_cuda_fail(c, "%s: %d/%d heads of %d are not supported on the GPU", what, nh, nkv, hd);
		return sk_cuda_check(c);
	}
	sk_cuda_span *order = (sk_cuda_span *)malloc((size_t)(n_spans > 0 ? n_spans : 1) * sizeof *order);
	if (!order) {
		sk_cuda_fail(c, "%s: out of host memory", what);
		return sk_cuda_check(c);
	}
	memcpy(order, spans, (size_t)n_spans * sizeof *order);
	qsort(order, (size_t)n_spans, sizeof *order, by_length);
	int rc = 0, i = 0;
	while (rc == 0 && i < n_spans) {
		if (order[i].n <= 0) { // sorted last: nothing left
			break;
		}
		if (!c->attn_spans || !c->gemm_attn || c->capturing || order[i].n > MAX_L) {
			rc = one(order[i]);
			i++;
			continue;
		}
		seqs s;
		s.count = 0;
		const int64_t L = round_up(order[i].n);
		// the first always (a sequence under 16 rows is under half its rounded length)
		while (i < n_spans && s.count < MAX_SEQS && order[i].n > 0 &&
		       (s.count == 0 || (2 * order[i].n >= L && (int64_t)(s.count + 1) * L * L <= MAX_AREA))) {
			s.len[s.count] = (int)order[i].n;
			s.row0[s.count] = order[i].row0;
			s.count++, i++;
		}
		rc = batch(s, L);
	}
	free(order);
	return sk_cuda_check(c) || rc ? -1 : 0;
}

extern "C" int sk_cuda_attention_spans(sk_cuda *c, const float *q, const float *k, const float *v,
                                       const int32_t *pos, const sk_cuda_span *spans, int n_spans, int nh, int nkv,
                                       int hd, int window, float scale, float softcap, float *out)
{
	const int64_t qd = (int64_t)nh * hd, kvd = (int64_t)nkv * hd;
	return in_batches(
		c, "attention", nh, nkv, hd, spans, n_spans,
		[&](const seqs &s, int64_t L) {
			return forward_batch(c, s, L, q, k, v, nh, nkv, hd, window, scale, softcap, out);
		},
		[&](const sk_cuda_span &o) {
			return sk_cuda_attention(c, q + o.row0 * qd, o.n, pos + o.row0, NULL, NULL, 0, k + o.row0 * kvd,
			                         v + o.row0 * kvd, nh, nkv, hd, window, scale, softcap, out + o.row0 * qd);
		});
}

extern "C" int sk_cuda_attention_bwd_spans(sk_cuda *c, const float *q, const float *k, const float *v,
                                           const sk_cuda_span *spans, int n_spans, int nh, int nkv, int hd,
                                           int window, float scale, float softcap, const float *dout, float *dq,
                                           float *dk, float *dv, float *ws)
{
	const int64_t qd = (int64_t)nh * hd, kvd = (int64_t)nkv * hd;
	return in_batches(
		c, "attention backward", nh, nkv, hd, spans, n_spans,
		[&](const seqs &s, int64_t L) {
			return backward_batch(c, s, L, q, k, v, nh, nkv, hd, window, scale, softcap, dout, dq, dk, dv);
		},
		[&](const sk_cuda_span &o) {
			return sk_cuda_attention_bwd(c, q + o.row0 * qd, k + o.row0 * kvd, v + o.row0 * kvd, o.n, nh, nkv, hd,
			                             window, scale, softcap, dout + o.row0 * qd, dq + o.row0 * qd,
			                             dk + o.row0 * kvd, dv + o.row0 * kvd, ws);
		});
}
