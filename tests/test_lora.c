/* LoRA adapters: the PEFT adapters of tests/fixtures/hf/<model>/ref (written by
 * peft through tests/fixtures/make_fixtures.py) loaded against their
 * models' configs and compared with the safetensors data read directly;
 * adapter_config.json rules (PEFT target matching, checked against Python's
 * re.fullmatch); and broken adapters built here in a temporary directory. */
#include "engine/model/lora.h"

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/model/config.h"
#include "engine/format/dtype.h"
#include "engine/error.h"
#include "engine/format/safetensors.h"
#include "tests/test.h"

#define G3N "tests/fixtures/hf/tiny-gemma3n"
#define G3 "tests/fixtures/hf/tiny-gemma3"

static sk_config cfg3n, cfg3;
static char tmp_root[] = "/tmp/sk_lora_test.XXXXXX";
static int tmp_count;

static int load_configs(void)
{
	if (sk_config_from_json(sk_test_path(G3N "/config.json"), &cfg3n) ||
	    sk_config_from_json(sk_test_path(G3 "/config.json"), &cfg3)) {
		fprintf(stderr, "  %s\n", sk_error());
		return -1;
	}
	return 0;
}

static sk_lora *load_fixture(const char *rel, const sk_config *c)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s", sk_test_path(rel));
	sk_lora *l = sk_lora_load(dir, c);
	if (!l)
		fprintf(stderr, "  %s: %s\n", rel, sk_error());
	return l;
}

static void expected_dims(const sk_config *c, int layer, int m, int *in, int *out)
{
	int h = c->hidden_size, q = c->num_heads * c->head_dim, kv = c->num_kv_heads * c->head_dim,
	    ff = c->intermediate_size[layer];
	int ins[7] = { h, h, h, q, h, h, ff }, outs[7] = { q, kv, kv, h, ff, ff, h };
	*in = ins[m];
	*out = outs[m];
}

static float rd_f32(const void *p, int64_t i)
{
	float v;
	memcpy(&v, (const char *)p + 4 * i, 4);
	return v;
}

/* Every pair of an adapter against the file: shapes from the config, the
 * scale, and all values; returns the number of pairs seen. */
static int check_adapter(const char *rel, const sk_config *c, const char *layout, int want_pairs, float scale,
			 int has_attn)
{
	sk_lora *l = load_fixture(rel, c);
	CHECK(l != NULL);
	if (!l)
		return 0;
	char path[1024];
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", sk_test_path(rel));
	sk_st_file *st = sk_st_open(path);
	CHECK(st != NULL);
	int pairs = 0, kv_shared_first = sk_config_first_kv_shared(c);
	for (int layer = 0; layer < c->num_layers && st; layer++)
		for (int m = 0; m < SK_LORA_NMOD; m++) {
			const sk_lora_pair *p = sk_lora_get(l, layer, (sk_lora_module)m);
			int want = m >= SK_LORA_GATE || (has_attn && !((m == SK_LORA_K || m == SK_LORA_V) &&
									  layer >= kv_shared_first));
			CHECK_MSG(!!p == want, "%s layer %d %s: present %d, want %d", rel, layer,
				  sk_lora_module_name((sk_lora_module)m), !!p, want);
			if (!p)
				continue;
			pairs++;
			int in, out;
			expected_dims(c, layer, m, &in, &out);
			CHECK_EQ_INT(p->in, in);
			CHECK_EQ_INT(p->out, out);
			CHECK_EQ_INT(p->r, sk_lora_rank(l));
			CHECK_MSG(p->scale == scale, "scale %.9g want %.9g", p->scale, scale);
			for (int ab = 0; ab < 2; ab++) {
				char key[256];
				snprintf(key, sizeof key, "base_model.model.%slayers.%d.%s.%s.lora_%c.weight", layout, layer,
					 m <= SK_LORA_O ? "self_attn" : "mlp", sk_lora_module_name((sk_lora_module)m),
					 ab ? 'B' : 'A');
				const sk_tensor_view *t = sk_st_find(st, key);
				CHECK_MSG(t != NULL, "%s missing", key);
				if (!t)
					continue;
				const float *mine = ab ? p->B : p->A;
				int64_t n = (int64_t)p->r * (ab ? p->out : p->in), bad = 0, nonzero = 0;
				CHECK_EQ_INT(sk_tensor_view_numel(t), n);
				for (int64_t i = 0; i < n && i < sk_tensor_view_numel(t); i++) {
					float v = rd_f32(t->data, i);
					bad += memcmp(&v, &mine[i], 4) != 0;
					nonzero += v != 0.0f;
				}
				CHECK_MSG(bad == 0, "%s: %lld values differ", key, (long long)bad);
				CHECK(nonzero > n / 2); /* the fixtures have random, non-zero B */
			}
		}
	CHECK_EQ_INT(pairs, want_pairs);
	CHECK_EQ_INT(sk_lora_pair_count(l), want_pairs);
	CHECK_EQ_INT(sk_lora_ignored_count(l), 0);
	sk_st_close(st);
	sk_lora_free(l);
	return pairs;
}

