/* Loading a model: open the source, check every tensor, bind the weights
 * (zero-copy views of the mapping; small vectors converted to fp32; NF4
 * quantization of the decoder's linear weights on request), load the
 * tokenizer, and create the backend. */
#include "engine/model/gemma_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/gguf.h"
#include "engine/i18n.h"
#include "engine/format/quants.h"
#include "engine/threadpool.h"

int sk_model_own(sk_model *m, void *p)
{
	if (m->n_owned == m->cap_owned) {
		size_t nc = m->cap_owned ? 2 * m->cap_owned : 64;
		void **o = realloc(m->owned, nc * sizeof *o);
		if (!o)
			return -1;
		m->owned = o;
		m->cap_owned = nc;
	}
	m->owned[m->n_owned++] = p;
	return 0;
}

static const char *role_name(const sk_model *m, sk_tensor_role role, int layer, int index, char *buf, size_t cap)
{
	if (sk_tensor_name_build(role, layer, index, sk_model_source_layout(m->src), NULL, buf, cap) != 0)
		snprintf(buf, cap, "tensor role %d layer %d", (int)role, layer);
	return buf;
}

static const sk_tensor_view *need(sk_model *m, sk_tensor_role role, int layer, int index)
{
	const sk_tensor_view *v = sk_model_source_get(m->src, role, layer, index);
	if (!v) {
		char nb[160];
		sk_fail(_("%s: tensor %s is missing"), sk_model_source_path(m->src),
		        role_name(m, role, layer, index, nb, sizeof nb));
	}
	return v;
}

static int view_to_tensor(sk_model *m, const sk_tensor_view *v, sk_tensor *t)
{
	if (v->ndim < 1 || v->ndim > SK_TENSOR_MAX_DIMS)
		return sk_fail(_("%s: tensor %s has %d dimensions"), sk_model_source_path(m->src), v->name, v->ndim);
	if (!sk_dequantize_supported(v->dtype))
		return sk_fail(_("%s: tensor %s has type %s, which this engine cannot compute with"),
		               sk_model_source_path(m->src), v->name, sk_dtype_name(v->dtype));
	memset(t, 0, sizeof *t);
	t->dtype = v->dtype;
	t->ndim = v->ndim;
	for (int i = 0; i < v->ndim; i++)
		t->shape[i] = v->shape[i];
	t->data = v->data;
	t->device = SK_DEVICE_CPU;
	int64_t total = sk_dtype_nbytes(t->dtype, sk_tensor_numel(t));
	if (sk_tensor_row_bytes(t) < 0 || total < 0 || (uint64_t)total > v->nbytes)
		return sk_fail(_("%s: tensor %s: rows of %lld %s values are not whole blocks"), sk_model_source_path(m->src),
		               v->name, (long long)t->shape[t->ndim - 1], sk_dtype_name(v->dtype));
	return 0;
}

/* A matrix [rows, cols] of a role; checks the shape. */
static int bind_matrix(sk_model *m, sk_tensor_role role, int layer, int64_t rows, int64_t cols, sk_tensor *t)
{
	const sk_tensor_view *v = need(m, role, layer, 0);
	if (!v || view_to_tensor(m, v, t) != 0)
		return -1;
	if (t->ndim != 2 || (rows > 0 && t->shape[0] != rows) || t->shape[1] != cols)
		return sk_fail(_("%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld]"), sk_model_source_path(m->src),
		               v->name, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0),
		               (long long)rows, (long long)cols);
	return 0;
}

/* A small tensor of exactly n elements, converted to fp32 (plus_one: Gemma 3
 * norm stored as w, used as 1 + w). */
