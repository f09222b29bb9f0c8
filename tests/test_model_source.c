/* Model paths of every kind, tensor-name tables, the shape check, and the
 * parameter counting (checked against gemma3n-architecture.md §7 on a
 * synthetic tensor list of E4B/E2B shapes: no data needed). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/model/config.h"
#include "engine/error.h"
#include "engine/model/model_source.h"
#include "engine/format/safetensors.h"
#include "engine/model/tensor_names.h"
#include "tests/test.h"

static sk_model_source *open_fixture(const char *rel)
{
	sk_model_source *s = sk_model_source_open(sk_test_path(rel));
	CHECK_MSG(s != NULL, "%s: %s", rel, sk_error());
	return s;
}

static void totals(const sk_model_source *s, sk_param_totals *t)
{
	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < sk_model_source_tensor_count(s); i++)
		sk_param_totals_add(t, sk_model_source_tensor_id(s, i).cls, sk_model_source_tensor(s, i));
}

static int nreports;
static char last_report[512];
static void on_report(void *ctx, const char *msg)
{
	(void)ctx;
	nreports++;
	snprintf(last_report, sizeof last_report, "%s", msg);
	fprintf(stderr, "  report: %s\n", msg);
}

/* The tiny Gemma 3n: 5 layers x 24 tensors + 11 globals (2 AltUp pairs... 3 each) */
TEST(hf_dir_gemma3n_with_consumer_kv)
{
	sk_model_source *s = open_fixture("tests/fixtures/model/gemma3n-tiny");
	if (!s)
		return;
	CHECK_EQ_INT(sk_model_source_kind(s), SK_SRC_HF_DIR);
	CHECK_EQ_INT(sk_model_source_nfiles(s), 2);
	CHECK(sk_model_source_tokenizer_json(s) == NULL);
	CHECK(sk_model_source_gguf(s) == NULL);
	const sk_config *c = sk_model_source_config(s);
	CHECK(c && c->arch == SK_ARCH_GEMMA3N && c->num_layers == 5);
	CHECK(strcmp(sk_model_source_config_origin(s), "config.json") == 0);
	/* 5 x 24 per-layer + 11 text globals + 5 tower tensors */
	CHECK_EQ_INT(sk_model_source_tensor_count(s), 5 * 24 + 11 + 5);
	sk_param_totals t;
	totals(s, &t);
	CHECK_EQ_INT(t.count[SK_TC_SKIPPED], 5);
	CHECK_EQ_INT(t.count[SK_TC_UNUSED_KV], 6); /* layers 3, 4: k_proj, v_proj, k_norm */
	CHECK_EQ_INT(t.params[SK_TC_UNUSED_KV], 2 * (16 * 32 * 2 + 16));
	CHECK_EQ_INT(t.count[SK_TC_TOKEN_EMBD], 1);
	CHECK_EQ_INT(t.params[SK_TC_TOKEN_EMBD], 256 * 32);
	CHECK_EQ_INT(t.params[SK_TC_PLE], 128 * 5 * 8);
	CHECK_EQ_INT(t.count[SK_TC_UNKNOWN], 0);
	CHECK_EQ_INT(t.count[SK_TC_COMPUTE], 5 * 24 + 11 - 6 - 2);
	const sk_tensor_view *k4 = sk_model_source_get(s, SK_T_K, 4, 0);
	CHECK(k4 && strcmp(k4->name, "model.language_model.layers.4.self_attn.k_proj.weight") == 0);
	const sk_tensor_view *a2 = sk_model_source_get(s, SK_T_ALTUP_PROJ, -1, 2);
	CHECK(a2 && strcmp(a2->name, "model.language_model.altup_projections.2.weight") == 0);
	const sk_tensor_view *up = sk_model_source_get(s, SK_T_UP, 0, 0);
	CHECK(up && up->dtype == SK_DT_BF16 && up->shape[0] == 48 && up->shape[1] == 32);
	CHECK(sk_model_source_get(s, SK_T_UP, 5, 0) == NULL);
	nreports = 0;
	CHECK_EQ_INT(sk_model_source_check(s, on_report, NULL), 0);
	CHECK_EQ_INT(nreports, 0);
	sk_model_source_close(s);
}

