/* The reference CPU attention of the exact ops table (training, and
 * SK_CPU_EXACT): causal, optional sliding window, GQA, keys from a ring
 * cache plus the batch's new keys; one (query row, head) pair per task,
 * one key at a time. Training's gradient checks were tuned on its exact
 * rounding, so it stays as it was; inference uses backend_cpu_attn.c. */
#include "engine/backend/backend_cpu.h"

#include <math.h>
#include <stdatomic.h>

#include "engine/error.h"
#include "engine/i18n.h"

typedef struct {
	sk_cpu *cpu;
	const float *q;
	const sk_attn_kv *kv;
	int nh, nkv, hd, window;
	float scale, softcap;
	float *out;
	int64_t kv_dim, max_keys;
	atomic_int failed;
} attn_job;

static inline const float *key_at(const attn_job *j, int64_t p, int v)
{
	const sk_attn_kv *kv = j->kv;
	if (p >= kv->past_hi)
		return (v ? kv->v_new : kv->k_new) + (p - kv->past_hi) * j->kv_dim;
	return (v ? kv->v_past : kv->k_past) + (p % kv->cap) * j->kv_dim;
}

static void attn_task(void *ctx, int64_t t0, int64_t t1, int tid)
{
	attn_job *j = ctx;
	const sk_attn_kv *kv = j->kv;
	float *sc = sk_cpu_scratch_get(&j->cpu->scratch[tid], (size_t)j->max_keys);
	if (!sc) {
		atomic_store(&j->failed, 1);
		return;
	}
	int group = j->nh / j->nkv;
	for (int64_t t = t0; t < t1; t++) {
		int64_t i = t / j->nh;
		int h = (int)(t % j->nh);
		int64_t p = kv->past_hi + i;
		int64_t lo = kv->past_lo;
		if (j->window > 0 && p - j->window + 1 > lo)
			lo = p - j->window + 1;
		const float *qv = j->q + (i * j->nh + h) * j->hd;
		int64_t off = (int64_t)(h / group) * j->hd;
		float mx = -INFINITY;
		for (int64_t k = lo; k <= p; k++) {
			float s = sk_cpu_sdot(qv, key_at(j, k, 0) + off, j->hd) * j->scale;
			if (j->softcap > 0)
				s = tanhf(s / j->softcap) * j->softcap;
			sc[k - lo] = s;
			if (s > mx)
				mx = s;
		}
		double sum = 0;
		for (int64_t k = lo; k <= p; k++) {
			float e = expf(sc[k - lo] - mx);
			sc[k - lo] = e;
			sum += e;
		}
		float inv = (float)(1.0 / sum);
		float *o = j->out + (i * j->nh + h) * j->hd;
		for (int d = 0; d < j->hd; d++)
			o[d] = 0;
		for (int64_t k = lo; k <= p; k++) {
			float w = sc[k - lo] * inv;
			const float *vv = key_at(j, k, 1) + off;
			for (int d = 0; d < j->hd; d++)
				o[d] += w * vv[d];
		}
	}
}

int sk_cpu_attention_ref(sk_backend *be, const float *q, int64_t n, const sk_attn_kv *kv, int nh, int nkv, int hd,
                      int window, float scale, float softcap, float *out)
{
	attn_job j = { .cpu = sk_cpu_of(be), .q = q, .kv = kv, .nh = nh, .nkv = nkv, .hd = hd, .window = window,
	               .scale = scale, .softcap = softcap, .out = out, .kv_dim = (int64_t)nkv * hd,
	               .max_keys = kv->past_hi - kv->past_lo + n };
	atomic_init(&j.failed, 0);
	sk_threadpool_for(j.cpu->pool, n * nh, 1, attn_task, &j);
	if (atomic_load(&j.failed))
		return sk_fail("%s", _("attention: out of memory"));
	return 0;
}
