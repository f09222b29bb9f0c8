/* Opening a model path of any supported kind and indexing its tensors by
 * role; the shape check against the config. Headers only: tensor data is
 * never read here. */
#include "engine/format/files.h"
#include "engine/model/model_source.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/format/dtype.h"
#include "engine/error.h"
#include "engine/format/gguf.h"
#include "engine/i18n.h"
#include "engine/format/safetensors.h"

struct sk_model_source {
	sk_source_kind kind;
	char *path;
	char *tokenizer_json;
	char origin[64];
	char hf_prefix[32]; /* "model.language_model." or "model." ...: names of missing tensors follow the file */
	int has_config;
	sk_config cfg;
	sk_st_checkpoint *st;
	sk_gguf *gguf;
	size_t n;
	sk_tensor_id *ids;
	/* index into the tensor list per (role, layer-or-index); -1 when absent */
	int32_t (*slot)[SK_MAX_LAYERS];
};

const char *sk_model_source_kind_name(sk_source_kind k)
{
	switch (k) {
	case SK_SRC_HF_DIR: return _("Hugging Face directory");
	case SK_SRC_SAFETENSORS: return _("safetensors file");
	case SK_SRC_GGUF: return _("GGUF file");
	case SK_SRC_TOKENIZER_ONLY: return _("tokenizer only");
	default: return "?";
	}
}

