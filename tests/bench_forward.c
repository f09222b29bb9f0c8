/* Forward-pass speed: prefill and decode tokens/s of a model on the CPU.
 *
 *   tests/bench_forward [MODEL] [THREADS] [DECODE_TOKENS] [PREFILL_TOKENS]
 *
 * MODEL defaults to $SK_DEFAULT_MODEL; THREADS 0 = one per core. Decoding
 * feeds fixed ids one at a time through the KV cache (no sampling), so only
 * the forward pass is timed. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/error.h"
#include "engine/model/model.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : getenv("SK_DEFAULT_MODEL");
	int threads = argc > 2 ? atoi(argv[2]) : 0;
	int n_dec = argc > 3 ? atoi(argv[3]) : 64;
	int n_pre = argc > 4 ? atoi(argv[4]) : 128;
	if (!path || n_dec < 1 || n_pre < 1 || n_dec + n_pre > 4096) {
		fprintf(stderr, "usage: bench_forward [MODEL] [THREADS] [DECODE_TOKENS] [PREFILL_TOKENS]\n");
		return 2;
	}
	sk_model_opts o = { SK_DEVICE_CPU, 0, threads };
	double t0 = now();
	sk_model *m = sk_model_load(path, &o);
	if (!m) {
		fprintf(stderr, "bench_forward: %s\n", sk_error());
		return 1;
	}
	double t_load = now() - t0;
	int V = sk_model_vocab(m);
	int32_t *ids = malloc(sizeof *ids * (size_t)(n_pre + n_dec));
	float *lg = malloc(sizeof *lg * (size_t)V);
	sk_kv_cache *kv = sk_kv_cache_new(m, 1, n_pre + n_dec + 1);
	if (!ids || !lg || !kv) {
		fprintf(stderr, "bench_forward: %s\n", sk_error());
		return 1;
	}
	for (int i = 0; i < n_pre + n_dec; i++)
		ids[i] = 2 + (int32_t)((i * 7919) % (V > 1000 ? 1000 : V - 2));
	sk_batch_item it = { 0, ids, n_pre, 0, 0 };
	t0 = now();
	if (sk_model_forward(m, kv, &it, 1, lg) != 0) {
		fprintf(stderr, "bench_forward: %s\n", sk_error());
		return 1;
	}
	double t_pre = now() - t0;
	t0 = now();
	for (int i = 0; i < n_dec; i++) {
		sk_batch_item st = { 0, ids + n_pre + i, 1, 0, 0 };
		if (sk_model_forward(m, kv, &st, 1, lg) != 0) {
			fprintf(stderr, "bench_forward: %s\n", sk_error());
			return 1;
		}
	}
	double t_dec = now() - t0;
	printf("load %.3f s; prefill %d tokens %.3f s (%.1f tok/s); decode %d tokens %.3f s (%.1f tok/s); threads %d\n",
	       t_load, n_pre, t_pre, n_pre / t_pre, n_dec, t_dec, n_dec / t_dec, threads);
	sk_kv_cache_free(kv);
	free(ids);
	free(lg);
	sk_model_free(m);
	return 0;
}