TEST(hf_dir_gemma3n_without_consumer_kv)
{
	sk_model_source *a = open_fixture("tests/fixtures/model/gemma3n-tiny");
	sk_model_source *b = open_fixture("tests/fixtures/model/gemma3n-tiny-nokv");
	if (!a || !b)
		goto out;
	sk_param_totals ta, tb;
	totals(a, &ta);
	totals(b, &tb);
	CHECK_EQ_INT(tb.count[SK_TC_UNUSED_KV], 0);
	CHECK_EQ_INT(tb.params[SK_TC_COMPUTE], ta.params[SK_TC_COMPUTE]);
	CHECK_EQ_INT(sk_model_source_tensor_count(b), sk_model_source_tensor_count(a) - 6);
	CHECK(sk_model_source_get(b, SK_T_K, 3, 0) == NULL);
	CHECK_EQ_INT(sk_model_source_check(b, NULL, NULL), 0);
out:
	sk_model_source_close(a);
	sk_model_source_close(b);
}

TEST(hf_dir_and_file_gemma3)
{
	sk_model_source *d = open_fixture("tests/fixtures/model/gemma3-tiny/");
	sk_model_source *f = open_fixture("tests/fixtures/model/gemma3-tiny/model.safetensors");
	if (!d || !f)
		goto out;
	CHECK_EQ_INT(sk_model_source_kind(d), SK_SRC_HF_DIR);
	CHECK_EQ_INT(sk_model_source_kind(f), SK_SRC_SAFETENSORS);
	CHECK(sk_model_source_config(f) && sk_model_source_config(f)->arch == SK_ARCH_GEMMA3);
	CHECK(strcmp(sk_model_source_config_origin(f), "config.json") == 0);
	CHECK_EQ_INT(sk_model_source_tensor_count(f), 2 + 6 * 13);
	sk_param_totals t;
	totals(f, &t);
	CHECK_EQ_INT(t.count[SK_TC_COMPUTE], 1 + 6 * 13);
	CHECK_EQ_INT(t.count[SK_TC_UNUSED_KV], 0);
	CHECK_EQ_INT(sk_model_source_check(d, NULL, NULL), 0);
	CHECK_EQ_INT(sk_model_source_check(f, NULL, NULL), 0);
out:
	sk_model_source_close(d);
	sk_model_source_close(f);
}

TEST(gguf_files)
{
	sk_model_source *g = open_fixture("tests/fixtures/model/gemma3n-tiny.gguf");
	sk_model_source *h = open_fixture("tests/fixtures/model/gemma3n-tiny");
	sk_model_source *g3 = open_fixture("tests/fixtures/model/gemma3-tiny.gguf");
	if (!g || !h || !g3)
		goto out;
	CHECK_EQ_INT(sk_model_source_kind(g), SK_SRC_GGUF);
	CHECK(sk_model_source_gguf(g) != NULL);
	CHECK_EQ_INT(sk_model_source_layout(g), SK_LAYOUT_GGUF);
	const sk_tensor_view *ap = sk_model_source_get(g, SK_T_ALTUP_PROJ, -1, 0);
	CHECK(ap && ap->ndim == 3 && ap->shape[0] == 3 && ap->shape[1] == 32 && ap->shape[2] == 32);
	const sk_tensor_view *gate = sk_model_source_get(g, SK_T_GATE, 0, 0);
	CHECK(gate && gate->dtype == SK_DT_Q8_0 && gate->shape[0] == 48 && gate->shape[1] == 32);
	sk_param_totals tg, th;
	totals(g, &tg);
	totals(h, &th);
	/* the same decoder: stacking AltUp changes tensor counts, not parameters */
	CHECK_EQ_INT(tg.params[SK_TC_COMPUTE], th.params[SK_TC_COMPUTE]);
	CHECK_EQ_INT(tg.params[SK_TC_UNUSED_KV], th.params[SK_TC_UNUSED_KV]);
	CHECK_EQ_INT(tg.params[SK_TC_TOKEN_EMBD], th.params[SK_TC_TOKEN_EMBD]);
	CHECK_EQ_INT(tg.params[SK_TC_PLE], th.params[SK_TC_PLE]);
	CHECK_EQ_INT(tg.count[SK_TC_COMPUTE], th.count[SK_TC_COMPUTE] - 2 * 2);
	CHECK_EQ_INT(tg.count[SK_TC_UNKNOWN], 0);
	nreports = 0;
	CHECK_EQ_INT(sk_model_source_check(g, on_report, NULL), 0);
	CHECK_EQ_INT(sk_model_source_check(g3, on_report, NULL), 0);
	CHECK(sk_model_source_config(g3)->norm_plus_one_stored);
out:
	sk_model_source_close(g);
	sk_model_source_close(h);
	sk_model_source_close(g3);
}

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/sk_test_model_XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void rm_tmpdir(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	CHECK_EQ_INT(system(cmd), 0);
}