static int is_regular(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Counts *.safetensors and *.gguf files in a directory; remembers one .gguf. */
static int scan_dir(const char *dir, int *n_st, int *n_gguf, char **gguf_name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	*n_st = *n_gguf = 0;
	*gguf_name = NULL;
	if (!d)
		return sk_fail("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (has_suffix(e->d_name, ".safetensors"))
			(*n_st)++;
		else if (has_suffix(e->d_name, ".gguf")) {
			(*n_gguf)++;
			free(*gguf_name);
			*gguf_name = strdup(e->d_name);
		}
	}
	closedir(d);
	return 0;
}

size_t sk_model_source_tensor_count(const sk_model_source *s) { return s->n; }

const sk_tensor_view *sk_model_source_tensor(const sk_model_source *s, size_t i)
{
	if (i >= s->n)
		return NULL;
	return s->gguf ? sk_gguf_tensor(s->gguf, i) : sk_st_checkpoint_tensor(s->st, i);
}

sk_tensor_id sk_model_source_tensor_id(const sk_model_source *s, size_t i)
{
	sk_tensor_id none = { SK_T_NONE, -1, -1, SK_TC_UNKNOWN };
	return i < s->n ? s->ids[i] : none;
}

static int slot_of(const sk_tensor_id *id)
{
	if (sk_tensor_role_is_per_layer(id->role))
		return id->layer;
	return id->index > 0 ? id->index : 0;
}

const sk_tensor_view *sk_model_source_get(const sk_model_source *s, sk_tensor_role role, int layer, int index)
{
	if (!s->slot || role <= SK_T_NONE || role >= SK_T_ROLE_COUNT)
		return NULL;
	int k = sk_tensor_role_is_per_layer(role) ? layer : index;
	if (k < 0 || k >= SK_MAX_LAYERS || s->slot[role][k] < 0)
		return NULL;
	return sk_model_source_tensor(s, (size_t)s->slot[role][k]);
}

/* Parses every name (with the config when known) and fills the role table. */
static int index_tensors(sk_model_source *s)
{
	s->n = s->gguf ? sk_gguf_tensor_count(s->gguf) : s->st ? sk_st_checkpoint_count(s->st) : 0;
	free(s->ids);
	s->ids = calloc(s->n ? s->n : 1, sizeof *s->ids);
	if (!s->slot)
		s->slot = malloc(sizeof(*s->slot) * SK_T_ROLE_COUNT);
	if (!s->ids || !s->slot)
		return sk_fail(_("%s: out of memory"), s->path);
	memset(s->slot, 0xff, sizeof(*s->slot) * SK_T_ROLE_COUNT);
	for (size_t i = 0; i < s->n; i++) {
		const sk_tensor_view *v = sk_model_source_tensor(s, i);
		sk_tensor_id id = sk_tensor_name_parse(v->name, s->has_config ? &s->cfg : NULL);
		s->ids[i] = id;
		if (id.role == SK_T_NONE || id.cls == SK_TC_UNKNOWN)
			continue;
		if (!s->hf_prefix[0] && id.role != SK_T_LM_HEAD) {
			static const char *const pre[] = { "model.language_model.", "language_model.model.", "model." };
			for (size_t j = 0; j < 3 && !s->hf_prefix[0]; j++)
				if (strncmp(v->name, pre[j], strlen(pre[j])) == 0)
					snprintf(s->hf_prefix, sizeof s->hf_prefix, "%s", pre[j]);
		}
		int k = slot_of(&id);
		if (k >= 0 && k < SK_MAX_LAYERS && s->slot[id.role][k] < 0)
			s->slot[id.role][k] = (int32_t)i;
	}
	return 0;
}

static int64_t dim(const sk_tensor_view *v, int i)
{
	return v && i < v->ndim ? v->shape[i] : -1;
}

/* A config from tensor shapes, for a lone .safetensors without config.json.
 * Sizes come from shapes; what shapes cannot tell (attention pattern, KV
 * sharing, sparsity, RoPE) takes the transformers defaults. */
static int infer_config(sk_model_source *s)
{
	const sk_tensor_view *embed = sk_model_source_get(s, SK_T_EMBED, 0, 0);
	const sk_tensor_view *qn = sk_model_source_get(s, SK_T_Q_NORM, 0, 0);
	const sk_tensor_view *q = sk_model_source_get(s, SK_T_Q, 0, 0);
	const sk_tensor_view *k = sk_model_source_get(s, SK_T_K, 0, 0);
	if (!embed || !qn || !q || !k || embed->ndim != 2 || qn->ndim != 1 || dim(qn, 0) < 1)
		return sk_fail(_("%s: config.json is needed (not found beside the file, and the tensors do not "
		                 "show a Gemma 3 / 3n decoder)"),
		               s->path);
	sk_arch arch = sk_model_source_get(s, SK_T_ALTUP_ROUTER, 0, 0) ? SK_ARCH_GEMMA3N : SK_ARCH_GEMMA3;
	sk_config *c = &s->cfg;
	sk_config_defaults(c, arch);
	int L = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i].layer + 1 > L)
			L = s->ids[i].layer + 1;
	c->num_layers = L;
	c->inferred = 1;
	c->hidden_size = (int32_t)dim(embed, 1);
	c->vocab_size = (int32_t)dim(embed, 0);
	c->head_dim = (int32_t)dim(qn, 0);
	c->num_heads = (int32_t)(dim(q, 0) / c->head_dim);
	c->num_kv_heads = (int32_t)(dim(k, 0) / c->head_dim);
	for (int l = 0; l < L; l++) {
		const sk_tensor_view *g = sk_model_source_get(s, SK_T_GATE, l, 0);
		c->intermediate_size[l] = g ? (int32_t)dim(g, 0) : 0;
		c->sliding[l] = (uint8_t)((l + 1) % (arch == SK_ARCH_GEMMA3N ? 5 : 6) != 0);
	}
	if (arch == SK_ARCH_GEMMA3N) {
		const sk_tensor_view *ple = sk_model_source_get(s, SK_T_PLE_EMBED, 0, 0);
		const sk_tensor_view *lr = sk_model_source_get(s, SK_T_LAUREL_L, 0, 0);
		const sk_tensor_view *cc = sk_model_source_get(s, SK_T_ALTUP_CORRECT_COEF, 0, 0);
		if (ple && L > 0) {
			c->vocab_size_per_layer_input = (int32_t)dim(ple, 0);
			c->hidden_size_per_layer_input = (int32_t)(dim(ple, 1) / L);
		}
		if (lr)
			c->laurel_rank = (int32_t)dim(lr, 0);
		if (cc)
			c->altup_num_inputs = (int32_t)dim(cc, 0);
		/* KV sharing: trailing layers without k_proj when the file omits them;
		 * else the published split (E4B 35/15, E2B 30/10) */
		int shared = 0;
		while (shared < L && !sk_model_source_get(s, SK_T_K, L - 1 - shared, 0))
			shared++;
		if (shared == 0)
			shared = L == 35 ? 15 : L == 30 ? 10 : 0;
		c->num_kv_shared_layers = shared;
		for (int l = 0; l < L; l++) {
			c->activation_sparsity[l] = 0.0f;
			c->activation_sparsity_z[l] = 0.0f;
		}
		for (int l = 0; l < L && l < 10; l++) {
			c->activation_sparsity[l] = 0.95f;
			c->activation_sparsity_z[l] = 1.6448536f;
		}
	}
	for (int l = 0; l < L; l++)
		if (c->intermediate_size[l] < 1)
			return sk_fail(_("%s: config.json is needed (layer %d has no MLP to infer its size from)"),
			               s->path, l);
	if (c->hidden_size < 1 || c->vocab_size < 1 || c->num_heads < 1 || c->num_kv_heads < 1 ||
	    sk_config_validate(c, s->path) != 0)
		return sk_fail(_("%s: config.json is needed (the sizes inferred from tensor shapes are inconsistent)"),
		               s->path);
	s->has_config = 1;
	snprintf(s->origin, sizeof s->origin, "%s", _("tensor shapes (no config.json)"));
	return 0;
}

