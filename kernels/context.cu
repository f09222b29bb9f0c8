// The device context: one stream, the cuBLASLt handle, the error sticky
// between calls, memory with messages that say what failed, a pinned
// staging ring for uploads, and the recorded graphs.
#include "kernels/context.cuh"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sk_cuda_fail(sk_cuda *c, const char *fmt, ...)
{
	if (c->failed)
		return; // keep the first cause
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	c->failed = 1;
}

int sk_cuda_launched(sk_cuda *c, const char *what)
{
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess) {
		sk_cuda_fail(c, "%s: %s", what, cudaGetErrorString(e));
		return -1;
	}
	sk_cuda_prof_part(c, what);
	return 0;
}

// 1 when the environment variable name is set to v
static int env_is(const char *name, const char *v)
{
	const char *e = getenv(name);
	return e && !strcmp(e, v);
}

extern "C" sk_cuda *sk_cuda_open(int dev, char *err, size_t cap)
{
	sk_cuda *c = (sk_cuda *)calloc(1, sizeof *c);
	cudaError_t e;
	if (!c) {
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	c->dev = dev;
	if ((e = cudaSetDevice(dev)) != cudaSuccess ||
	    (e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess ||
	    (e = sk_cuda_linear_init()) != cudaSuccess) {
		snprintf(err, cap, "CUDA device %d: %s", dev, cudaGetErrorString(e));
		free(c);
		return NULL;
	}
	// the tiled attention needs ~212 KB of shared memory a block (Hopper
	// has 227 KB): without it, attention.cu's kernel serves every shape.
	// On by default since run 5 (docs/perf.md: a 2,048-token prefill 1.36x,
	// training 1.38x faster with it); SK_CUDA_TILED=0 turns it off.
	const char *tiled = getenv("SK_CUDA_TILED");
	c->tiled_attn = !(tiled && !strcmp(tiled, "0")) && sk_cuda_attention_tiled_init() == cudaSuccess &&
	                sk_cuda_attention_bwd_tiled_init() == cudaSuccess;
	cudaGetLastError();
	// training attention through matrix products: on by default since run 6
	// (docs/perf.md: training 1.32x faster); SK_CUDA_ATTN_GEMM=0 turns it off
	const char *ag = getenv("SK_CUDA_ATTN_GEMM");
	c->gemm_attn = !(ag && !strcmp(ag, "0"));
	char why[256];
	if (sk_lt_load(why, sizeof why) != 0) {
		snprintf(err, cap, "CUDA device %d: %s", dev, why);
		cudaStreamDestroy(c->stream);
		free(c);
		return NULL;
	}
	if (sk_lt.cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS) {
		snprintf(err, cap, "CUDA device %d: cuBLASLt could not be initialised", dev);
		cudaStreamDestroy(c->stream);
		free(c);
		return NULL;
	}
	cudaDeviceProp p = {};
	if (cudaGetDeviceProperties(&p, dev) == cudaSuccess)
		c->sms = p.multiProcessorCount;
	if (c->sms <= 0)
		c->sms = 100;
	c->graphs_on = !env_is("SK_CUDA_GRAPHS", "0");
	// SK_CUDA_PROFILE=1: each op timed alone; =kernels: also the parts of each op; =host: the
	// host's time to queue each op, with nothing waiting for the device (graphs stay on)
	const char *prof = getenv("SK_CUDA_PROFILE");
	c->profiling = !prof || !strcmp(prof, "0") ? 0 : !strcmp(prof, "kernels") ? 2 : !strcmp(prof, "host") ? 3 : 1;
	c->exact = getenv("SK_CUDA_EXACT") != NULL && !env_is("SK_CUDA_EXACT", "0");
	// decoding's NF4 products on 8-bit activations, as the CPU backend's: on by default since
	// run 8 (docs/perf.md: decode 1.32x, batch 4 1.85x); SK_CUDA_NF4_Q8=0 turns it off
	c->nf4_q8 = !c->exact && !env_is("SK_CUDA_NF4_Q8", "0");
	// a training product and its LoRA branch in one GEMM: on by default since run 8 (training
	// 1.04x); SK_CUDA_LORA_FOLD=0 turns it off
	c->lora_fold = !c->exact && !env_is("SK_CUDA_LORA_FOLD", "0");
	// a projection's backward and its LoRA branch's in one op, the branch's products over the
	// projection's outputs on dy's bf16 copy: on by default since run 11 (training 1.04x,
	// docs/perf.md); SK_CUDA_LORA_BWD=0 turns it off
	c->lora_bwd = !c->exact && !env_is("SK_CUDA_LORA_BWD", "0");
	// training attention's products on TF32 tensor cores (10-bit mantissas, as bf16 has 7), the
	// attention backward's dK and dV one product a KV group instead of one a head, and the
	// folded forward's [x | t] (and the LoRA backward's t) in one pass without dropout: on by
	// default since run 12 (training 1.22x together, docs/perf.md); =0 turns each off
	c->attn_tf32 = !c->exact && !env_is("SK_CUDA_ATTN_TF32", "0");
	c->attn_grouped = !env_is("SK_CUDA_ATTN_GROUPED", "0");
	c->attn_spans = !env_is("SK_CUDA_ATTN_SPANS", "0");
	c->altup_one_pass = !env_is("SK_CUDA_ALTUP_ONE_PASS", "0");
	// the gated GELU's backward writing gate's and up's dy straight into their products' bf16
	// operands (SK_CUDA_GATED_BWD=0: off; not yet measured)
	c->gated_bwd = !c->exact && !env_is("SK_CUDA_GATED_BWD", "0");
	c->fold_xt = !env_is("SK_CUDA_FOLD_XT", "0");
	c->gemm_reference = env_is("SK_CUDA_GEMM", "reference");
	// bf16 operands for them instead, as transformers' bf16 training computes attention: the
	// default since run 14 (training 1.02-1.03x; a first prompt's prefill within 2.9e-2 of the
	// CPU, bound 5e-2). SK_CUDA_ATTN_BF16=0 gives TF32 back; SK_CUDA_ATTN_TF32=0 asks for fp32,
	// and the reference product (fp32 arithmetic, for the sanitizers) keeps fp32 operands too
	c->attn_bf16 = c->attn_tf32 && !c->gemm_reference && !env_is("SK_CUDA_ATTN_BF16", "0");
	// the backward's NF4 weight in row chunks: a chunk's bf16 copy, not the matrix's (off: run 11
	// measured training 0.91x with 8 MB chunks)
	const char *dxc = getenv("SK_CUDA_NF4_DX_CHUNK");
	c->nf4_dx_chunk = dxc ? strtoll(dxc, NULL, 10) : 0;
	// the folded forward's dequantized NF4 weights kept for the backward, one layer's seven
	// projections by default since run 12 (training 1.03x, +0.22 GiB for E4B); SK_CUDA_WCACHE=N
	// keeps N, 0 none
	const char *wc = getenv("SK_CUDA_WCACHE");
	c->wcache_n = c->exact ? 0 : wc ? atoi(wc) : 7;
	c->wcache_n = c->wcache_n < 0 ? 0 : c->wcache_n > SK_CUDA_WCACHE_MAX ? SK_CUDA_WCACHE_MAX : c->wcache_n;
	// the LoRA branch's rank-r update of dx as eight more rows of dx's product, on the weight
	// kept by the forward: the default since run 13 (training 1.02x at 2 x 512, 0.08 GiB less);
	// SK_CUDA_LORA_DX_FOLD=0 turns it off
	c->lora_dx_fold = c->wcache_n > 0 && !env_is("SK_CUDA_LORA_DX_FOLD", "0");
	// a kept copy's scale·B columns reused while the pair is unchanged: the forward computed
	// again under checkpointing and the backward skip folding B (SK_CUDA_KEEP_B=0: off)
	c->keep_b = !env_is("SK_CUDA_KEEP_B", "0");
	// the LM head's two passes in one call each (head_loss.cu; SK_CUDA_HEAD_PASSES=0: the loss's
	// chunk loop); never with fp32 products
	c->head_passes = !c->exact && !env_is("SK_CUDA_HEAD_PASSES", "0");
	// a checkpointed pass's gated MLP in one op with gate's, up's and the gated outputs in bf16,
	// and the MLP's backward from them (gated_mlp.cu): the default since run 15 (training 1.067x at
	// 2 x 512, an epoch 1.08x); SK_CUDA_MLP_FUSED=0 turns it off
	c->mlp_fused = !c->exact && !env_is("SK_CUDA_MLP_FUSED", "0");
	// LoRA's gA summed over row chunks by a kernel of ours: the thin fp32 product it replaces
	// took 6.8 % of run 15's step (SK_CUDA_LORA_GA=0: that product)
	c->lora_ga = !c->exact && !env_is("SK_CUDA_LORA_GA", "0");
	// timing a product class's first heuristic candidates (opt-in: run 12 measured 1.007x at
	// fixed lengths, and the tuning costs more than that at a dataset's varied ones)
	c->gemm_tune = env_is("SK_CUDA_GEMM_TUNE", "1") ? 1 : env_is("SK_CUDA_GEMM_TUNE", "all") ? 2 : 0;
	// a kernel may start while the one before it finishes (Hopper): on by default since run 11
	// (decode 1.05x in run 10, training 1.02x in run 11, the training checks passed under it;
	// docs/perf.md); SK_CUDA_PDL=0 turns it off
	c->pdl = p.major >= 9 && !env_is("SK_CUDA_PDL", "0");
	if (c->profiling && c->profiling != 3) {
		c->graphs_on = 0; // each op is timed alone
		cudaEventCreate(&c->prof_a);
		cudaEventCreate(&c->prof_b);
		cudaEventCreate(&c->prof_mark[0]);
		cudaEventCreate(&c->prof_mark[1]);
	}
	return c;
}

extern "C" void sk_cuda_close(sk_cuda *c)
{
	if (!c)
		return;
	cudaStreamSynchronize(c->stream);
	if (c->profiling && c->profiling != 3) {
		cudaEventDestroy(c->prof_a);
		cudaEventDestroy(c->prof_b);
		cudaEventDestroy(c->prof_mark[0]);
		cudaEventDestroy(c->prof_mark[1]);
	}
	sk_cuda_record_drop(c);
	if (c->stage)
		cudaFreeHost(c->stage);
	sk_cuda_free(c, c->scratch);
	sk_cuda_free(c, c->lt_ws);
	sk_cuda_free(c, c->lora_ws);
	sk_cuda_free(c, c->attn_ws);
	sk_cuda_wcache_clear(c, 1);
	for (int i = 0; i < SK_CUDA_GEMM_PLANS; i++)
		sk_cuda_plan_free(&c->plans[i]);
	sk_lt.cublasLtDestroy(c->lt);
	cudaStreamDestroy(c->stream);
	free(c);
}

extern "C" int sk_cuda_lora_fold_on(const sk_cuda *c)
{
	return c->lora_fold;
}

extern "C" const char *sk_cuda_error(const sk_cuda *c)
{
	return c->err;
}

extern "C" int sk_cuda_check(sk_cuda *c)
{
	if (c->failed) {
		c->failed = 0;
		return -1;
	}
	return 0;
}

extern "C" int sk_cuda_sync(sk_cuda *c)
{
	cudaError_t e = cudaStreamSynchronize(c->stream);
	if (e != cudaSuccess)
		sk_cuda_fail(c, "%s", cudaGetErrorString(e));
	return sk_cuda_check(c);
}

extern "C" double sk_cuda_copy_bandwidth(sk_cuda *c, size_t bytes)
{
	void *a = NULL, *b = NULL;
	cudaEvent_t e0, e1;
	double best[9];
	int n = 0;
	if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
		cudaGetLastError();
		cudaFree(a);
		return 0;
	}
	cudaMemsetAsync(a, 1, bytes, c->stream);
	cudaEventCreate(&e0);
	cudaEventCreate(&e1);
	for (int i = 0; i < 11; i++) {
		cudaEventRecord(e0, c->stream);
		cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, c->stream);
		cudaEventRecord(e1, c->stream);
		cudaEventSynchronize(e1);
		float ms = 0;
		cudaEventElapsedTime(&ms, e0, e1);
		if (i >= 2 && ms > 0) // the first two warm up
			best[n++] = 2.0 * (double)bytes / (ms * 1e-3);
	}
	cudaEventDestroy(e0);
	cudaEventDestroy(e1);
	cudaFree(a);
	cudaFree(b);
	for (int i = 1; i < n; i++) // insertion sort, then the median
		for (int j = i; j > 0 && best[j] < best[j - 1]; j--) {
			double t = best[j];
			best[j] = best[j - 1];
			best[j - 1] = t;
		}
	return n ? best[n / 2] : 0;
}