TEST(gemma3n_adapter_all)
{
	/* r 4, alpha 8: scale 2; layers 4-5 are KV-shared and have no k/v */
	check_adapter(G3N "/ref/adapter_all", &cfg3n, "model.", 4 * 7 + 2 * 5, 2.0f, 1);
	sk_lora *l = load_fixture(G3N "/ref/adapter_all", &cfg3n);
	CHECK(l && sk_lora_rank(l) == 4);
	/* a few values by hand: A[0][0] of layer 0 q_proj, B[last] of layer 5 down_proj */
	const sk_lora_pair *q = sk_lora_get(l, 0, SK_LORA_Q), *d = sk_lora_get(l, 5, SK_LORA_DOWN);
	CHECK(q && d && d->in == 128 && d->out == 64);
	CHECK(!sk_lora_get(l, 6, SK_LORA_Q) && !sk_lora_get(l, -1, SK_LORA_Q) && !sk_lora_get(l, 0, SK_LORA_NMOD));
	sk_lora_free(l);
}

TEST(gemma3n_adapter_all_multimodal_layout)
{
	check_adapter(G3N "/ref/adapter_all_mm", &cfg3n, "model.language_model.", 38, 2.0f, 1);
	/* both layouts give the same pairs, bit for bit */
	sk_lora *a = load_fixture(G3N "/ref/adapter_all", &cfg3n), *b = load_fixture(G3N "/ref/adapter_all_mm", &cfg3n);
	CHECK(a && b);
	for (int layer = 0; a && b && layer < cfg3n.num_layers; layer++)
		for (int m = 0; m < SK_LORA_NMOD; m++) {
			const sk_lora_pair *p = sk_lora_get(a, layer, (sk_lora_module)m),
					   *r = sk_lora_get(b, layer, (sk_lora_module)m);
			CHECK(!!p == !!r);
			if (!p || !r)
				continue;
			CHECK(p->r == r->r && p->in == r->in && p->out == r->out && p->scale == r->scale);
			CHECK(memcmp(p->A, r->A, sizeof(float) * (size_t)p->r * (size_t)p->in) == 0);
			CHECK(memcmp(p->B, r->B, sizeof(float) * (size_t)p->r * (size_t)p->out) == 0);
		}
	sk_lora_free(a);
	sk_lora_free(b);
}

TEST(gemma3n_adapter_mlp_rslora)
{
	/* r 2, alpha 4, rsLoRA: 4 / sqrt(2); a regex target */
	float scale = (float)(4.0 / sqrt(2.0));
	CHECK_NEAR(scale, 2.8284271, 1e-6);
	check_adapter(G3N "/ref/adapter_mlp_rslora", &cfg3n, "model.", 18, scale, 0);
	check_adapter(G3N "/ref/adapter_mlp_rslora_mm", &cfg3n, "model.language_model.", 18, scale, 0);
	/* layer 2 has intermediate_size 96 */
	sk_lora *l = load_fixture(G3N "/ref/adapter_mlp_rslora", &cfg3n);
	const sk_lora_pair *p = l ? sk_lora_get(l, 2, SK_LORA_DOWN) : NULL;
	CHECK(p && p->in == 96 && p->r == 2);
	sk_lora_free(l);
}