TEST(tokenizer_only_dir)
{
	make_tmpdir();
	write_text(tmpdir, "tokenizer.json", "{}");
	write_text(tmpdir, "tokenizer_config.json", "{}");
	sk_model_source *s = sk_model_source_open(tmpdir);
	CHECK_MSG(s != NULL, "%s", sk_error());
	if (s) {
		CHECK_EQ_INT(sk_model_source_kind(s), SK_SRC_TOKENIZER_ONLY);
		CHECK(sk_model_source_config(s) == NULL);
		CHECK_EQ_INT(sk_model_source_tensor_count(s), 0);
		CHECK(sk_model_source_tokenizer_json(s) && strstr(sk_model_source_tokenizer_json(s), "tokenizer.json"));
		CHECK_EQ_INT(sk_model_source_check(s, NULL, NULL), 0);
		sk_model_source_close(s);
	}
	rm_tmpdir();
}

/* Copies the tiny Gemma 3 tensors into a new file, optionally dropping one
 * tensor and giving another a wrong (same-size) shape. */
static int rewrite_gemma3(const char *out, const char *drop, const char *reshape, const char *extra)
{
	sk_st_file *f = sk_st_open(sk_test_path("tests/fixtures/model/gemma3-tiny/model.safetensors"));
	CHECK(f != NULL);
	if (!f)
		return -1;
	size_t n = sk_st_count(f), m = 0;
	sk_st_entry *e = calloc(n + 1, sizeof *e);
	for (size_t i = 0; i < n; i++) {
		const sk_tensor_view *v = sk_st_tensor(f, i);
		if (drop && strcmp(v->name, drop) == 0)
			continue;
		e[m].name = v->name;
		e[m].dtype = v->dtype;
		e[m].ndim = v->ndim;
		memcpy(e[m].shape, v->shape, sizeof v->shape);
		e[m].data = v->data;
		if (reshape && strcmp(v->name, reshape) == 0 && v->ndim == 2) {
			e[m].shape[0] = v->shape[1];
			e[m].shape[1] = v->shape[0];
		}
		m++;
	}
	static const uint16_t bf[4] = { 0x3f80, 0x4000, 0x4040, 0x4080 };
	if (extra) {
		e[m].name = extra;
		e[m].dtype = SK_DT_BF16;
		e[m].ndim = 1;
		e[m].shape[0] = 4;
		e[m].data = bf;
		m++;
	}
	int rc = sk_st_write(out, e, m);
	CHECK_MSG(rc == 0, "%s", sk_error());
	free(e);
	sk_st_close(f);
	return rc;
}

TEST(lone_safetensors_infers_config)
{
	char p[512];
	make_tmpdir();
	snprintf(p, sizeof p, "%s/weights.safetensors", tmpdir);
	if (rewrite_gemma3(p, NULL, NULL, NULL) == 0) {
		sk_model_source *s = sk_model_source_open(p);
		CHECK_MSG(s != NULL, "%s", sk_error());
		if (s) {
			const sk_config *c = sk_model_source_config(s);
			CHECK(c && c->inferred);
			CHECK(c && c->arch == SK_ARCH_GEMMA3 && c->num_layers == 6 && c->hidden_size == 32 &&
			      c->num_heads == 2 && c->num_kv_heads == 1 && c->head_dim == 16 &&
			      c->intermediate_size[5] == 32 && c->vocab_size == 256);
			CHECK_EQ_INT(sk_model_source_check(s, NULL, NULL), 0);
			sk_model_source_close(s);
		}
	}
	/* not a Gemma decoder and no config.json: say config.json is needed */
	static const float one = 1.0f;
	sk_st_entry e = { "foo", SK_DT_F32, 1, { 1 }, &one };
	snprintf(p, sizeof p, "%s/other.safetensors", tmpdir);
	CHECK_EQ_INT(sk_st_write(p, &e, 1), 0);
	sk_error_clear();
	CHECK(sk_model_source_open(p) == NULL);
	CHECK(strstr(sk_error(), "config.json is needed") != NULL);
	rm_tmpdir();
}