extern "C" void sk_cuda_mem_info(sk_cuda *c, uint64_t *free_bytes, uint64_t *total_bytes)
{
	size_t f = 0, t = 0;
	(void)c;
	cudaMemGetInfo(&f, &t);
	*free_bytes = f;
	*total_bytes = t;
}

static void fail_oom(sk_cuda *c, size_t bytes, const char *what, cudaError_t e)
{
	size_t f = 0, t = 0;
	cudaGetLastError(); // an allocation failure is not sticky: clear it
	cudaMemGetInfo(&f, &t);
	sk_cuda_fail(c, "out of device memory: %.1f MiB for %s (%s; the device has %.1f MiB free of %.1f MiB)",
	             (double)bytes / 1048576.0, what, cudaGetErrorString(e), (double)f / 1048576.0,
	             (double)t / 1048576.0);
}

extern "C" void *sk_cuda_alloc(sk_cuda *c, size_t bytes, const char *what)
{
	void *p = NULL;
	if (bytes == 0)
		bytes = 16;
	cudaError_t e = cudaMalloc(&p, bytes);
	if (e != cudaSuccess) {
		fail_oom(c, bytes, what, e);
		return NULL;
	}
	if ((e = cudaMemsetAsync(p, 0, bytes, c->stream)) != cudaSuccess) {
		sk_cuda_fail(c, "%s: %s", what, cudaGetErrorString(e));
		cudaFree(p);
		return NULL;
	}
	return p;
}