/* Config beside weights: config.json in dir when present, else inferred. */
static int load_hf_config(sk_model_source *s, const char *dir)
{
	char *cfg = sk_path_join(dir, "config.json");
	char *tok = sk_path_join(dir, "tokenizer.json");
	if (!cfg || !tok) {
		free(cfg);
		free(tok);
		return sk_fail(_("%s: out of memory"), s->path);
	}
	if (is_regular(tok))
		s->tokenizer_json = tok;
	else
		free(tok);
	if (index_tensors(s))
		goto fail;
	if (is_regular(cfg)) {
		if (sk_config_from_json(cfg, &s->cfg))
			goto fail;
		s->has_config = 1;
		snprintf(s->origin, sizeof s->origin, "config.json");
	} else if (infer_config(s)) {
		goto fail;
	}
	free(cfg);
	return index_tensors(s); /* again, now classified with the config */
fail:
	free(cfg);
	return -1;
}

static int open_gguf(sk_model_source *s, const char *file)
{
	s->kind = SK_SRC_GGUF;
	s->gguf = sk_gguf_open(file);
	if (!s->gguf)
		return -1;
	if (sk_config_from_gguf(s->gguf, &s->cfg))
		return -1;
	s->has_config = 1;
	snprintf(s->origin, sizeof s->origin, "%s", _("GGUF metadata"));
	return index_tensors(s);
}

static int open_dir(sk_model_source *s)
{
	int n_st, n_gguf;
	char *gguf_name = NULL;
	if (scan_dir(s->path, &n_st, &n_gguf, &gguf_name))
		return -1;
	char *index = sk_path_join(s->path, "model.safetensors.index.json");
	int has_index = index && is_regular(index);
	free(index);
	if (n_st > 0 || has_index) {
		free(gguf_name);
		s->kind = SK_SRC_HF_DIR;
		s->st = sk_st_checkpoint_open(s->path);
		if (!s->st)
			return -1;
		return load_hf_config(s, s->path);
	}
	if (n_gguf == 1) {
		/* a directory holding one GGUF (and maybe tokenizer files) */
		char *f = sk_path_join(s->path, gguf_name);
		free(gguf_name);
		if (!f)
			return sk_fail(_("%s: out of memory"), s->path);
		int rc = open_gguf(s, f);
		free(f);
		return rc;
	}
	free(gguf_name);
	char *cfg = sk_path_join(s->path, "config.json");
	int has_cfg = cfg && is_regular(cfg);
	free(cfg);
	if (has_cfg)
		return sk_fail(_("%s: has config.json but no *.safetensors weights"), s->path);
	if (n_gguf > 1)
		return sk_fail(_("%s: holds several .gguf files; give the path of one"), s->path);
	static const char *const tok_files[] = { "tokenizer.json", "tokenizer_config.json", "tokenizer.model" };
	for (size_t i = 0; i < sizeof tok_files / sizeof tok_files[0]; i++) {
		char *p = sk_path_join(s->path, tok_files[i]);
		int ok = p && is_regular(p);
		if (ok && i == 0)
			s->tokenizer_json = p;
		else
			free(p);
		if (ok) {
			s->kind = SK_SRC_TOKENIZER_ONLY;
			snprintf(s->origin, sizeof s->origin, "%s", _("none"));
			return 0;
		}
	}
	return sk_fail(_("%s: not a model directory (no config.json, *.safetensors, .gguf or tokenizer files)"),
	               s->path);
}

