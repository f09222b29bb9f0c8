/* CPU attention backward for one sequence without a cache. Probabilities
 * are recomputed, never stored: pass 1 runs one (query row, head) per task
 * and gives dq plus each row's logsumexp and D = Σ P·dP; pass 2 runs one
 * (KV head, key row) per task and gives dk, dv, so no two tasks write the
 * same output. */
#include "engine/backend/backend_cpu_backward.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

typedef struct {
	sk_cpu *cpu;
	const float *q, *k, *v, *dout;
	float *dq, *dk, *dv, *lse, *D;
	int64_t n, kvd;
	int nh, nkv, hd, window;
	float scale, softcap;
	atomic_int failed;
} abwd_job;

static inline float score(const abwd_job *j, const float *qv, const float *kv, float *dcap)
{
	float s = sk_cpu_sdot(qv, kv, j->hd) * j->scale;
	*dcap = 1.0f;
	if (j->softcap > 0) {
		s = tanhf(s / j->softcap) * j->softcap;
		*dcap = 1.0f - (s / j->softcap) * (s / j->softcap);
	}
	return s;
}

static void pass_rows(void *ctx, int64_t t0, int64_t t1, int tid)
{
	abwd_job *j = ctx;
	float *sc = sk_cpu_scratch_get(&j->cpu->scratch[tid], (size_t)(3 * j->n));
	if (!sc) {
		atomic_store(&j->failed, 1);
		return;
	}
	float *dp = sc + j->n, *dcs = sc + 2 * j->n;
	int group = j->nh / j->nkv;
	for (int64_t t = t0; t < t1; t++) {
		int64_t i = t / j->nh;
		int h = (int)(t % j->nh);
		int64_t lo = j->window > 0 && i - j->window + 1 > 0 ? i - j->window + 1 : 0;
		const float *qv = j->q + (i * j->nh + h) * j->hd, *go = j->dout + (i * j->nh + h) * j->hd;
		int64_t off = (int64_t)(h / group) * j->hd;
		float mx = -INFINITY;
		for (int64_t k = lo; k <= i; k++) {
			sc[k - lo] = score(j, qv, j->k + k * j->kvd + off, &dcs[k - lo]);
			if (sc[k - lo] > mx)
				mx = sc[k - lo];
		}
		double sum = 0;
		for (int64_t k = lo; k <= i; k++)
			sum += exp((double)sc[k - lo] - mx);
		double lse = (double)mx + log(sum), D = 0;
		for (int64_t k = lo; k <= i; k++) {
			float p = (float)exp((double)sc[k - lo] - lse);
			dp[k - lo] = sk_cpu_sdot(go, j->v + k * j->kvd + off, j->hd);
			D += (double)p * dp[k - lo];
			sc[k - lo] = p;
		}
		float *o = j->dq + (i * j->nh + h) * j->hd;
		memset(o, 0, (size_t)j->hd * sizeof *o);
		for (int64_t k = lo; k <= i; k++) {
			const float *kv = j->k + k * j->kvd + off;
			float ds = sc[k - lo] * (dp[k - lo] - (float)D) * dcs[k - lo] * j->scale;
			for (int d = 0; d < j->hd; d++)
				o[d] += ds * kv[d];
		}
		j->lse[t] = (float)lse;
		j->D[t] = (float)D;
	}
}

static void pass_keys(void *ctx, int64_t t0, int64_t t1, int tid)
{
	(void)tid;
	abwd_job *j = ctx;
	int group = j->nh / j->nkv;
	for (int64_t t = t0; t < t1; t++) {
		int g = (int)(t / j->n);
		int64_t kr = t % j->n;
		int64_t hi = j->window > 0 && kr + j->window - 1 < j->n - 1 ? kr + j->window - 1 : j->n - 1;
		int64_t off = (int64_t)g * j->hd;
		const float *kv = j->k + kr * j->kvd + off, *vv = j->v + kr * j->kvd + off;
		float *dk = j->dk + kr * j->kvd + off, *dv = j->dv + kr * j->kvd + off;
		for (int h = g * group; h < (g + 1) * group; h++)
			for (int64_t i = kr; i <= hi; i++) {
				int64_t row = i * j->nh + h;
				const float *qv = j->q + row * j->hd, *go = j->dout + row * j->hd;
				float dcap;
				float s = score(j, qv, kv, &dcap);
				float p = (float)exp((double)s - j->lse[row]);
				float dpv = sk_cpu_sdot(go, vv, j->hd);
				float ds = p * (dpv - j->D[row]) * dcap * j->scale;
				for (int d = 0; d < j->hd; d++) {
					dk[d] += ds * qv[d];
					dv[d] += p * go[d];
				}
			}
	}
}

int sk_cpu_attention_bwd(sk_backend *be, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                         int hd, int window, float scale, float softcap, const float *dout, float *dq, float *dk,
                         float *dv, float *ws)
{
	if (n <= 0)
		return 0;
	if (nkv <= 0 || nh % nkv != 0)
		return sk_fail("%s", _("attention: the query heads are not a multiple of the KV heads"));
	abwd_job j = { .cpu = sk_cpu_of(be), .q = q, .k = k, .v = v, .dout = dout, .dq = dq, .dk = dk, .dv = dv,
	               .lse = ws, .D = ws + n * nh, .n = n, .kvd = (int64_t)nkv * hd, .nh = nh, .nkv = nkv, .hd = hd,
	               .window = window, .scale = scale, .softcap = softcap };
	atomic_init(&j.failed, 0);
	sk_threadpool_for(j.cpu->pool, n * nh, 1, pass_rows, &j);
	if (atomic_load(&j.failed))
		return sk_fail("%s", _("attention: out of memory"));
	sk_threadpool_for(j.cpu->pool, n * nkv, 1, pass_keys, &j);
	return 0;
}