TEST(gemma3_adapter_all)
{
	check_adapter(G3 "/ref/adapter_all", &cfg3, "model.", 7 * 7, 2.0f, 1);
	/* the Gemma 3 adapter does not fit Gemma 3n (7 layers vs 6) */
	char dir[1024];
	snprintf(dir, sizeof dir, "%s", sk_test_path(G3 "/ref/adapter_all"));
	sk_error_clear();
	CHECK(!sk_lora_load(dir, &cfg3n));
	CHECK(strstr(sk_error(), "layer 6 out of range") != NULL);
}

TEST(module_names)
{
	CHECK(strcmp(sk_lora_module_name(SK_LORA_Q), "q_proj") == 0);
	CHECK(strcmp(sk_lora_module_name(SK_LORA_GATE), "gate_proj") == 0);
	CHECK(strcmp(sk_lora_module_name(SK_LORA_DOWN), "down_proj") == 0);
}

/* ---- adapter_config.json ---- */

static int parse_cfg(const char *json, sk_lora_config *c)
{
	return sk_lora_config_parse(json, strlen(json), "adapter_config.json", c);
}

/* Expectations from Python: re.fullmatch(pattern, name) is not None. */
TEST(target_regex_matches_python)
{
	static const struct {
		const char *re, *name;
		int want;
	} cases[] = {
		{ "model\\.language_model\\.layers\\.\\d+\\.(self_attn\\.(q_proj|k_proj|v_proj|o_proj)|mlp\\.(gate_proj|up_proj|down_proj))",
		  "model.language_model.layers.12.mlp.up_proj", 1 },
		{ "model\\.language_model\\.layers\\.\\d+\\.(self_attn\\.(q_proj|k_proj|v_proj|o_proj)|mlp\\.(gate_proj|up_proj|down_proj))",
		  "model.audio_tower.conformer.0.attention.attn.q_proj", 0 },
		{ "model\\.language_model\\.layers\\.\\d+\\.(self_attn\\.(q_proj|k_proj|v_proj|o_proj)|mlp\\.(gate_proj|up_proj|down_proj))",
		  "model.language_model.layers.1.self_attn.q_proj.x", 0 },
		{ "model\\.language_model\\.layers\\.\\d+\\.(self_attn\\.(q_proj|k_proj|v_proj|o_proj)|mlp\\.(gate_proj|up_proj|down_proj))",
		  "model.language_model.layers.x.mlp.up_proj", 0 },
		{ ".*\\.mlp\\.(gate_proj|up_proj|down_proj)", "model.layers.0.mlp.gate_proj", 1 },
		{ ".*\\.mlp\\.(gate_proj|up_proj|down_proj)", "model.layers.0.self_attn.q_proj", 0 },
		{ "(?:.*\\.)?q_proj", "model.layers.0.self_attn.q_proj", 1 },
		{ "(?:.*\\.)?q_proj", "q_proj", 1 },
		{ "(?:.*\\.)?q_proj", "model.layers.0.self_attn.xq_proj", 0 },
		{ ".*?\\.[qk]_proj", "model.layers.0.self_attn.k_proj", 1 },
		{ ".*?\\.[qk]_proj", "model.layers.0.self_attn.v_proj", 0 },
		{ "model\\.layers\\.[0-3]\\.self_attn\\.\\w+", "model.layers.2.self_attn.o_proj", 1 },
		{ "model\\.layers\\.[0-3]\\.self_attn\\.\\w+", "model.layers.4.self_attn.o_proj", 0 },
		{ "model\\.layers\\.[\\d]+\\.mlp\\.up_proj", "model.layers.17.mlp.up_proj", 1 },
		{ "model\\.layers\\.[\\d]+\\.mlp\\.up_proj", "model.layers.a.mlp.up_proj", 0 },
		{ "x{2}_proj", "xx_proj", 1 },
		{ "x{2}_proj", "x_proj", 0 },
		{ "q_proj|v_proj", "q_proj", 1 },
		{ "q_proj|v_proj", "model.layers.0.self_attn.q_proj", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char json[1024], esc[512];
		size_t k = 0;
		for (const char *p = cases[i].re; *p && k + 2 < sizeof esc; p++) {
			if (*p == '\\')
				esc[k++] = '\\';
			esc[k++] = *p;
		}
		esc[k] = '\0';
		snprintf(json, sizeof json, "{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": \"%s\"}", esc);
		sk_lora_config c;
		int rc = parse_cfg(json, &c);
		CHECK_MSG(rc == 0, "%s: %s", cases[i].re, sk_error());
		if (rc)
			continue;
		CHECK_MSG(sk_lora_config_targets(&c, cases[i].name) == cases[i].want, "%s on %s", cases[i].re,
			  cases[i].name);
		sk_lora_config_free(&c);
	}
}

TEST(target_list_and_exclude)
{
	sk_lora_config c;
	CHECK_EQ_INT(parse_cfg("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"target_modules\": [\"q_proj\", "
			       "\"mlp.up_proj\"], \"exclude_modules\": \"model\\\\.audio_tower\\\\..*\", "
			       "\"some_future_key\": {\"x\": [1, 2]}}",
			       &c),
		     0);
	CHECK(c.r == 8 && c.alpha == 16.0f && c.scale == 2.0f && !c.use_rslora);
	CHECK(sk_lora_config_targets(&c, "model.layers.0.self_attn.q_proj"));
	CHECK(sk_lora_config_targets(&c, "q_proj"));
	CHECK(!sk_lora_config_targets(&c, "model.layers.0.self_attn.xq_proj"));
	CHECK(!sk_lora_config_targets(&c, "model.layers.0.self_attn.k_proj"));
	CHECK(sk_lora_config_targets(&c, "model.layers.3.mlp.up_proj"));
	CHECK(!sk_lora_config_targets(&c, "model.audio_tower.conformer.0.attention.q_proj"));
	sk_lora_config_free(&c);
	/* defaults of PEFT's dataclass; rsLoRA */
	CHECK_EQ_INT(parse_cfg("{\"peft_type\": \"LORA\", \"use_rslora\": true, \"r\": 16}", &c), 0);
	CHECK(c.r == 16 && c.alpha == 8.0f && c.scale == 2.0f && c.use_rslora);
	CHECK(sk_lora_config_targets(&c, "anything"));
	sk_lora_config_free(&c);
}

static void config_error(const char *json, const char *want)
{
	sk_lora_config c;
	sk_error_clear();
	int rc = parse_cfg(json, &c);
	CHECK_MSG(rc == -1, "accepted: %s", json);
	if (rc == 0)
		sk_lora_config_free(&c);
	CHECK_MSG(strstr(sk_error(), want) != NULL && strncmp(sk_error(), "adapter_config.json: ", 21) == 0,
		  "message \"%s\" lacks \"%s\"", sk_error(), want);
}

TEST(config_errors)
{
	config_error("{\"peft_type\": \"LORA\", \"r\": 4", "invalid JSON");
	config_error("[1, 2]", "not a JSON object");
	config_error("{\"r\": 4}", "peft_type missing");
	config_error("{\"peft_type\": \"IA3\"}", "only LORA");
	config_error("{\"peft_type\": \"LORA\", \"r\": 0}", "r must be");
	config_error("{\"peft_type\": \"LORA\", \"r\": 4.5}", "r must be");
	config_error("{\"peft_type\": \"LORA\", \"lora_alpha\": \"16\"}", "lora_alpha");
	config_error("{\"peft_type\": \"LORA\", \"bias\": \"all\"}", "bias");
	config_error("{\"peft_type\": \"LORA\", \"fan_in_fan_out\": true}", "fan_in_fan_out is true");
	config_error("{\"peft_type\": \"LORA\", \"use_dora\": true}", "DoRA");
	config_error("{\"peft_type\": \"LORA\", \"rank_pattern\": {\"q_proj\": 16}}", "rank_pattern");
	config_error("{\"peft_type\": \"LORA\", \"modules_to_save\": [\"lm_head\"]}", "modules_to_save");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": 5}", "target_modules must be");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\", 3]}", "entry 1");
	config_error("{\"peft_type\": \"LORA\", \"r\": 4, \"r\": 8}", "invalid JSON");
	/* regular expressions outside the subset, or broken */
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": \"model\\\\.(layers\"}", "unbalanced");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": \"a)|(b\"}", "unbalanced");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": \"\\\\bq_proj\"}", "unsupported escape");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": \"(?P<x>q)_proj\"}", "unsupported group");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": \"[q_proj\"}", "unterminated");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": \"q_proj++\"}", "quantifier");
	config_error("{\"peft_type\": \"LORA\", \"target_modules\": \"(\\\\1)\"}", "unsupported escape");
}