TEST(check_reports_missing_and_misshaped)
{
	char p[512], cfgtext[8192];
	make_tmpdir();
	FILE *f = fopen(sk_test_path("tests/fixtures/model/gemma3-tiny/config.json"), "r");
	size_t n = f ? fread(cfgtext, 1, sizeof cfgtext - 1, f) : 0;
	cfgtext[n] = '\0';
	if (f)
		fclose(f);
	write_text(tmpdir, "config.json", cfgtext);
	snprintf(p, sizeof p, "%s/model.safetensors", tmpdir);
	if (rewrite_gemma3(p, "model.layers.2.mlp.up_proj.weight", "model.layers.4.self_attn.k_proj.weight",
	                   "model.layers.9.extra.weight") == 0) {
		sk_model_source *s = sk_model_source_open(tmpdir);
		CHECK_MSG(s != NULL, "%s", sk_error());
		if (s) {
			nreports = 0;
			sk_error_clear();
			CHECK_EQ_INT(sk_model_source_check(s, on_report, NULL), 2);
			CHECK_EQ_INT(nreports, 2);
			CHECK(strstr(last_report, "model.layers.2.mlp.up_proj.weight is missing") != NULL);
			CHECK(strstr(sk_error(), "model.layers.4.self_attn.k_proj.weight has shape [32, 16]; the config "
			                          "implies [16, 32]") != NULL);
			sk_param_totals t;
			totals(s, &t);
			CHECK_EQ_INT(t.count[SK_TC_UNKNOWN], 1);
			sk_model_source_close(s);
		}
	}
	rm_tmpdir();
}

TEST(bad_paths)
{
	sk_error_clear();
	CHECK(sk_model_source_open("/nonexistent/model") == NULL);
	CHECK(strstr(sk_error(), "/nonexistent/model: No such file or directory") != NULL);
	make_tmpdir();
	sk_error_clear();
	CHECK(sk_model_source_open(tmpdir) == NULL);
	CHECK(strstr(sk_error(), "not a model directory") != NULL);
	write_text(tmpdir, "notes.txt", "hello, this is not a model\n");
	char p[512];
	snprintf(p, sizeof p, "%s/notes.txt", tmpdir);
	sk_error_clear();
	CHECK(sk_model_source_open(p) == NULL);
	CHECK(strstr(sk_error(), "not a model (expected a .gguf or .safetensors") != NULL);
	write_text(tmpdir, "config.json", "{\"model_type\":\"gemma3_text\"}");
	sk_error_clear();
	CHECK(sk_model_source_open(tmpdir) == NULL);
	CHECK(strstr(sk_error(), "has config.json but no *.safetensors") != NULL);
	/* a broken config next to good weights names the config file */
	snprintf(p, sizeof p, "%s/model.safetensors", tmpdir);
	if (rewrite_gemma3(p, NULL, NULL, NULL) == 0) {
		write_text(tmpdir, "config.json", "{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":0}");
		sk_error_clear();
		CHECK(sk_model_source_open(tmpdir) == NULL);
		CHECK(strstr(sk_error(), "config.json: num_hidden_layers must be a positive integer") != NULL);
	}
	rm_tmpdir();
}

TEST(name_round_trip_every_role)
{
	sk_config c;
	sk_config_defaults(&c, SK_ARCH_GEMMA3N);
	char name[160];
	for (int r = SK_T_NONE + 1; r < SK_T_ROLE_COUNT; r++) {
		int per = sk_tensor_role_is_per_layer((sk_tensor_role)r);
		for (int layout = 0; layout < 2; layout++) {
			int layer = per ? 7 : -1, index = layout == SK_LAYOUT_HF && (r == SK_T_ALTUP_PROJ ||
			                                                          r == SK_T_ALTUP_UNEMBD) ? 2 : 0;
			CHECK_EQ_INT(sk_tensor_name_build((sk_tensor_role)r, layer, index, (sk_tensor_layout)layout, NULL, name,
			                                  sizeof name),
			             0);
			sk_tensor_id id = sk_tensor_name_parse(name, &c);
			CHECK_MSG((int)id.role == r && id.layer == layer, "%s -> role %d layer %d", name, id.role, id.layer);
			if (layout == SK_LAYOUT_HF && index == 2)
				CHECK_EQ_INT(id.index, 2);
		}
	}
}

