/* sk_merge: plans the output (which tensors get a delta, their dtypes, the
 * shard split of huggingface_hub), writes each shard tensor by tensor into
 * a temporary directory, checks the result with the project's own
 * safetensors reader, and renames it into place. */
#include "engine/train/merge.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "engine/format/atomic_dir.h"
#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/train/merge_internal.h"
#include "engine/model/model_source.h"
#include "engine/format/safetensors.h"
#include "engine/format/safetensors_dtypes.h"

/* Files of a Hugging Face model directory that travel with the weights. */
static const char *const side_files[] = {
	"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
	"added_tokens.json", "generation_config.json", "chat_template.jinja", "chat_template.json",
	"preprocessor_config.json", "processor_config.json",
};

typedef struct {
	const sk_merge_opts *o;
	sk_model_source *src;
	sk_lora *lora;
	sk_merge_item *items;
	size_t n;
	sk_merge_item **order; /* items by name */
	int nshards;
	sk_dtype in_dtype;
	int have_in_dtype;
	sk_atomic_dir dir;
	int dir_open;
} sk_merge_ctx;

static int is_half_or_float(sk_dtype t)
{
	return t == SK_DT_F32 || t == SK_DT_F16 || t == SK_DT_BF16;
}

static int lora_module_of(sk_tensor_role r)
{
	switch (r) {
	case SK_T_Q: return SK_LORA_Q;
	case SK_T_K: return SK_LORA_K;
	case SK_T_V: return SK_LORA_V;
	case SK_T_O: return SK_LORA_O;
	case SK_T_GATE: return SK_LORA_GATE;
	case SK_T_UP: return SK_LORA_UP;
	case SK_T_DOWN: return SK_LORA_DOWN;
	default: return -1;
	}
}

static int by_name(const void *a, const void *b)
{
	const sk_merge_item *x = *(const sk_merge_item *const *)a, *y = *(const sk_merge_item *const *)b;
	return strcmp(x->v->name, y->v->name);
}

/* Within a shard: the reference writer's order, largest dtype first, then name. */
static int by_writer_order(const void *a, const void *b)
{
	const sk_merge_item *x = *(const sk_merge_item *const *)a, *y = *(const sk_merge_item *const *)b;
	int rx = sk_st_dtype_by_sk(x->out)->rank, ry = sk_st_dtype_by_sk(y->out)->rank;
	if (rx != ry)
		return rx > ry ? -1 : 1;
	return strcmp(x->v->name, y->v->name);
}

/* Decides, for every stored tensor, copy / convert / merge and its dtype. */
static int plan_tensors(sk_merge_ctx *c)
{
	const sk_merge_opts *o = c->o;
	const sk_config *cfg = sk_model_source_config(c->src);
	const char *model = sk_model_source_path(c->src);
	int L = cfg->num_layers;
	unsigned char *used = calloc((size_t)(L > 0 ? L : 1) * SK_LORA_NMOD, 1);
	if (!used)
		return sk_fail(_("%s: out of memory"), model);
	int rc = -1;
	for (size_t i = 0; i < c->n; i++) {
		sk_merge_item *it = &c->items[i];
		const sk_tensor_view *v = sk_model_source_tensor(c->src, i);
		sk_tensor_id id = sk_model_source_tensor_id(c->src, i);
		it->v = v;
		int m = lora_module_of(id.role);
		const sk_lora_pair *p = NULL;
		if (m >= 0 && id.layer >= 0 && id.layer < L)
			p = sk_lora_get(c->lora, id.layer, (sk_lora_module)m);
		if (p) {
			unsigned char *u = &used[(size_t)id.layer * SK_LORA_NMOD + (size_t)m];
			if (*u) {
				sk_fail(_("%s: two tensors are the %s weight of layer %d (the second is '%s')"), model,
				        sk_lora_module_name((sk_lora_module)m), id.layer, v->name);
				goto out;
			}
			*u = 1;
			if (!is_half_or_float(v->dtype)) {
				sk_fail(_("%s: tensor '%s' is stored as %s; merging needs the original F32, F16 or BF16 "
				          "weights, not a quantized copy"), v->file, v->name, sk_dtype_name(v->dtype));
				goto out;
			}
			if (v->ndim != 2 || v->shape[0] != p->out || v->shape[1] != p->in) {
				sk_fail(_("%s: tensor '%s' does not have the adapter's shape [%d, %d]"), v->file, v->name,
				        p->out, p->in);
				goto out;
			}
			if (!c->have_in_dtype) {
				c->in_dtype = v->dtype;
				c->have_in_dtype = 1;
			}
			it->kind = SK_MT_MERGE;
			it->pair = p;
			it->out = o->dtype >= 0 ? (sk_dtype)o->dtype : v->dtype;
		} else if (o->dtype >= 0 && is_half_or_float(v->dtype) && v->dtype != (sk_dtype)o->dtype) {
			it->kind = SK_MT_CONVERT;
			it->out = (sk_dtype)o->dtype;
		} else {
			it->kind = SK_MT_COPY;
			it->out = v->dtype;
		}
		if (!sk_st_dtype_by_sk(it->out)) {
			sk_fail(_("%s: tensor '%s': dtype %s cannot be stored in safetensors"), v->file, v->name,
			        sk_dtype_name(it->out));
			goto out;
		}
		if (it->kind == SK_MT_COPY) {
			it->out_bytes = v->nbytes;
		} else {
			int64_t nb = sk_dtype_nbytes(it->out, sk_tensor_view_numel(v));
			if (nb < 0) {
				sk_fail(_("%s: tensor '%s' is too large"), v->file, v->name);
				goto out;
			}
			it->out_bytes = (uint64_t)nb;
		}
	}
	/* every pair of the adapter must have found its weight */
	for (int l = 0; l < L; l++)
		for (int m = 0; m < SK_LORA_NMOD; m++)
			if (sk_lora_get(c->lora, l, (sk_lora_module)m) && !used[(size_t)l * SK_LORA_NMOD + (size_t)m]) {
				sk_fail(_("%s: the adapter changes %s of layer %d, but the model has no such weight"),
				        o->adapter, sk_lora_module_name((sk_lora_module)m), l);
				goto out;
			}
	if (!c->have_in_dtype) {
		sk_fail(_("%s: none of the adapter's modules is a text decoder weight; nothing to merge"), o->adapter);
		goto out;
	}
	rc = 0;
out:
	free(used);
	return rc;
}