/* ---- broken adapters on disk ---- */

typedef struct {
	const char *name;
	int64_t rows, cols;
	sk_dtype dtype;
} tdesc;

static const char *const CFG_ALL =
	"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"bias\": \"none\", \"fan_in_fan_out\": false, "
	"\"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", \"down_proj\"]}";

/* A fresh directory with adapter_config.json (unless NULL) and
 * adapter_model.safetensors (unless nt < 0). Returns its path (static). */
static const char *make_adapter(const char *config, const tdesc *t, int nt)
{
	static char dir[512];
	char path[600];
	snprintf(dir, sizeof dir, "%s/a%d", tmp_root, tmp_count++);
	if (mkdir(dir, 0700) != 0)
		return NULL;
	if (config) {
		snprintf(path, sizeof path, "%s/adapter_config.json", dir);
		FILE *f = fopen(path, "w");
		if (!f)
			return NULL;
		fputs(config, f);
		fclose(f);
	}
	if (nt >= 0) {
		sk_st_entry e[32];
		void *bufs[32] = { 0 };
		for (int i = 0; i < nt && i < 32; i++) {
			int64_t n = t[i].rows * t[i].cols;
			int esz = t[i].dtype == SK_DT_F32 || t[i].dtype == SK_DT_I32 ? 4 : 2;
			unsigned char *b = malloc((size_t)(n * esz));
			for (int64_t k = 0; k < n; k++) {
				float v = 0.01f * (float)((k * 7 + i) % 23) - 0.1f;
				if (esz == 4) {
					memcpy(b + 4 * k, &v, 4);
				} else {
					uint16_t h = t[i].dtype == SK_DT_BF16 ? sk_f32_to_bf16(v) : sk_f32_to_f16(v);
					memcpy(b + 2 * k, &h, 2);
				}
			}
			bufs[i] = b;
			e[i] = (sk_st_entry){ .name = t[i].name, .dtype = t[i].dtype, .ndim = 2,
					      .shape = { t[i].rows, t[i].cols }, .data = b };
		}
		snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
		int rc = sk_st_write(path, e, (size_t)nt);
		for (int i = 0; i < nt && i < 32; i++)
			free(bufs[i]);
		if (rc) {
			fprintf(stderr, "  %s\n", sk_error());
			return NULL;
		}
	}
	return dir;
}