TEST(name_parsing)
{
	sk_config c;
	sk_config_defaults(&c, SK_ARCH_GEMMA3N);
	struct {
		const char *name;
		sk_tensor_role role;
		int layer;
		sk_tensor_class cls;
	} cases[] = {
		{ "model.language_model.layers.3.mlp.up_proj.weight", SK_T_UP, 3, SK_TC_COMPUTE },
		{ "model.layers.3.mlp.up_proj.weight", SK_T_UP, 3, SK_TC_COMPUTE },
		{ "language_model.model.layers.3.mlp.up_proj.weight", SK_T_UP, 3, SK_TC_COMPUTE },
		{ "model.language_model.layers.20.self_attn.k_proj.weight", SK_T_K, 20, SK_TC_UNUSED_KV },
		{ "model.language_model.layers.19.self_attn.k_proj.weight", SK_T_K, 19, SK_TC_COMPUTE },
		{ "model.language_model.layers.34.self_attn.k_norm.weight", SK_T_K_NORM, 34, SK_TC_UNUSED_KV },
		{ "model.language_model.layers.34.self_attn.q_norm.weight", SK_T_Q_NORM, 34, SK_TC_COMPUTE },
		{ "blk.25.attn_v.weight", SK_T_V, 25, SK_TC_UNUSED_KV },
		{ "model.language_model.layers.35.mlp.up_proj.weight", SK_T_UP, 35, SK_TC_UNKNOWN },
		{ "model.language_model.layers.03.mlp.up_proj.weight", SK_T_NONE, -1, SK_TC_UNKNOWN },
		{ "model.language_model.layers.3.altup.correct_output_scale", SK_T_ALTUP_CORRECT_SCALE, 3, SK_TC_COMPUTE },
		{ "model.language_model.embed_tokens.weight", SK_T_EMBED, -1, SK_TC_TOKEN_EMBD },
		{ "token_embd.weight", SK_T_EMBED, -1, SK_TC_TOKEN_EMBD },
		{ "per_layer_token_embd.weight", SK_T_PLE_EMBED, -1, SK_TC_PLE },
		{ "model.language_model.embed_tokens_per_layer.weight", SK_T_PLE_EMBED, -1, SK_TC_PLE },
		{ "lm_head.weight", SK_T_LM_HEAD, -1, SK_TC_LM_HEAD },
		{ "model.vision_tower.timm_model.blocks.0.0.conv.weight", SK_T_NONE, -1, SK_TC_SKIPPED },
		{ "model.audio_tower.conformer.0.attn.weight", SK_T_NONE, -1, SK_TC_SKIPPED },
		{ "model.embed_vision.embedding.weight", SK_T_NONE, -1, SK_TC_SKIPPED },
		{ "model.embed_audio.embedding_projection.weight", SK_T_NONE, -1, SK_TC_SKIPPED },
		{ "v.blk.0.attn_q.weight", SK_T_NONE, -1, SK_TC_SKIPPED },
		{ "mm.input_projection.weight", SK_T_NONE, -1, SK_TC_SKIPPED },
		{ "a.conv1d.0.weight", SK_T_NONE, -1, SK_TC_SKIPPED },
		{ "model.language_model.altup_projections.1.weight", SK_T_ALTUP_PROJ, -1, SK_TC_COMPUTE },
		{ "model.language_model.altup_projections.x.weight", SK_T_NONE, -1, SK_TC_UNKNOWN },
		{ "blk.3.ffn_up.weight.extra", SK_T_NONE, -1, SK_TC_UNKNOWN },
		{ "blk.999999999999.ffn_up.weight", SK_T_NONE, -1, SK_TC_UNKNOWN },
		{ "", SK_T_NONE, -1, SK_TC_UNKNOWN },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sk_tensor_id id = sk_tensor_name_parse(cases[i].name, &c);
		CHECK_MSG(id.role == cases[i].role && id.cls == cases[i].cls &&
		              (cases[i].role == SK_T_NONE || id.layer == cases[i].layer),
		          "%s: role %d layer %d class %d", cases[i].name, id.role, id.layer, id.cls);
	}
	/* Gemma 3 has no AltUp: such a tensor is unknown there */
	sk_config_defaults(&c, SK_ARCH_GEMMA3);
	CHECK_EQ_INT(sk_tensor_name_parse("model.layers.0.altup.router_norm.weight", &c).cls, SK_TC_UNKNOWN);
	CHECK_EQ_INT(sk_tensor_name_parse("model.layers.20.self_attn.k_proj.weight", &c).cls, SK_TC_COMPUTE);
}