extern "C" void sk_cuda_free(sk_cuda *c, void *p)
{
	if (!p)
		return;
	// memory a queued kernel may still read must not be reused under it
	cudaStreamSynchronize(c->stream);
	cudaFree(p);
	sk_cuda_wcache_clear(c, 0); // p may have held a weight a cache entry is keyed by
}

extern "C" void *sk_cuda_host_alloc(sk_cuda *c, size_t bytes, const char *what, void **dev)
{
	void *p = NULL;
	cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 16, cudaHostAllocMapped);
	if (e != cudaSuccess || cudaHostGetDevicePointer(dev, p, 0) != cudaSuccess) {
		cudaGetLastError();
		sk_cuda_fail(c, "out of pinned host memory: %.1f MiB for %s (%s)", (double)bytes / 1048576.0, what,
		             cudaGetErrorString(e));
		if (p)
			cudaFreeHost(p);
		return NULL;
	}
	return p;
}

extern "C" void sk_cuda_host_free(sk_cuda *c, void *p)
{
	if (!p)
		return;
	cudaStreamSynchronize(c->stream);
	cudaFreeHost(p);
	sk_cuda_wcache_clear(c, 0); // p may have held a host-resident weight a cache entry is keyed by
}

// Small uploads go through a pinned ring so that they are queued like
// kernels; the ring wraps after a wait for the stream.
#define STAGE_BYTES (4u << 20)