#define P "base_model.model.model.layers."

static void load_error(const char *config, const tdesc *t, int nt, const char *want)
{
	const char *dir = make_adapter(config, t, nt);
	CHECK(dir != NULL);
	if (!dir)
		return;
	sk_error_clear();
	sk_lora *l = sk_lora_load(dir, &cfg3n);
	CHECK_MSG(l == NULL, "accepted an adapter that should fail with \"%s\"", want);
	sk_lora_free(l);
	CHECK_MSG(strstr(sk_error(), want) != NULL, "message \"%s\" lacks \"%s\"", sk_error(), want);
	CHECK_MSG(strncmp(sk_error(), dir, strlen(dir)) == 0, "message \"%s\" does not name the file", sk_error());
}

TEST(adapter_errors)
{
	tdesc wrong_shape[] = { { P "3.self_attn.q_proj.lora_A.weight", 4, 64, SK_DT_F32 },
				{ P "3.self_attn.q_proj.lora_B.weight", 32, 4, SK_DT_F32 } };
	load_error(CFG_ALL, wrong_shape, 2,
		   "adapter_model.safetensors: " P "3.self_attn.q_proj.lora_B.weight: shape [32, 4] does not fit "
		   "q_proj of layer 3 (out 64)");
	tdesc wrong_in[] = { { P "2.mlp.down_proj.lora_A.weight", 4, 128, SK_DT_F32 },
			     { P "2.mlp.down_proj.lora_B.weight", 64, 4, SK_DT_F32 } };
	load_error(CFG_ALL, wrong_in, 2, "down_proj.lora_A.weight: shape [4, 128] does not fit down_proj of layer 2 (in 96)");
	tdesc missing_b[] = { { P "0.mlp.up_proj.lora_A.weight", 4, 64, SK_DT_F32 } };
	load_error(CFG_ALL, missing_b, 1, P "0.mlp.up_proj.lora_A.weight has no matching lora_B.weight");
	tdesc missing_a[] = { { P "0.mlp.up_proj.lora_B.weight", 128, 4, SK_DT_F32 } };
	load_error(CFG_ALL, missing_a, 1, "up_proj.lora_B.weight has no matching lora_A.weight");
	tdesc r_mismatch[] = { { P "1.self_attn.v_proj.lora_A.weight", 4, 64, SK_DT_F32 },
			       { P "1.self_attn.v_proj.lora_B.weight", 32, 3, SK_DT_F32 } };
	load_error(CFG_ALL, r_mismatch, 2, "v_proj.lora_B.weight: shape [32, 3] has rank 3, but adapter_config.json has r = 4");
	tdesc r_both[] = { { P "1.self_attn.v_proj.lora_A.weight", 2, 64, SK_DT_F32 },
			   { P "1.self_attn.v_proj.lora_B.weight", 32, 2, SK_DT_F32 } };
	load_error(CFG_ALL, r_both, 2, "has rank 2");
	tdesc out_of_range[] = { { P "6.self_attn.q_proj.lora_A.weight", 4, 64, SK_DT_F32 },
				 { P "6.self_attn.q_proj.lora_B.weight", 64, 4, SK_DT_F32 } };
	load_error(CFG_ALL, out_of_range, 2, "layer 6 out of range (the model has 6 layers)");
	tdesc unknown[] = { { P "0.self_attn.x_proj.lora_A.weight", 4, 64, SK_DT_F32 } };
	load_error(CFG_ALL, unknown, 1, "x_proj.lora_A.weight: unknown module");
	tdesc unknown2[] = { { "base_model.model.lm_head.lora_A.weight", 4, 64, SK_DT_F32 } };
	load_error(CFG_ALL, unknown2, 1, "lm_head.lora_A.weight: unknown module");
	tdesc not_lora[] = { { P "0.self_attn.q_proj.lora_magnitude_vector", 1, 64, SK_DT_F32 } };
	load_error(CFG_ALL, not_lora, 1, "not a LoRA factor");
	tdesc leading_zero[] = { { P "01.self_attn.q_proj.lora_A.weight", 4, 64, SK_DT_F32 } };
	load_error(CFG_ALL, leading_zero, 1, "unknown module");
	tdesc bad_dtype[] = { { P "0.self_attn.q_proj.lora_A.weight", 4, 64, SK_DT_I32 },
			      { P "0.self_attn.q_proj.lora_B.weight", 64, 4, SK_DT_F32 } };
	load_error(CFG_ALL, bad_dtype, 2, "dtype I32");
	tdesc dup[] = { { P "0.self_attn.q_proj.lora_A.weight", 4, 64, SK_DT_F32 },
			{ P "0.self_attn.q_proj.lora_A.default.weight", 4, 64, SK_DT_F32 } };
	load_error(CFG_ALL, dup, 2, "also stored as");
	tdesc not_targeted[] = { { P "0.self_attn.v_proj.lora_A.weight", 4, 64, SK_DT_F32 },
				 { P "0.self_attn.v_proj.lora_B.weight", 32, 4, SK_DT_F32 } };
	load_error("{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"]}", not_targeted, 2,
		   "module model.layers.0.self_attn.v_proj is not selected by target_modules");
	load_error("{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": \"model\\\\.(layers\"}", wrong_shape, 2,
		   "adapter_config.json: target_modules: unbalanced parenthesis");
	load_error("{\"peft_type\": \"LORA\", \"r\": 4,", wrong_shape, 2, "adapter_config.json: invalid JSON");
	load_error(NULL, wrong_shape, 2, "adapter_config.json: No such file");
	load_error(CFG_ALL, NULL, -1, "adapter_model.safetensors");
	load_error(CFG_ALL, NULL, 0, "no LoRA tensors");
}