/* huggingface_hub's split: walk by name; start a new shard when the next
 * tensor would pass the limit; a tensor above the limit gets a shard of
 * its own, placed where it was met. */
static int plan_shards(sk_merge_ctx *c)
{
	uint64_t max = c->o->max_shard_size ? c->o->max_shard_size : SK_MERGE_DEFAULT_SHARD;
	c->order = malloc((c->n ? c->n : 1) * sizeof *c->order);
	int *final = malloc((c->n + 1) * sizeof *final);
	if (!c->order || !final) {
		free(final);
		return sk_fail(_("%s: out of memory"), c->o->out);
	}
	for (size_t i = 0; i < c->n; i++)
		c->order[i] = &c->items[i];
	qsort(c->order, c->n, sizeof *c->order, by_name);
	/* groups in creation order; final[g] is the shard number once appended */
	int ngroups = 1, cur = 0, nshards = 0;
	uint64_t cur_size = 0;
	size_t cur_count = 0;
	for (size_t k = 0; k < c->n; k++) {
		sk_merge_item *it = c->order[k];
		if (it->out_bytes > max) {
			final[ngroups] = nshards++;
			it->shard = ngroups++;
			continue;
		}
		if (cur_count && cur_size + it->out_bytes > max) {
			final[cur] = nshards++;
			cur = ngroups++;
			cur_size = 0;
			cur_count = 0;
		}
		it->shard = cur;
		cur_size += it->out_bytes;
		cur_count++;
	}
	if (cur_count || nshards == 0)
		final[cur] = nshards++;
	for (size_t i = 0; i < c->n; i++)
		c->items[i].shard = final[c->items[i].shard];
	free(final);
	if (nshards > 99999)
		return sk_fail(_("%s: %d shards would be needed (at most 99999); give a larger --max-shard-size"),
		               c->o->out, nshards);
	c->nshards = nshards;
	return 0;
}

static void shard_name(const sk_merge_ctx *c, int s, char *buf, size_t cap)
{
	if (c->nshards == 1)
		snprintf(buf, cap, "model.safetensors");
	else
		snprintf(buf, cap, "model-%05d-of-%05d.safetensors", s + 1, c->nshards);
}