extern "C" int sk_cuda_upload(sk_cuda *c, void *dst, const void *src, size_t bytes)
{
	sk_cuda_wcache_lora_written(c, dst, bytes);
	cudaError_t e;
	if (bytes == 0)
		return sk_cuda_check(c);
	if (bytes <= STAGE_BYTES / 4) {
		if (!c->stage && (e = cudaHostAlloc(&c->stage, STAGE_BYTES, cudaHostAllocDefault)) != cudaSuccess) {
			c->stage = NULL;
			sk_cuda_fail(c, "upload: %s", cudaGetErrorString(e));
			return sk_cuda_check(c);
		}
		size_t n = (bytes + 255) & ~(size_t)255;
		if (c->stage_used + n > STAGE_BYTES) {
			cudaStreamSynchronize(c->stream);
			c->stage_used = 0;
		}
		char *s = (char *)c->stage + c->stage_used;
		memcpy(s, src, bytes);
		c->stage_used += n;
		e = cudaMemcpyAsync(dst, s, bytes, cudaMemcpyHostToDevice, c->stream);
	} else {
		e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream);
		if (e == cudaSuccess)
			e = cudaStreamSynchronize(c->stream); // the caller may reuse src at once
	}
	if (e != cudaSuccess)
		sk_cuda_fail(c, "upload of %zu bytes: %s", bytes, cudaGetErrorString(e));
	return sk_cuda_check(c);
}

extern "C" int sk_cuda_download(sk_cuda *c, void *dst, const void *src, size_t bytes)
{
	cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	if (e != cudaSuccess)
		sk_cuda_fail(c, "download of %zu bytes: %s", bytes, cudaGetErrorString(e));
	return sk_cuda_check(c);
}