static float *bind_vector(sk_model *m, sk_tensor_role role, int layer, int index, int64_t n, int plus_one)
{
	const sk_tensor_view *v = need(m, role, layer, index);
	if (!v)
		return NULL;
	if (sk_tensor_view_numel(v) != n) {
		sk_fail(_("%s: tensor %s has %lld elements, expected %lld"), sk_model_source_path(m->src), v->name,
		        (long long)sk_tensor_view_numel(v), (long long)n);
		return NULL;
	}
	int64_t nb = sk_dtype_nbytes(v->dtype, n);
	float *f = malloc((size_t)n * sizeof *f);
	if (!f || sk_model_own(m, f) != 0) {
		free(f);
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	if (nb < 0 || (uint64_t)nb > v->nbytes || sk_dequantize(v->dtype, v->data, f, n) != 0) {
		sk_fail(_("%s: tensor %s has type %s, which this engine cannot read"), sk_model_source_path(m->src),
		        v->name, sk_dtype_name(v->dtype));
		return NULL;
	}
	if (plus_one)
		for (int64_t i = 0; i < n; i++)
			f[i] += 1.0f;
	return f;
}

static float *bind_norm(sk_model *m, sk_tensor_role role, int layer, int64_t n)
{
	int plus_one = m->cfg.arch == SK_ARCH_GEMMA3 && !m->cfg.norm_plus_one_stored;
	return bind_vector(m, role, layer, 0, n, plus_one);
}

typedef struct {
	sk_dtype dtype;
	const char *src;
	float *dst;
	int rc;
} dequant_job;

static void dequant_part(void *ctx, int64_t begin, int64_t end, int tid)
{
	(void)tid;
	dequant_job *j = ctx;
	if (begin < end &&
	    sk_dequantize(j->dtype, j->src + sk_dtype_nbytes(j->dtype, begin), j->dst + begin, end - begin) != 0)
		j->rc = -1; /* every part fails alike: one store wins */
}

/* Replaces a bound matrix by its NF4 quantization (with double quantization,
 * as QLoRA does), from the stored values converted one tensor at a time.
 * Both steps are shared out over pool's threads: on one core they took most
 * of an E4B load (45 s of 49 on two cores). */
static int to_nf4(sk_model *m, sk_tensor *t, sk_threadpool *pool, float *f)
{
	int64_t n = sk_tensor_numel(t);
	sk_nf4_tensor *q = calloc(1, sizeof *q);
	if (!q)
		return sk_fail("%s", _("out of memory while quantizing to NF4"));
	/* parts of 256 values: whole blocks of every quantized type */
	dequant_job dj = { t->dtype, t->data, f, 0 };
	sk_threadpool_for(pool, n, 256, dequant_part, &dj);
	if (dj.rc != 0 || sk_nf4_quantize_pool(f, n, 1, q, pool) != 0) {
		free(q);
		return sk_fail("%s", _("out of memory while quantizing to NF4"));
	}
	if (m->n_nf4 == m->cap_nf4) {
		size_t nc = m->cap_nf4 ? 2 * m->cap_nf4 : 64;
		sk_nf4_tensor **a = realloc(m->nf4, nc * sizeof *a);
		if (!a) {
			sk_nf4_free(q);
			free(q);
			return sk_fail("%s", _("out of memory"));
		}
		m->nf4 = a;
		m->cap_nf4 = nc;
	}
	m->nf4[m->n_nf4++] = q;
	t->nf4 = 1;
	t->data = q;
	return 0;
}

static void clip(float *w, int64_t n, float c)
{
	if (c <= 0)
		return;
	for (int64_t i = 0; i < n; i++)
		w[i] = w[i] > c ? c : w[i] < -c ? -c : w[i];
}

/* The stacked AltUp matrices: HF has one tensor per index, GGUF one [A-1, H, H]. */
static int bind_altup(sk_model *m, sk_tensor_role role, sk_tensor *out)
{
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size;
	const sk_tensor_view *v0 = need(m, role, -1, 0);
	if (!v0)
		return -1;
	sk_tensor t;
	if (view_to_tensor(m, v0, &t) != 0)
		return -1;
	if (t.ndim == 3) {
		if (t.shape[0] != c->altup_num_inputs - 1 || t.shape[1] != H || t.shape[2] != H)
			return sk_fail(_("%s: tensor %s has the wrong shape"), sk_model_source_path(m->src), v0->name);
		for (int i = 0; i < c->altup_num_inputs - 1; i++)
			if (sk_tensor_slice(&t, i, &out[i]) != 0)
				return sk_fail_prefix(v0->name);
		return 0;
	}
	for (int i = 0; i < c->altup_num_inputs - 1; i++) {
		const sk_tensor_view *v = need(m, role, -1, i);
		if (!v || view_to_tensor(m, v, &out[i]) != 0)
			return -1;
		if (out[i].ndim != 2 || out[i].shape[0] != H || out[i].shape[1] != H)
			return sk_fail(_("%s: tensor %s has the wrong shape"), sk_model_source_path(m->src), v->name);
	}
	return 0;
}

static float round_to_type(float x, sk_dtype t)
{
	if (t == SK_DT_BF16)
		return sk_bf16_to_f32(sk_f32_to_bf16(x));
	if (t == SK_DT_F16)
		return sk_f16_to_f32(sk_f32_to_f16(x));
	return x;
}

int sk_model_layer_meta(sk_model *m, int l)
{
	const sk_config *c = &m->cfg;
	sk_layer *L = &m->layers[l];
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	L->sliding = c->sliding[l];
	L->ffn = (int)c->intermediate_size[l];
	L->kv_src = sk_config_kv_source_layer(c, l);
	if (L->kv_src < 0)
		return -1;
	L->kv_slot = L->kv_src == l ? m->n_kv_layers++ : -1;
	L->sparsity_z = n3 ? c->activation_sparsity_z[l] : 0.0f;
	if (!isfinite(L->sparsity_z) || (n3 && c->activation_sparsity[l] <= 0.0f))
		L->sparsity_z = 0.0f;
	return 0;
}

static int bind_layer(sk_model *m, int l)
{
	const sk_config *c = &m->cfg;
	sk_layer *L = &m->layers[l];
	int64_t H = c->hidden_size, hd = c->head_dim, F = c->intermediate_size[l];
	int64_t qd = (int64_t)c->num_heads * hd, kvd = (int64_t)c->num_kv_heads * hd;
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	if (sk_model_layer_meta(m, l) != 0)
		return sk_fail(_("%s: layer %d has no layer to read K/V from"), sk_model_source_path(m->src), l);
	if (bind_matrix(m, SK_T_Q, l, qd, H, &L->q) || bind_matrix(m, SK_T_O, l, H, qd, &L->o) ||
	    bind_matrix(m, SK_T_GATE, l, F, H, &L->gate) || bind_matrix(m, SK_T_UP, l, F, H, &L->up) ||
	    bind_matrix(m, SK_T_DOWN, l, H, F, &L->down))
		return -1;
	if (!(L->attn_norm = bind_norm(m, SK_T_ATTN_NORM, l, H)) || !(L->q_norm = bind_norm(m, SK_T_Q_NORM, l, hd)) ||
	    !(L->post_attn_norm = bind_norm(m, SK_T_POST_ATTN_NORM, l, H)) ||
	    !(L->pre_ffn_norm = bind_norm(m, SK_T_PRE_FFN_NORM, l, H)) ||
	    !(L->post_ffn_norm = bind_norm(m, SK_T_POST_FFN_NORM, l, H)))
		return -1;
	if (L->kv_slot >= 0) {
		if (bind_matrix(m, SK_T_K, l, kvd, H, &L->k) || bind_matrix(m, SK_T_V, l, kvd, H, &L->v))
			return -1;
		if (!(L->k_norm = bind_norm(m, SK_T_K_NORM, l, hd)))
			return -1;
	}
	if (!n3)
		return 0;
	int A = c->altup_num_inputs;
	int64_t R = c->laurel_rank, P = c->hidden_size_per_layer_input;
	if (bind_matrix(m, SK_T_LAUREL_L, l, R, H, &L->laurel_l) || bind_matrix(m, SK_T_LAUREL_R, l, H, R, &L->laurel_r) ||
	    bind_matrix(m, SK_T_PLE_GATE, l, P, H, &L->ple_gate) || bind_matrix(m, SK_T_PLE_PROJ, l, H, P, &L->ple_proj))
		return -1;
	if (!(L->laurel_norm = bind_norm(m, SK_T_LAUREL_NORM, l, H)) ||
	    !(L->ple_post_norm = bind_norm(m, SK_T_PLE_POST_NORM, l, H)) ||
	    !(L->altup_scale = bind_vector(m, SK_T_ALTUP_CORRECT_SCALE, l, 0, H, 0)) ||
	    !(L->router_norm = bind_norm(m, SK_T_ALTUP_ROUTER_NORM, l, H)) ||
	    !(L->router = bind_vector(m, SK_T_ALTUP_ROUTER, l, 0, (int64_t)A * H, 0)) ||
	    !(L->pred_coef = bind_vector(m, SK_T_ALTUP_PREDICT_COEF, l, 0, (int64_t)A * A * A, 0)) ||
	    !(L->corr_coef = bind_vector(m, SK_T_ALTUP_CORRECT_COEF, l, 0, (int64_t)A * A, 0)))
		return -1;
	/* HF clamps both coefficient matrices (in place, at run time); frozen
	 * weights can be clamped once */
	clip(L->pred_coef, (int64_t)A * A * A, c->altup_coef_clip);
	clip(L->corr_coef, (int64_t)A * A, c->altup_coef_clip);
	return 0;
}

#define LAYER_MATRICES(L) { &(L)->q, &(L)->k, &(L)->v, &(L)->o, &(L)->gate, &(L)->up, &(L)->down }

static int quantize_layers(sk_model *m)
{
	/* one float buffer for the largest matrix, reused: a fresh one per
	 * matrix had the kernel zero 16 GB of new pages for an E4B load */
	int64_t most = 0;
	for (int l = 0; l < m->cfg.num_layers; l++) {
		sk_tensor *ts[] = LAYER_MATRICES(&m->layers[l]);
		for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
			if (ts[i]->data && sk_tensor_numel(ts[i]) > most)
				most = sk_tensor_numel(ts[i]);
	}
	float *f = most ? malloc((size_t)most * sizeof *f) : NULL;
	if (most && !f)
		return sk_fail("%s", _("out of memory while quantizing to NF4"));
	sk_threadpool *pool = sk_threadpool_new(0); /* NULL: the work is done on this thread */
	int rc = 0;
	for (int l = 0; l < m->cfg.num_layers && rc == 0; l++) {
		sk_tensor *ts[] = LAYER_MATRICES(&m->layers[l]);
		for (size_t i = 0; i < sizeof ts / sizeof ts[0] && rc == 0; i++)
			if (ts[i]->data && to_nf4(m, ts[i], pool, f) != 0)
				rc = -1;
	}
	sk_threadpool_free(pool);
	free(f);
	return rc;
}

static int bind_all(sk_model *m)
{
	const sk_config *c = &m->cfg;
	int64_t H = c->hidden_size;
	const sk_tensor_view *ev = need(m, SK_T_EMBED, -1, 0);
	if (!ev || view_to_tensor(m, ev, &m->embed) != 0)
		return -1;
	if (m->embed.ndim != 2 || m->embed.shape[1] != H || m->embed.shape[0] < 1 || m->embed.shape[0] > INT32_MAX)
		return sk_fail(_("%s: tensor %s has the wrong shape"), sk_model_source_path(m->src), ev->name);
	m->vocab = (int32_t)m->embed.shape[0];
	m->embed_scale = round_to_type(sqrtf((float)H), m->embed.dtype);
	if (!(m->final_norm = bind_norm(m, SK_T_FINAL_NORM, -1, H)))
		return -1;
	m->layers = calloc((size_t)c->num_layers, sizeof *m->layers);
	if (!m->layers || sk_model_own(m, m->layers) != 0) {
		free(m->layers);
		m->layers = NULL;
		return sk_fail("%s", _("out of memory"));
	}
	for (int l = 0; l < c->num_layers; l++)
		if (bind_layer(m, l) != 0)
			return -1;
	if (c->arch != SK_ARCH_GEMMA3N)
		return 0;
	int64_t LP = (int64_t)c->num_layers * c->hidden_size_per_layer_input;
	if (c->altup_num_inputs < 2 || c->altup_num_inputs > SK_MAX_ALTUP)
		return sk_fail(_("%s: altup_num_inputs %d is not supported"), sk_model_source_path(m->src),
		               c->altup_num_inputs);
	const sk_tensor_view *pv = need(m, SK_T_PLE_EMBED, -1, 0);
	if (!pv || view_to_tensor(m, pv, &m->ple_embed) != 0)
		return -1;
	if (m->ple_embed.ndim != 2 || m->ple_embed.shape[1] != LP || m->ple_embed.shape[0] < 1)
		return sk_fail(_("%s: tensor %s has the wrong shape"), sk_model_source_path(m->src), pv->name);
	m->ple_scale = round_to_type(sqrtf((float)c->hidden_size_per_layer_input), m->ple_embed.dtype);
	if (bind_matrix(m, SK_T_PLE_MODEL_PROJ, -1, LP, H, &m->ple_model_proj) != 0)
		return -1;
	if (!(m->ple_proj_norm = bind_norm(m, SK_T_PLE_PROJ_NORM, -1, c->hidden_size_per_layer_input)))
		return -1;
	if (bind_altup(m, SK_T_ALTUP_PROJ, m->altup_proj) != 0 || bind_altup(m, SK_T_ALTUP_UNEMBD, m->altup_unembed) != 0)
		return -1;
	return 0;
}

/* Moves every weight the forward reads to the backend (a no-op for the CPU,
 * which reads them in place). The per-layer-embedding table stays in host
 * memory: only the rows of a batch's tokens are read. */
static int to_backend(sk_model *m)
{
	const sk_backend_ops *o = m->be->ops;
	if (!o->load_tensor)
		return 0;
	const sk_config *c = &m->cfg;
	int n3 = c->arch == SK_ARCH_GEMMA3N;
	int64_t H = c->hidden_size, hd = c->head_dim, A = c->altup_num_inputs;
	sk_backend *be = m->be;
#define T(t, what) ((t)->data && o->load_tensor(be, (t), 0, (what)) != 0)
#define V(v, n, what) ((v) && o->load_vector(be, &(v), (n), (what)) != 0)
	if (T(&m->embed, "embed_tokens") || V(m->final_norm, H, "norm"))
		return -1;
	if (n3) {
		if ((m->ple_embed.data && o->load_tensor(be, &m->ple_embed, 1, "embed_tokens_per_layer") != 0) ||
		    T(&m->ple_model_proj, "per_layer_model_projection") ||
		    V(m->ple_proj_norm, c->hidden_size_per_layer_input, "per_layer_projection_norm"))
			return -1;
		for (int i = 0; i < A - 1; i++)
			if (T(&m->altup_proj[i], "altup_projections") || T(&m->altup_unembed[i], "altup_unembed_projections"))
				return -1;
	}
	for (int l = 0; l < c->num_layers; l++) {
		sk_layer *L = &m->layers[l];
		sk_tensor *ts[] = { &L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down,
		                    &L->laurel_l, &L->laurel_r, &L->ple_gate, &L->ple_proj };
		for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
			if (T(ts[i], "layer weight"))
				return -1;
		if (V(L->attn_norm, H, "input_layernorm") || V(L->q_norm, hd, "q_norm") || V(L->k_norm, hd, "k_norm") ||
		    V(L->post_attn_norm, H, "post_attention_layernorm") || V(L->pre_ffn_norm, H, "pre_feedforward_layernorm") ||
		    V(L->post_ffn_norm, H, "post_feedforward_layernorm"))
			return -1;
		if (n3 && (V(L->laurel_norm, H, "laurel norm") || V(L->ple_post_norm, H, "post_per_layer_input_norm") ||
		           V(L->altup_scale, H, "altup correct_output_scale") || V(L->router_norm, H, "altup router_norm") ||
		           V(L->router, A * H, "altup modality_router") || V(L->pred_coef, A * A * A, "altup prediction_coefs") ||
		           V(L->corr_coef, A * A, "altup correction_coefs")))
			return -1;
	}
#undef T
#undef V
	return 0;
}

static int load_tokenizer(sk_model *m)
{
	if (sk_model_source_kind(m->src) == SK_SRC_GGUF) {
		m->tok = sk_tokenizer_from_gguf(sk_model_source_gguf(m->src), sk_model_source_path(m->src));
		return m->tok ? 0 : -1;
	}
	const char *tj = sk_model_source_tokenizer_json(m->src);
	if (!tj)
		return 0;
	m->tok = sk_tokenizer_load(tj);
	return m->tok ? 0 : -1;
}

sk_model *sk_model_load(const char *path, const sk_model_opts *opts)
{
	sk_model_opts def = { SK_DEVICE_CPU, 0, 0 };
	if (!opts)
		opts = &def;
	sk_model *m = calloc(1, sizeof *m);
	if (!m) {
		sk_fail("%s", _("out of memory"));
		return NULL;
	}
	m->src = sk_model_source_open(path);
	if (!m->src)
		goto fail;
	const sk_config *c = sk_model_source_config(m->src);
	if (sk_model_source_kind(m->src) == SK_SRC_TOKENIZER_ONLY || !c) {
		sk_fail(_("%s: holds a tokenizer but no model weights"), path);
		goto fail;
	}
	m->cfg = *c;
	if (m->cfg.arch != SK_ARCH_GEMMA3N && m->cfg.arch != SK_ARCH_GEMMA3) {
		sk_fail(_("%s: architecture \"%s\" is not supported (Gemma 3n and Gemma 3 are)"), path,
		        m->cfg.model_type);
		goto fail;
	}
	if (m->cfg.rope_scaling_global == SK_ROPE_OTHER || m->cfg.rope_scaling_local == SK_ROPE_OTHER) {
		sk_fail(_("%s: RoPE scaling \"%s\" is not supported"), path, m->cfg.rope_scaling_name);
		goto fail;
	}
	if (m->cfg.head_dim < 2 || m->cfg.head_dim > 1024 || m->cfg.head_dim % 2) {
		sk_fail(_("%s: head_dim %d is not supported"), path, m->cfg.head_dim);
		goto fail;
	}
	if (sk_config_validate(&m->cfg, path) != 0)
		goto fail;
	if (sk_model_source_check(m->src, NULL, NULL) > 0)
		goto fail;
	if (bind_all(m) != 0)
		goto fail;
	m->quant_nf4 = opts->quant_nf4;
	if (opts->quant_nf4 && quantize_layers(m) != 0)
		goto fail;
	if (load_tokenizer(m) != 0)
		goto fail;
	m->be = sk_backend_new(opts->device, opts->threads);
	if (!m->be || to_backend(m) != 0)
		goto fail;
	return m;
fail:
	sk_model_free(m);
	return NULL;
}

void sk_model_free(sk_model *m)
{
	if (!m)
		return;
	if (m->be && m->ws.base)
		m->be->ops->free(m->be, m->ws.base);
	sk_arena_free(&m->hstage);
	sk_backend_free(m->be);
	sk_tokenizer_free(m->tok);
	for (size_t i = 0; i < m->n_nf4; i++) {
		sk_nf4_free(m->nf4[i]);
		free(m->nf4[i]);
	}
	free(m->nf4);
	for (size_t i = 0; i < m->n_owned; i++)
		free(m->owned[i]);
	free(m->owned);
	sk_model_source_close(m->src);
	free(m);
}

int sk_model_workspace(sk_model *m, size_t need)
{
	return sk_model_workspace_upto(m, need, SIZE_MAX);
}

int sk_model_workspace_upto(sk_model *m, size_t need, size_t most)
{
	if (m->ws.base && m->ws.cap >= need) {
		sk_arena_reset(&m->ws);
		return 0;
	}
	if (m->be->ops->record_drop) /* recordings name the old buffers */
		m->be->ops->record_drop(m->be);
	size_t want = need;
	if (m->ws.base) {
		/* grown again (training sequences of every length): a quarter more,
		 * so that the next longer batch does not free and allocate again */
		m->be->ops->free(m->be, m->ws.base);
		want += need / 4;
		if (want > most)
			want = most > need ? most : need;
	}
	memset(&m->ws, 0, sizeof m->ws);
	void *p = m->be->ops->alloc(m->be, want, _("the activations workspace"));
	if (!p && want > need) { /* no room for the quarter more: what is needed */
		sk_error_clear();
		p = m->be->ops->alloc(m->be, want = need, _("the activations workspace"));
	}
	if (!p)
		return -1;
	sk_arena_adopt(&m->ws, p, want);
	return 0;
}

void sk_model_workspace_release(sk_model *m)
{
	if (!m->ws.base)
		return;
	if (m->be->ops->record_drop)
		m->be->ops->record_drop(m->be);
	m->be->ops->free(m->be, m->ws.base);
	memset(&m->ws, 0, sizeof m->ws);
}

int sk_model_recorded_kernels(const sk_model *m)
{
	return m->be->ops->recorded_nodes ? m->be->ops->recorded_nodes(m->be) : 0;
}

void sk_model_profile_report(sk_model *m, void *file)
{
	if (m->be->ops->profile_report)
		m->be->ops->profile_report(m->be, file);
}

double sk_model_copy_bandwidth(sk_model *m)
{
	return m->be->ops->copy_bandwidth ? m->be->ops->copy_bandwidth(m->be) : 0;
}

int sk_model_host_stage(sk_model *m, size_t need)
{
	if (m->hstage.cap < need && sk_arena_reserve(&m->hstage, need) != 0)
		return -1;
	sk_arena_reset(&m->hstage);
	return 0;
}

const sk_config *sk_model_config(const sk_model *m)
{
	return &m->cfg;
}

const sk_tokenizer *sk_model_tokenizer(const sk_model *m)
{
	return m->tok;
}

int32_t sk_model_vocab(const sk_model *m)
{
	return m->vocab;
}

int sk_model_set_adapter(sk_model *m, const struct sk_lora *lora)
{
	if (m->be->ops->set_adapter && m->be->ops->set_adapter(m->be, lora) != 0) {
		m->lora = NULL;
		return -1;
	}
	m->lora = lora;
	return 0;
}

const struct sk_lora *sk_model_adapter(const sk_model *m)
{
	return m->lora;
}

/* Bytes of one weight tensor as the forward reads it. */
static uint64_t tensor_bytes(const sk_tensor *t)
{
	if (!t->data)
		return 0;
	if (t->nf4) { /* always double-quantized (quantize_layers) */
		uint64_t n = (uint64_t)sk_tensor_numel(t), nb = (n + 63) / 64;
		return (n + 1) / 2 + nb + (nb + 255) / 256 * sizeof(float);
	}
	int64_t rb = sk_tensor_row_bytes(t), cols = sk_tensor_cols(t), n = sk_tensor_numel(t);
	if (rb < 0 || cols <= 0 || n <= 0)
		return 0;
	return (uint64_t)rb * (uint64_t)(n / cols);
}

void sk_model_memory(const sk_model *m, sk_model_mem *out)
{
	memset(out, 0, sizeof *out);
	if (!m)
		return;
	const sk_config *c = &m->cfg;
	uint64_t w = tensor_bytes(&m->embed) + tensor_bytes(&m->ple_embed) + tensor_bytes(&m->ple_model_proj);
	for (int i = 0; i < SK_MAX_ALTUP; i++)
		w += tensor_bytes(&m->altup_proj[i]) + tensor_bytes(&m->altup_unembed[i]);
	for (int l = 0; l < c->num_layers; l++) {
		const sk_layer *L = &m->layers[l];
		const sk_tensor *ts[] = { &L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down,
		                          &L->laurel_l, &L->laurel_r, &L->ple_gate, &L->ple_proj };
		for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
			w += tensor_bytes(ts[i]);
	}
	out->weights = w;
	out->host_table = m->be && m->be->device == SK_DEVICE_CUDA ? tensor_bytes(&m->ple_embed) : 0;
	out->activations = m->ws.cap;
	out->backend = m->be ? m->be->ops->name : "cpu";
	if (m->be && m->be->ops->mem_info)
		m->be->ops->mem_info(m->be, &out->device_free, &out->device_total);
}

uint64_t sk_model_kv_bytes(const sk_model *m, int n_seqs, int n_tokens)
{
	if (!m || n_seqs <= 0 || n_tokens <= 0)
		return 0;
	const sk_config *c = &m->cfg;
	uint64_t per_seq = 0, kv_dim = (uint64_t)c->num_kv_heads * (uint64_t)c->head_dim;
	for (int l = 0; l < c->num_layers; l++) {
		const sk_layer *L = &m->layers[l];
		if (L->kv_slot < 0)
			continue;
		uint64_t cap = (uint64_t)n_tokens;
		if (L->sliding && c->sliding_window > 0 && (uint64_t)c->sliding_window < cap)
			cap = (uint64_t)c->sliding_window;
		per_seq += 2 * cap * kv_dim * sizeof(float);
	}
	return per_seq * (uint64_t)n_seqs;
}

int sk_model_has_chat_template(const sk_model *m)
{
	return m->src && sk_model_source_has_chat_template(m->src);
}