/* The compact safetensors header of one shard (offsets assigned here). */
static char *shard_header(const char *path, sk_merge_item **list, size_t n)
{
	json_t *root = json_object(), *meta = json_object();
	char *out = NULL;
	int bad = !root || !meta || json_object_set_new(meta, "format", json_string("pt")) ||
	          json_object_set_new(root, "__metadata__", meta);
	if (!root && meta)
		json_decref(meta);
	uint64_t off = 0;
	for (size_t i = 0; !bad && i < n; i++) {
		sk_merge_item *it = list[i];
		json_t *t = json_object(), *shape = json_array(), *offs = json_array();
		bad = !t || !shape || !offs;
		for (int d = 0; !bad && d < it->v->ndim; d++)
			bad = json_array_append_new(shape, json_integer(it->v->shape[d]));
		if (!bad)
			bad = json_array_append_new(offs, json_integer((json_int_t)off)) ||
			      json_array_append_new(offs, json_integer((json_int_t)(off + it->out_bytes)));
		if (!bad)
			bad = json_object_set_new(t, "dtype", json_string(sk_st_dtype_by_sk(it->out)->name)) ||
			      json_object_set_new(t, "shape", shape) || json_object_set_new(t, "data_offsets", offs) ||
			      json_object_set_new(root, it->v->name, t);
		else {
			json_decref(t);
			json_decref(shape);
			json_decref(offs);
		}
		it->offset = off;
		off += it->out_bytes;
	}
	if (!bad)
		out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!out)
		sk_fail(_("%s: cannot build the safetensors header"), path);
	json_decref(root);
	return out;
}

static int write_shard(sk_merge_ctx *c, int s, sk_merge_progress *p)
{
	char name[64];
	shard_name(c, s, name, sizeof name);
	char *path = sk_path_join(c->dir.tmp_path, name);
	sk_merge_item **list = malloc((c->n ? c->n : 1) * sizeof *list);
	char *hdr = NULL;
	FILE *fp = NULL;
	int rc = -1;
	if (!path || !list) {
		sk_fail(_("%s: out of memory"), c->o->out);
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->items[i].shard == s)
			list[k++] = &c->items[i];
	qsort(list, k, sizeof *list, by_writer_order);
	if (!(hdr = shard_header(path, list, k)))
		goto out;
	if (!(fp = fopen(path, "wb"))) {
		sk_fail("%s: %s", path, strerror(errno));
		goto out;
	}
	p->shard = s;
	p->shard_name = name;
	if (c->o->progress) /* announce the shard before its first byte */
		c->o->progress(c->o->progress_ctx, s, c->nshards, name, p->done, p->total);
	if (sk_st_write_header(fp, path, hdr))
		goto out;
	for (size_t i = 0; i < k; i++)
		if (sk_merge_write_tensor(fp, path, list[i], p))
			goto out;
	rc = 0;
out:
	/* the output directory is synced as a whole when it is committed; after
	 * a failure the file is dropped, and the first error is the one to tell */
	if (fp && rc == 0)
		rc = sk_fclose_written(fp, path, 0);
	else if (fp)
		fclose(fp);
	free(hdr);
	free(list);
	free(path);
	return rc;
}

/* model.safetensors.index.json as transformers writes it: sorted keys,
 * 2-space indent, a trailing newline. */
static int write_index(sk_merge_ctx *c, uint64_t total)
{
	json_t *root = json_object(), *meta = json_object(), *map = json_object();
	int bad = !root || !meta || !map;
	bad = bad || json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
	for (size_t i = 0; !bad && i < c->n; i++) {
		char name[64];
		shard_name(c, c->items[i].shard, name, sizeof name);
		bad = json_object_set_new(map, c->items[i].v->name, json_string(name));
	}
	bad = bad || json_object_set(root, "metadata", meta) || json_object_set(root, "weight_map", map);
	char *path = sk_path_join(c->dir.tmp_path, "model.safetensors.index.json");
	int rc = bad || !path ? sk_fail(_("%s: out of memory"), c->o->out)
			      : sk_merge_write_json(path, root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(meta);
	json_decref(map);
	json_decref(root);
	free(path);
	return rc;
}

/* config.json and the tokenizer/generation files beside the input weights. */
static int write_side_files(sk_merge_ctx *c, int dtype_changed)
{
	const char *mp = sk_model_source_path(c->src);
	char *tmp = strdup(mp);
	if (!tmp)
		return sk_fail(_("%s: out of memory"), mp);
	const char *srcdir = sk_model_source_kind(c->src) == SK_SRC_HF_DIR ? mp : dirname(tmp);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i <= sizeof side_files / sizeof side_files[0]; i++) {
		const char *f = i == 0 ? "config.json" : side_files[i - 1];
		char *from = sk_path_join(srcdir, f), *to = sk_path_join(c->dir.tmp_path, f);
		if (!from || !to)
			rc = sk_fail(_("%s: out of memory"), mp);
		else if (sk_is_dir(from) == 0) {
			if (i == 0 && dtype_changed)
				rc = sk_merge_write_config(from, to, (sk_dtype)c->o->dtype);
			else
				rc = sk_merge_copy_file(from, to);
		}
		free(from);
		free(to);
	}
	free(tmp);
	return rc;
}

