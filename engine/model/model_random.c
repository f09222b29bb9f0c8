/* A model of a released shape (Gemma 3n E4B or E2B) with random weights
 * made directly by the backend: real weights cannot always be had, and a
 * benchmark needs only the shape. Linear weights are uniform with the
 * variance 1/in that keeps activations at their scale; norms near 1. */
#include "engine/model/gemma_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

typedef struct {
	sk_model *m;
	uint64_t seed;
	int nf4;
} maker;

static int matrix(maker *k, sk_tensor *t, int64_t rows, int64_t cols, int nf4, const char *what)
{
	memset(t, 0, sizeof *t);
	t->dtype = SK_DT_BF16;
	t->ndim = 2;
	t->shape[0] = rows;
	t->shape[1] = cols;
	sk_backend *be = k->m->be;
	return be->ops->random_tensor(be, t, nf4, 0, sqrtf(3.0f / (float)cols), k->seed++, what);
}

/* An fp32 vector of n values around center ± spread, on the backend. */
static float *vector(maker *k, int64_t n, float center, float spread, const char *what)
{
	float *v = malloc((size_t)n * sizeof *v);
	if (!v) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	uint64_t s = k->seed++ * 0x9E3779B97F4A7C15ull + 1;
	for (int64_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		v[i] = center + spread * (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
	}
	float *d = v;
	sk_backend *be = k->m->be;
	int rc = be->ops->load_vector(be, &d, n, what);
	free(v);
	if (rc != 0)
		return NULL;
	/* the backend owns its copy; the host one is gone */
	return d;
}

static int make_layer(maker *k, int l)
{
	sk_model *m = k->m;
	const sk_config *c = &m->cfg;
	sk_layer *L = &m->layers[l];
	if (sk_model_layer_meta(m, l) != 0)
		return sk_fail(_("layer %d has no layer to read K/V from"), l);
	int64_t H = c->hidden_size, hd = c->head_dim, F = L->ffn;
	int64_t qd = (int64_t)c->num_heads * hd, kvd = (int64_t)c->num_kv_heads * hd;
	int64_t A = c->altup_num_inputs, R = c->laurel_rank, P = c->hidden_size_per_layer_input;
	int q = k->nf4;
	if (matrix(k, &L->q, qd, H, q, "q_proj") || matrix(k, &L->o, H, qd, q, "o_proj") ||
	    matrix(k, &L->gate, F, H, q, "gate_proj") || matrix(k, &L->up, F, H, q, "up_proj") ||
	    matrix(k, &L->down, H, F, q, "down_proj"))
		return -1;
	if (L->kv_slot >= 0 && (matrix(k, &L->k, kvd, H, q, "k_proj") || matrix(k, &L->v, kvd, H, q, "v_proj") ||
	                        !(L->k_norm = vector(k, hd, 1.0f, 0.1f, "k_norm"))))
		return -1;
	if (!(L->attn_norm = vector(k, H, 1.0f, 0.1f, "input_layernorm")) ||
	    !(L->q_norm = vector(k, hd, 1.0f, 0.1f, "q_norm")) ||
	    !(L->post_attn_norm = vector(k, H, 1.0f, 0.1f, "post_attention_layernorm")) ||
	    !(L->pre_ffn_norm = vector(k, H, 1.0f, 0.1f, "pre_feedforward_layernorm")) ||
	    !(L->post_ffn_norm = vector(k, H, 1.0f, 0.1f, "post_feedforward_layernorm")))
		return -1;
	if (c->arch != SK_ARCH_GEMMA3N)
		return 0;
	if (matrix(k, &L->laurel_l, R, H, 0, "laurel.linear_left") || matrix(k, &L->laurel_r, H, R, 0, "laurel.linear_right") ||
	    matrix(k, &L->ple_gate, P, H, 0, "per_layer_input_gate") || matrix(k, &L->ple_proj, H, P, 0, "per_layer_projection"))
		return -1;
	if (!(L->laurel_norm = vector(k, H, 1.0f, 0.1f, "laurel norm")) ||
	    !(L->ple_post_norm = vector(k, H, 1.0f, 0.1f, "post_per_layer_input_norm")) ||
	    !(L->altup_scale = vector(k, H, 1.0f, 0.1f, "altup correct_output_scale")) ||
	    !(L->router_norm = vector(k, H, 1.0f, 0.1f, "altup router_norm")) ||
	    !(L->router = vector(k, A * H, 0.0f, 0.05f, "altup modality_router")) ||
	    !(L->pred_coef = vector(k, A * A * A, 0.0f, 0.1f, "altup prediction_coefs")) ||
	    !(L->corr_coef = vector(k, A * A, 0.0f, 0.1f, "altup correction_coefs")))
		return -1;
	return 0;
}

sk_model *sk_model_random(const char *shape, const sk_model_opts *opts, uint64_t seed)
{
	sk_model *m = calloc(1, sizeof *m);
	if (!m) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	maker k = { m, seed, opts && opts->quant_nf4 };
	if (sk_config_preset(shape, &m->cfg) != 0 || sk_config_validate(&m->cfg, shape) != 0)
		goto fail;
	const sk_config *c = &m->cfg;
	m->quant_nf4 = k.nf4;
	m->be = sk_backend_new(opts ? opts->device : SK_DEVICE_AUTO, opts ? opts->threads : 0);
	if (!m->be)
		goto fail;
	if (!m->be->ops->random_tensor) {
		sk_fail(_("random weights are made on the GPU; the %s backend cannot make them"), m->be->ops->name);
		goto fail;
	}
	int64_t H = c->hidden_size, P = c->hidden_size_per_layer_input, LP = (int64_t)c->num_layers * P;
	m->vocab = c->vocab_size;
	m->embed_scale = sk_bf16_to_f32(sk_f32_to_bf16(sqrtf((float)H)));
	m->ple_scale = sk_bf16_to_f32(sk_f32_to_bf16(sqrtf((float)P)));
	memset(&m->embed, 0, sizeof m->embed);
	m->embed.ndim = 2;
	m->embed.shape[0] = c->vocab_size;
	m->embed.shape[1] = H;
	if (m->be->ops->random_tensor(m->be, &m->embed, 0, 0, 0.03f, k.seed++, "embed_tokens") != 0 ||
	    !(m->final_norm = vector(&k, H, 1.0f, 0.1f, "norm")))
		goto fail;
	m->layers = calloc((size_t)c->num_layers, sizeof *m->layers);
	if (!m->layers || sk_model_own(m, m->layers) != 0) {
		free(m->layers);
		m->layers = NULL;
		sk_fail("%s", _("out of memory"));
		goto fail;
	}
	for (int l = 0; l < c->num_layers; l++)
		if (make_layer(&k, l) != 0)
			goto fail;
	if (c->arch == SK_ARCH_GEMMA3N) {
		m->ple_embed.ndim = 2;
		m->ple_embed.shape[0] = c->vocab_size_per_layer_input;
		m->ple_embed.shape[1] = LP;
		if (m->be->ops->random_tensor(m->be, &m->ple_embed, 0, 1, 0.03f, k.seed++, "embed_tokens_per_layer") != 0 ||
		    matrix(&k, &m->ple_model_proj, LP, H, 0, "per_layer_model_projection") != 0 ||
		    !(m->ple_proj_norm = vector(&k, P, 1.0f, 0.1f, "per_layer_projection_norm")))
			goto fail;
		for (int i = 0; i < c->altup_num_inputs - 1; i++)
			if (matrix(&k, &m->altup_proj[i], H, H, 0, "altup_projections") != 0 ||
			    matrix(&k, &m->altup_unembed[i], H, H, 0, "altup_unembed_projections") != 0)
				goto fail;
	}
	return m;
fail:
	sk_model_free(m);
	return NULL;
}