extern "C" int sk_cuda_copy(sk_cuda *c, void *dst, const void *src, size_t bytes)
{
	sk_cuda_wcache_lora_written(c, dst, bytes);
	cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream);
	if (e != cudaSuccess)
		sk_cuda_fail(c, "copy of %zu bytes: %s", bytes, cudaGetErrorString(e));
	return sk_cuda_check(c);
}

void *sk_cuda_scratch(sk_cuda *c, size_t bytes)
{
	if (c->scratch_cap >= bytes)
		return c->scratch;
	if (c->capturing) {
		// a recording must not allocate: it is dropped and the forward runs unrecorded next time
		c->capture_spoiled = 1;
		sk_cuda_fail(c, "scratch grown during a recording");
		return NULL;
	}
	sk_cuda_record_drop(c); // recordings name the old buffer
	sk_cuda_free(c, c->scratch);
	c->scratch = NULL;
	c->scratch_cap = 0;
	size_t cap = bytes + bytes / 4;
	const int failed_before = c->failed;
	c->scratch = sk_cuda_alloc(c, cap, "the CUDA backend's scratch (bf16 operands of matrix products)");
	if (!c->scratch && !failed_before) { // no room for the quarter more: what is asked
		sk_cuda_check(c);
		c->scratch = sk_cuda_alloc(c, cap = bytes, "the CUDA backend's scratch (bf16 operands of matrix products)");
	}
	if (c->scratch)
		c->scratch_cap = cap;
	return c->scratch;
}

// ---- profile ----

extern "C" int sk_cuda_profiling(const sk_cuda *c)
{
	return c->profiling;
}

// rows[*n] += ms under name (a new row while there is room)
static void prof_add(sk_cuda_prof_row *rows, int *n, int cap, const char *name, float ms)
{
	int i = 0;
	while (i < *n && strcmp(rows[i].name, name))
		i++;
	if (i == *n) {
		if (*n == cap)
			return;
		rows[i].name = name;
		rows[i].calls = 0;
		rows[i].ms = 0;
		(*n)++;
	}
	rows[i].calls++;
	rows[i].ms += ms;
}

static double host_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

extern "C" void sk_cuda_prof_begin(sk_cuda *c)
{
	if (!c->profiling)
		return;
	if (c->profiling == 3) {
		c->prof_host_t0 = host_ms();
		return;
	}
	cudaEventRecord(c->prof_a, c->stream);
	if (c->profiling == 2) {
		cudaEventRecord(c->prof_mark[c->prof_mark_i], c->stream);
		c->prof_in_op = 1;
	}
}

void sk_cuda_prof_part(sk_cuda *c, const char *what)
{
	if (c->profiling != 2 || !c->prof_in_op)
		return;
	int next = c->prof_mark_i ^ 1;
	cudaEventRecord(c->prof_mark[next], c->stream);
	cudaEventSynchronize(c->prof_mark[next]);
	float ms = 0;
	cudaEventElapsedTime(&ms, c->prof_mark[c->prof_mark_i], c->prof_mark[next]);
	prof_add(c->parts, &c->n_parts, SK_CUDA_PROF_PARTS, what, ms);
	c->prof_mark_i = next;
}

extern "C" void sk_cuda_prof_end(sk_cuda *c, const char *name)
{
	if (!c->profiling)
		return;
	if (c->profiling == 3) {
		prof_add(c->prof, &c->n_prof, 64, name, (float)(host_ms() - c->prof_host_t0));
		return;
	}
	sk_cuda_prof_part(c, "(after the op's last named launch)");
	c->prof_in_op = 0;
	cudaEventRecord(c->prof_b, c->stream);
	cudaEventSynchronize(c->prof_b);
	float ms = 0;
	cudaEventElapsedTime(&ms, c->prof_a, c->prof_b);
	prof_add(c->prof, &c->n_prof, 64, name, ms);
}

// rows sorted by time, the costliest first, one line each; then emptied
static void prof_table(FILE *f, const char *title, sk_cuda_prof_row *rows, int *n)
{
	double total = 0;
	for (int i = 0; i < *n; i++)
		total += rows[i].ms;
	for (int i = 1; i < *n; i++)
		for (int j = i; j > 0 && rows[j].ms > rows[j - 1].ms; j--) {
			sk_cuda_prof_row t = rows[j];
			rows[j] = rows[j - 1];
			rows[j - 1] = t;
		}
	fprintf(f, "# %s: %.3f ms in all\n", title, total);
	for (int i = 0; i < *n; i++)
		fprintf(f, "#   %-36s %9lld calls %10.3f ms %8.2f us each %5.1f %%\n", rows[i].name, rows[i].calls,
		        rows[i].ms, 1e3 * rows[i].ms / (double)rows[i].calls, 100.0 * rows[i].ms / (total > 0 ? total : 1));
	*n = 0;
}