static int open_file(sk_model_source *s)
{
	unsigned char magic[8] = { 0 };
	FILE *f = fopen(s->path, "rb");
	if (!f)
		return sk_fail("%s: %s", s->path, strerror(errno));
	size_t got = fread(magic, 1, sizeof magic, f);
	fclose(f);
	if (got >= 4 && memcmp(magic, "GGUF", 4) == 0)
		return open_gguf(s, s->path);
	/* safetensors: u64 header length, then '{' */
	if (has_suffix(s->path, ".safetensors") || (got == 8 && magic[7] == 0 && magic[6] == 0)) {
		if (!has_suffix(s->path, ".safetensors") && !has_suffix(s->path, ".json")) {
			/* sniff: the header must start with '{' */
			FILE *g = fopen(s->path, "rb");
			int c = EOF;
			if (g) {
				if (fseek(g, 8, SEEK_SET) == 0)
					c = fgetc(g);
				fclose(g);
			}
			if (c != '{')
				goto unknown;
		}
		s->kind = SK_SRC_SAFETENSORS;
		s->st = sk_st_checkpoint_open(s->path);
		if (!s->st)
			return -1;
		char *dir = dir_of(s->path);
		if (!dir)
			return sk_fail(_("%s: out of memory"), s->path);
		int rc = load_hf_config(s, dir);
		free(dir);
		return rc;
	}
unknown:
	return sk_fail(_("%s: not a model (expected a .gguf or .safetensors file, or a model directory)"), s->path);
}

sk_model_source *sk_model_source_open(const char *path)
{
	struct stat st;
	if (!path || !*path) {
		sk_fail(_("no model path given"));
		return NULL;
	}
	if (stat(path, &st) != 0) {
		sk_fail("%s: %s", path, strerror(errno));
		return NULL;
	}
	sk_model_source *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		sk_fail(_("%s: out of memory"), path);
		return NULL;
	}
	/* "dir/" → "dir" so joined names read well */
	size_t len = strlen(s->path);
	while (len > 1 && s->path[len - 1] == '/')
		s->path[--len] = '\0';
	int rc;
	if (S_ISDIR(st.st_mode))
		rc = open_dir(s);
	else if (S_ISREG(st.st_mode))
		rc = open_file(s);
	else
		rc = sk_fail(_("%s: not a regular file or directory"), path);
	if (rc) {
		sk_model_source_close(s);
		return NULL;
	}
	return s;
}

void sk_model_source_close(sk_model_source *s)
{
	if (!s)
		return;
	if (s->st)
		sk_st_checkpoint_close(s->st);
	if (s->gguf)
		sk_gguf_close(s->gguf);
	free(s->ids);
	free(s->slot);
	free(s->tokenizer_json);
	free(s->path);
	free(s);
}

sk_source_kind sk_model_source_kind(const sk_model_source *s) { return s->kind; }
const char *sk_model_source_path(const sk_model_source *s) { return s->path; }
const sk_config *sk_model_source_config(const sk_model_source *s) { return s->has_config ? &s->cfg : NULL; }
const char *sk_model_source_config_origin(const sk_model_source *s) { return s->origin; }
const char *sk_model_source_tokenizer_json(const sk_model_source *s) { return s->tokenizer_json; }
const struct sk_gguf *sk_model_source_gguf(const sk_model_source *s) { return s->gguf; }

size_t sk_model_source_nfiles(const sk_model_source *s)
{
	if (s->st)
		return sk_st_checkpoint_nfiles(s->st);
	return s->gguf ? 1 : 0;
}

sk_tensor_layout sk_model_source_layout(const sk_model_source *s)
{
	return s->gguf ? SK_LAYOUT_GGUF : SK_LAYOUT_HF;
}

void sk_param_totals_add(sk_param_totals *t, sk_tensor_class cls, const sk_tensor_view *v)
{
	if ((int)cls < 0 || (int)cls >= SK_TC_COUNT)
		cls = SK_TC_UNKNOWN;
	t->params[cls] += sk_tensor_view_numel(v);
	t->bytes[cls] += v->nbytes;
	t->count[cls]++;
}

/* ---- the shape check ---- */

typedef struct {
	const sk_model_source *s;
	sk_source_report_fn report;
	void *ctx;
	int problems;
} checker;

static void problem(checker *ck, const char *fmt, ...) SK_PRINTF(2, 3);
static void problem(checker *ck, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ck->problems++ == 0)
		sk_fail("%s: %s", ck->s->path, msg);
	if (ck->report)
		ck->report(ck->ctx, msg);
}