/* Refuses an output that exists (without --force) or that holds the input. */
static int check_out(const sk_merge_opts *o)
{
	int d = sk_is_dir(o->out);
	if (d == 0)
		return sk_fail(_("%s: exists and is not a directory"), o->out);
	if (d == 1 && !o->force)
		return sk_fail(_("%s: already exists (use --force to replace it)"), o->out);
	if (d == 1) {
		char *ro = realpath(o->out, NULL), *rm = realpath(o->model, NULL), *ra = realpath(o->adapter, NULL);
		int clash = 0;
		if (ro) {
			size_t n = strlen(ro);
			for (int k = 0; k < 2; k++) {
				const char *x = k ? ra : rm;
				clash |= x && strncmp(x, ro, n) == 0 && (x[n] == '\0' || x[n] == '/');
			}
		}
		free(ro);
		free(rm);
		free(ra);
		if (clash)
			return sk_fail(_("%s: holds the model or adapter being merged; choose another output directory"),
			               o->out);
	}
	return 0;
}

static int run(sk_merge_ctx *c, sk_merge_stats *st)
{
	const sk_merge_opts *o = c->o;
	if (check_out(o))
		return -1;
	if (!(c->src = sk_model_source_open(o->model)))
		return -1;
	sk_source_kind kind = sk_model_source_kind(c->src);
	if (kind == SK_SRC_GGUF)
		return sk_fail(_("%s: merge needs the Hugging Face safetensors weights; GGUF input is not supported yet"),
		               o->model);
	if (kind == SK_SRC_TOKENIZER_ONLY || !sk_model_source_config(c->src))
		return sk_fail(_("%s: holds no model weights"), o->model);
	if (!(c->lora = sk_lora_load(o->adapter, sk_model_source_config(c->src))))
		return -1;
	st->lora_ignored = sk_lora_ignored_count(c->lora);
	c->n = sk_model_source_tensor_count(c->src);
	c->items = calloc(c->n ? c->n : 1, sizeof *c->items);
	if (!c->items)
		return sk_fail(_("%s: out of memory"), o->model);
	if (plan_tensors(c) || plan_shards(c))
		return -1;

	uint64_t total = 0;
	for (size_t i = 0; i < c->n; i++)
		total += c->items[i].out_bytes;
	if (sk_atomic_dir_begin(&c->dir, o->out))
		return -1;
	c->dir_open = 1;
	sk_merge_progress p = { .o = o, .nshards = c->nshards, .total = total };
	for (int s = 0; s < c->nshards; s++)
		if (write_shard(c, s, &p))
			return -1;
	if (c->nshards > 1 && write_index(c, total))
		return -1;
	int dtype_changed = o->dtype >= 0 && (sk_dtype)o->dtype != c->in_dtype;
	if (write_side_files(c, dtype_changed))
		return -1;

	/* read back with the project's own checks before it becomes visible */
	sk_st_checkpoint *chk = sk_st_checkpoint_open(c->dir.tmp_path);
	if (!chk)
		return sk_fail_prefix(_("the merged checkpoint fails validation"));
	size_t got = sk_st_checkpoint_count(chk);
	sk_st_checkpoint_close(chk);
	if (got != c->n)
		return sk_fail(_("%s: the merged checkpoint holds %zu tensors, %zu were written"), o->out, got, c->n);

	c->dir_open = 0;
	if (sk_atomic_dir_commit(&c->dir))
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		sk_merge_kind k = c->items[i].kind;
		st->merged += k == SK_MT_MERGE;
		st->converted += k == SK_MT_CONVERT;
		st->copied += k == SK_MT_COPY;
	}
	st->tensors = c->n;
	st->shards = c->nshards;
	st->bytes = total;
	st->overflow = p.overflow;
	st->in_dtype = c->in_dtype;
	st->out_dtype = o->dtype >= 0 ? (sk_dtype)o->dtype : c->in_dtype;
	return 0;
}

int sk_merge(const sk_merge_opts *o, sk_merge_stats *st)
{
	sk_merge_stats dummy;
	if (!st)
		st = &dummy;
	memset(st, 0, sizeof *st);
	if (!o || !o->model || !o->adapter || !o->out)
		return sk_fail(_("merge: the model, the adapter and the output directory are needed"));
	if (o->dtype >= 0 && !is_half_or_float((sk_dtype)o->dtype))
		return sk_fail(_("merge: the output dtype must be F32, F16 or BF16"));
	sk_merge_ctx c = { .o = o };
	int rc = run(&c, st);
	if (c.dir_open) {
		/* keep the message: removing the temporary directory may record its own */
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", sk_error());
		sk_atomic_dir_abort(&c.dir);
		sk_fail("%s", msg);
	}
	free(c.dir.path);
	free(c.dir.tmp_path);
	free(c.items);
	free(c.order);
	sk_lora_free(c.lora);
	sk_model_source_close(c.src);
	return rc;
}