extern "C" void sk_cuda_prof_report(sk_cuda *c, void *file)
{
	FILE *f = (FILE *)file;
	prof_table(f, c->profiling == 3 ? "host time by op (SK_CUDA_PROFILE=host: the time to queue each op; a full launch queue makes it wait for the device)"
	                                : "GPU time by op (each op timed alone)",
	           c->prof, &c->n_prof);
	if (c->profiling == 2)
		prof_table(f, "GPU time by the parts of the ops (SK_CUDA_PROFILE=kernels; the op times above include the waits between parts)",
		           c->parts, &c->n_parts);
	fprintf(f, "# cuBLASLt: %lld plans made, %lld heuristic calls, %lld algorithms taken from a shape's class, "
	           "%lld chosen by timing (%lld split over k, of %lld such candidates timed); %lld dequantized weights reused\n",
	        c->n_plans_made, c->n_heuristic, c->n_reused, c->n_tuned, c->n_split_won, c->n_split_timed,
	        c->n_wcache_hits);
}

// ---- graphs ----

static sk_cuda_graph *find_graph(sk_cuda *c, uint64_t key)
{
	for (int i = 0; i < c->n_graphs; i++)
		if (c->graphs[i].key == key)
			return &c->graphs[i];
	return NULL;
}

extern "C" int sk_cuda_record_begin(sk_cuda *c, uint64_t key)
{
	if (!c->graphs_on)
		return 0;
	sk_cuda_graph *g = find_graph(c, key);
	if (g && g->exec) {
		cudaError_t e = cudaGraphLaunch(g->exec, c->stream);
		if (e != cudaSuccess) {
			sk_cuda_fail(c, "graph replay: %s", cudaGetErrorString(e));
			return sk_cuda_check(c);
		}
		return 1;
	}
	if (!g) {
		// first sight: run it plainly and remember the key (one-off shapes, like
		// a prompt's prefill, are never recorded)
		if (c->n_graphs == SK_CUDA_MAX_GRAPHS)
			return 0;
		g = &c->graphs[c->n_graphs++];
		memset(g, 0, sizeof *g);
		g->key = key;
		return 0;
	}
	if (g->failed)
		return 0;
	cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
	if (e != cudaSuccess) {
		g->failed = 1;
		cudaGetLastError();
		return 0;
	}
	c->capturing = g;
	c->capture_spoiled = 0;
	return 0;
}

extern "C" int sk_cuda_record_end(sk_cuda *c, int ok)
{
	sk_cuda_graph *g = c->capturing;
	if (!g)
		return ok ? sk_cuda_check(c) : 0;
	c->capturing = NULL;
	cudaGraph_t graph = NULL;
	cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
	if (e != cudaSuccess || !ok || c->capture_spoiled) {
		cudaGetLastError();
		if (graph)
			cudaGraphDestroy(graph);
		g->failed = 1; // this shape runs unrecorded from now on
		if (!ok)
			return 0;
		// nothing ran: the caller runs the calls again, unrecorded
		c->failed = 0;
		c->err[0] = 0;
		return 1;
	}
	size_t nodes = 0;
	cudaGraphGetNodes(graph, NULL, &nodes);
	c->last_nodes = (int)nodes;
	e = cudaGraphInstantiate(&g->exec, graph, 0);
	cudaGraphDestroy(graph);
	if (e != cudaSuccess) {
		g->exec = NULL;
		g->failed = 1;
		sk_cuda_fail(c, "graph instantiation: %s", cudaGetErrorString(e));
		return sk_cuda_check(c);
	}
	// the calls were only recorded: run them now
	if ((e = cudaGraphLaunch(g->exec, c->stream)) != cudaSuccess)
		sk_cuda_fail(c, "graph launch: %s", cudaGetErrorString(e));
	return sk_cuda_check(c);
}

extern "C" void sk_cuda_record_drop(sk_cuda *c)
{
	for (int i = 0; i < c->n_graphs; i++)
		if (c->graphs[i].exec)
			cudaGraphExecDestroy(c->graphs[i].exec);
	c->n_graphs = 0;
}

extern "C" int sk_cuda_record_nodes(const sk_cuda *c)
{
	return c->last_nodes;
}