static void fmt_shape(char *buf, size_t cap, const int64_t *shape, int nd)
{
	size_t used = 0;
	used += (size_t)snprintf(buf, cap, "[");
	for (int i = 0; i < nd && used < cap; i++) {
		if (shape[i] < 0)
			used += (size_t)snprintf(buf + used, cap - used, "%s*", i ? ", " : "");
		else
			used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
	}
	if (used < cap)
		snprintf(buf + used, cap - used, "]");
}

static void check_one(checker *ck, sk_tensor_role role, int layer, int index, int optional)
{
	const sk_model_source *s = ck->s;
	const sk_config *c = &s->cfg;
	sk_tensor_layout layout = sk_model_source_layout(s);
	const sk_tensor_view *v = sk_model_source_get(s, role, layer, index);
	char name[160];
	if (!v) {
		if (optional)
			return;
		sk_tensor_name_build(role, layer, index, layout, s->hf_prefix[0] ? s->hf_prefix : NULL, name, sizeof name);
		problem(ck, _("tensor %s is missing"), name);
		return;
	}
	int64_t want[4];
	int nd = sk_tensor_expected_shape(c, role, layer, layout, want);
	int ok = nd == v->ndim;
	for (int i = 0; ok && i < nd; i++)
		ok = want[i] < 0 || want[i] == v->shape[i];
	/* GGUF embeddings: rows must cover the vocabulary the config indexes with */
	if (ok && layout == SK_LAYOUT_GGUF && role == SK_T_PLE_EMBED)
		ok = v->shape[0] >= c->vocab_size_per_layer_input;
	if (!ok) {
		char a[96], b[96];
		fmt_shape(a, sizeof a, v->shape, v->ndim);
		fmt_shape(b, sizeof b, want, nd);
		problem(ck, _("tensor %s has shape %s; the config implies %s"), v->name, a, b);
	}
	if (!sk_dtype_is_float_readable(v->dtype))
		problem(ck, _("tensor %s has type %s, which this engine cannot read"), v->name, sk_dtype_name(v->dtype));
}

int sk_model_source_check(const sk_model_source *s, sk_source_report_fn report, void *ctx)
{
	checker ck = { s, report, ctx, 0 };
	if (!s->has_config)
		return 0;
	const sk_config *c = &s->cfg;
	int first_shared = c->arch == SK_ARCH_GEMMA3N ? sk_config_first_kv_shared(c) : c->num_layers;
	for (int r = SK_T_NONE + 1; r < SK_T_ROLE_COUNT; r++) {
		sk_tensor_role role = (sk_tensor_role)r;
		if (!sk_tensor_role_in_arch(role, c->arch))
			continue;
		if (role == SK_T_LM_HEAD) {
			check_one(&ck, role, -1, 0, c->tie_word_embeddings);
		} else if (sk_tensor_role_is_per_layer(role)) {
			for (int l = 0; l < c->num_layers; l++) {
				int unused = (role == SK_T_K || role == SK_T_V || role == SK_T_K_NORM) && l >= first_shared;
				check_one(&ck, role, l, 0, unused);
			}
		} else if ((role == SK_T_ALTUP_PROJ || role == SK_T_ALTUP_UNEMBD) &&
		           sk_model_source_layout(s) == SK_LAYOUT_HF) {
			for (int i = 0; i < c->altup_num_inputs - 1; i++)
				check_one(&ck, role, -1, i, 0);
		} else {
			check_one(&ck, role, -1, 0, 0);
		}
	}
	return ck.problems;
}

int sk_model_source_has_chat_template(const sk_model_source *s)
{
	if (s->gguf)
		return sk_gguf_find(s->gguf, "tokenizer.chat_template") != NULL;
	if (!s->tokenizer_json)
		return 0;
	/* the tokenizer files sit together: look beside tokenizer.json */
	char *dir = strdup(s->tokenizer_json);
	if (!dir)
		return 0;
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	int found = 0;
	char *jinja = sk_path_join(dir, "chat_template.jinja");
	if (jinja && sk_file_exists(jinja))
		found = 1;
	free(jinja);
	char *cfg = found ? NULL : sk_path_join(dir, "tokenizer_config.json");
	if (cfg && sk_file_exists(cfg)) {
		json_t *root = json_load_file(cfg, 0, NULL);
		json_t *t = root ? json_object_get(root, "chat_template") : NULL;
		found = t && (json_is_string(t) || json_is_array(t));
		json_decref(root);
	}
	free(cfg);
	free(dir);
	return found;
}