TEST(adapter_variants_accepted)
{
	/* keys without the PEFT prefix, the ".default." form, bf16 and f16
	 * factors, a vision-tower module, and k/v of a KV-shared layer (4) */
	tdesc t[] = {
		{ "model.layers.0.self_attn.q_proj.lora_A.weight", 4, 64, SK_DT_BF16 },
		{ "model.layers.0.self_attn.q_proj.lora_B.weight", 64, 4, SK_DT_F16 },
		{ P "1.mlp.gate_proj.lora_A.default.weight", 4, 64, SK_DT_F32 },
		{ P "1.mlp.gate_proj.lora_B.default.weight", 128, 4, SK_DT_F32 },
		{ P "4.self_attn.k_proj.lora_A.weight", 4, 64, SK_DT_F32 },
		{ P "4.self_attn.k_proj.lora_B.weight", 32, 4, SK_DT_F32 },
		{ "base_model.model.model.vision_tower.timm_model.blocks.0.attn.q_proj.lora_A.weight", 4, 16, SK_DT_F32 },
		{ "base_model.model.model.vision_tower.timm_model.blocks.0.attn.q_proj.lora_B.weight", 16, 4, SK_DT_F32 },
	};
	const char *dir = make_adapter(CFG_ALL, t, 8);
	CHECK(dir != NULL);
	sk_lora *l = dir ? sk_lora_load(dir, &cfg3n) : NULL;
	CHECK_MSG(l != NULL, "%s", sk_error());
	if (!l)
		return;
	CHECK_EQ_INT(sk_lora_pair_count(l), 2);
	CHECK_EQ_INT(sk_lora_ignored_count(l), 4);
	CHECK(sk_lora_get(l, 4, SK_LORA_K) == NULL);
	const sk_lora_pair *q = sk_lora_get(l, 0, SK_LORA_Q), *g = sk_lora_get(l, 1, SK_LORA_GATE);
	CHECK(q && g);
	if (q && g) {
		/* the pattern make_adapter wrote, through bf16 / f16 */
		for (int k = 0; k < 4 * 64; k++) {
			float v = 0.01f * (float)((k * 7 + 0) % 23) - 0.1f;
			CHECK(q->A[k] == sk_bf16_to_f32(sk_f32_to_bf16(v)));
		}
		for (int k = 0; k < 64 * 4; k++) {
			float v = 0.01f * (float)((k * 7 + 1) % 23) - 0.1f;
			CHECK(q->B[k] == sk_f16_to_f32(sk_f32_to_f16(v)));
		}
		CHECK(g->out == 128 && g->in == 64 && g->scale == 2.0f);
		CHECK(g->B[5] == 0.01f * (float)((5 * 7 + 3) % 23) - 0.1f);
	}
	sk_lora_free(l);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	if (load_configs() != 0)
		return 1;
	RUN(gemma3n_adapter_all);
	RUN(gemma3n_adapter_all_multimodal_layout);
	RUN(gemma3n_adapter_mlp_rslora);
	RUN(gemma3_adapter_all);
	RUN(module_names);
	RUN(target_regex_matches_python);
	RUN(target_list_and_exclude);
	RUN(config_errors);
	RUN(adapter_errors);
	RUN(adapter_variants_accepted);
	nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	TEST_EXIT();
}