/* Parameter counts of gemma3n-architecture.md §7 from shapes alone. */
static void count_synthetic(const char *config_rel, int64_t want_compute_incl_kv, int64_t want_unused_kv,
                            int64_t want_embed, int64_t want_ple, int64_t want_total)
{
	sk_config c;
	CHECK_EQ_INT(sk_config_from_json(sk_test_path(config_rel), &c), 0);
	sk_param_totals t;
	memset(&t, 0, sizeof t);
	char name[160];
	sk_tensor_view v;
	for (int r = SK_T_NONE + 1; r < SK_T_ROLE_COUNT; r++) {
		sk_tensor_role role = (sk_tensor_role)r;
		if (role == SK_T_LM_HEAD)
			continue;
		int per = sk_tensor_role_is_per_layer(role);
		int nl = per ? c.num_layers : 1;
		int ni = role == SK_T_ALTUP_PROJ || role == SK_T_ALTUP_UNEMBD ? c.altup_num_inputs - 1 : 1;
		for (int l = 0; l < nl; l++)
			for (int i = 0; i < ni; i++) {
				memset(&v, 0, sizeof v);
				CHECK_EQ_INT(sk_tensor_name_build(role, per ? l : -1, i, SK_LAYOUT_HF, NULL, name, sizeof name), 0);
				v.name = name;
				v.dtype = SK_DT_BF16;
				v.ndim = sk_tensor_expected_shape(&c, role, per ? l : -1, SK_LAYOUT_HF, v.shape);
				v.nbytes = (uint64_t)sk_tensor_view_numel(&v) * 2;
				sk_param_totals_add(&t, sk_tensor_name_parse(name, &c).cls, &v);
			}
	}
	CHECK_EQ_INT(t.params[SK_TC_COMPUTE] + t.params[SK_TC_UNUSED_KV], want_compute_incl_kv);
	CHECK_EQ_INT(t.params[SK_TC_UNUSED_KV], want_unused_kv);
	CHECK_EQ_INT(t.params[SK_TC_TOKEN_EMBD], want_embed);
	CHECK_EQ_INT(t.params[SK_TC_PLE], want_ple);
	CHECK_EQ_INT(t.params[SK_TC_COMPUTE] + t.params[SK_TC_UNUSED_KV] + t.params[SK_TC_TOKEN_EMBD] +
	                 t.params[SK_TC_PLE],
	             want_total);
	CHECK_EQ_INT(t.count[SK_TC_COMPUTE] + t.count[SK_TC_UNUSED_KV] + t.count[SK_TC_TOKEN_EMBD] +
	                 t.count[SK_TC_PLE],
	             c.num_layers * 24 + 11);
	CHECK_EQ_INT(t.count[SK_TC_UNKNOWN], 0);
}

TEST(e4b_parameter_counts_from_shapes)
{
	count_synthetic("tests/fixtures/model/e4b-config/config.json", 3980491248LL, 31457280LL + 3840,
	                537395200LL, 2348810240LL, 6866696688LL);
}

TEST(e2b_parameter_counts_from_shapes)
{
	count_synthetic("tests/fixtures/model/e2b-config/config.json", 1905495648LL, 20971520LL + 2560,
	                537395200LL, 2013265920LL, 4456156768LL);
}

int main(void)
{
	RUN(hf_dir_gemma3n_with_consumer_kv);
	RUN(hf_dir_gemma3n_without_consumer_kv);
	RUN(hf_dir_and_file_gemma3);
	RUN(gguf_files);
	RUN(tokenizer_only_dir);
	RUN(lone_safetensors_infers_config);
	RUN(check_reports_missing_and_misshaped);
	RUN(bad_paths);
	RUN(name_round_trip_every_role);
	RUN(name_parsing);
	RUN(e4b_parameter_counts_from_shapes);
	RUN(e2b_parameter_counts_from_shapes);
	TEST_EXIT();
}
