/* sk_config from config.json (every spelling) and from GGUF metadata.
 * Expected values are those transformers wrote into the fixtures
 * (tests/fixtures/model/make_model_fixtures.py) and gemma3n-architecture.md §1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/config.h"
#include "engine/error.h"
#include "engine/format/gguf.h"
#include "tests/test.h"

static sk_config cfg;

static int load_fixture(const char *rel)
{
	return sk_config_from_json(sk_test_path(rel), &cfg);
}

static int parse(const char *json)
{
	return sk_config_from_json_mem(json, strlen(json), "config.json", &cfg);
}

/* Parsing must fail with a message containing want. */
static void expect_error(const char *json, const char *want)
{
	sk_error_clear();
	int rc = parse(json);
	CHECK_MSG(rc == -1, "accepted: %s", json);
	CHECK_MSG(strstr(sk_error(), want) != NULL, "message \"%s\" lacks \"%s\"", sk_error(), want);
}

TEST(e4b_full_config)
{
	CHECK_EQ_INT(load_fixture("tests/fixtures/model/e4b-config/config.json"), 0);
	CHECK_EQ_INT(cfg.arch, SK_ARCH_GEMMA3N);
	CHECK_EQ_INT(cfg.multimodal, 1);
	CHECK_EQ_INT(cfg.num_layers, 35);
	CHECK_EQ_INT(cfg.hidden_size, 2048);
	CHECK_EQ_INT(cfg.num_heads, 8);
	CHECK_EQ_INT(cfg.num_kv_heads, 2);
	CHECK_EQ_INT(cfg.head_dim, 256);
	for (int i = 0; i < 35; i++)
		CHECK_EQ_INT(cfg.intermediate_size[i], 16384);
	CHECK_EQ_INT(cfg.vocab_size, 262400);
	CHECK_EQ_INT(cfg.vocab_size_per_layer_input, 262144);
	CHECK_EQ_INT(cfg.hidden_size_per_layer_input, 256);
	CHECK_EQ_INT(cfg.altup_num_inputs, 4);
	CHECK_EQ_INT(cfg.altup_active_idx, 0);
	CHECK_NEAR(cfg.altup_coef_clip, 120.0, 0);
	CHECK_EQ_INT(cfg.altup_correct_scale, 1);
	CHECK_EQ_INT(cfg.laurel_rank, 64);
	CHECK_EQ_INT(cfg.num_kv_shared_layers, 15);
	CHECK_EQ_INT(sk_config_first_kv_shared(&cfg), 20);
	for (int i = 0; i < 35; i++) {
		CHECK_EQ_INT(cfg.sliding[i], (i + 1) % 5 != 0);
		CHECK_NEAR(cfg.activation_sparsity[i], i < 10 ? 0.95 : 0.0, 1e-7);
		CHECK_NEAR(cfg.activation_sparsity_z[i], i < 10 ? 1.6448536 : 0.0, 1e-6);
	}
	/* consumer layers read the last owning layer of their type: 18 (sliding), 19 (full) */
	CHECK_EQ_INT(sk_config_kv_source_layer(&cfg, 20), 18);
	CHECK_EQ_INT(sk_config_kv_source_layer(&cfg, 24), 19);
	CHECK_EQ_INT(sk_config_kv_source_layer(&cfg, 34), 19);
	CHECK_EQ_INT(sk_config_kv_source_layer(&cfg, 7), 7);
	CHECK_EQ_INT(cfg.sliding_window, 512);
	CHECK_NEAR(cfg.rope_theta_global, 1e6, 0);
	CHECK_NEAR(cfg.rope_theta_local, 1e4, 0);
	CHECK_EQ_INT(cfg.rope_scaling_global, SK_ROPE_DEFAULT);
	CHECK_NEAR(cfg.rms_norm_eps, 1e-6, 1e-12);
	CHECK_NEAR(cfg.final_logit_softcap, 30.0, 0);
	CHECK_NEAR(cfg.attn_logit_softcap, 0.0, 0);
	CHECK_NEAR(sk_config_attn_scale(&cfg), 1.0, 0);
	CHECK_EQ_INT(cfg.max_position_embeddings, 32768);
	CHECK_EQ_INT(cfg.n_eos, 2);
	CHECK_EQ_INT(cfg.eos_token_ids[0], 1);
	CHECK_EQ_INT(cfg.eos_token_ids[1], 106);
	CHECK(sk_config_is_eos(&cfg, 106) && !sk_config_is_eos(&cfg, 2));
	CHECK_EQ_INT(cfg.bos_token_id, 2);
	CHECK_EQ_INT(cfg.pad_token_id, 0);
	CHECK_EQ_INT(cfg.tie_word_embeddings, 1);
	CHECK(strcmp(cfg.torch_dtype, "bfloat16") == 0);
	CHECK_EQ_INT(cfg.norm_plus_one_stored, 0);
}

TEST(e2b_full_config)
{
	CHECK_EQ_INT(load_fixture("tests/fixtures/model/e2b-config/config.json"), 0);
	CHECK_EQ_INT(cfg.num_layers, 30);
	CHECK_EQ_INT(cfg.intermediate_size[0], 8192);
	CHECK_EQ_INT(cfg.intermediate_size[29], 8192);
	CHECK_EQ_INT(cfg.num_kv_shared_layers, 10);
	CHECK_NEAR(cfg.activation_sparsity[9], 0.95, 1e-7);
	CHECK_NEAR(cfg.activation_sparsity[10], 0.0, 0);
	CHECK_EQ_INT(cfg.sliding[29], 0);
	CHECK_EQ_INT(cfg.sliding[28], 1);
}

TEST(gemma3n_tiny_fixture)
{
	static const int ffn[5] = { 48, 48, 32, 32, 32 };
	static const int sliding[5] = { 1, 1, 0, 1, 0 };
	CHECK_EQ_INT(load_fixture("tests/fixtures/model/gemma3n-tiny/config.json"), 0);
	CHECK_EQ_INT(cfg.num_layers, 5);
	CHECK_EQ_INT(cfg.hidden_size, 32);
	CHECK_EQ_INT(cfg.head_dim, 16);
	CHECK_EQ_INT(cfg.num_kv_heads, 1);
	for (int i = 0; i < 5; i++) {
		CHECK_EQ_INT(cfg.intermediate_size[i], ffn[i]);
		CHECK_EQ_INT(cfg.sliding[i], sliding[i]);
	}
	CHECK_EQ_INT(cfg.num_kv_shared_layers, 2);
	CHECK_EQ_INT(sk_config_kv_source_layer(&cfg, 3), 1);
	CHECK_EQ_INT(sk_config_kv_source_layer(&cfg, 4), 2);
	CHECK_EQ_INT(cfg.vocab_size, 256);
	CHECK_EQ_INT(cfg.vocab_size_per_layer_input, 128);
	CHECK_EQ_INT(cfg.hidden_size_per_layer_input, 8);
	CHECK_EQ_INT(cfg.laurel_rank, 4);
	CHECK_EQ_INT(cfg.sliding_window, 16);
}

TEST(gemma3_tiny_fixture)
{
	CHECK_EQ_INT(load_fixture("tests/fixtures/model/gemma3-tiny/config.json"), 0);
	CHECK_EQ_INT(cfg.arch, SK_ARCH_GEMMA3);
	CHECK_EQ_INT(cfg.multimodal, 0);
	CHECK_EQ_INT(cfg.num_layers, 6);
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(cfg.sliding[i], i != 5);
	CHECK_EQ_INT(cfg.rope_scaling_global, SK_ROPE_LINEAR);
	CHECK_NEAR(cfg.rope_factor_global, 8.0, 0);
	CHECK_EQ_INT(cfg.rope_scaling_local, SK_ROPE_DEFAULT);
	CHECK_NEAR(cfg.rope_theta_local, 1e4, 0);
	CHECK_NEAR(cfg.query_pre_attn_scalar, 16.0, 0);
	CHECK_NEAR(sk_config_attn_scale(&cfg), 0.25, 1e-7);
	CHECK_NEAR(cfg.final_logit_softcap, 0.0, 0);
	CHECK_EQ_INT(cfg.n_eos, 1);
	CHECK_EQ_INT(cfg.num_kv_shared_layers, 0);
	CHECK_NEAR(cfg.activation_sparsity[0], 0.0, 0);
}

TEST(old_spelling_gemma3n_text)
{
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":10,\"intermediate_size\":4096,"
	                   "\"rope_theta\":500000.0,\"rope_local_base_freq\":20000,\"num_kv_shared_layers\":4,"
	                   "\"eos_token_id\":7,\"attn_logit_softcapping\":null,\"final_logit_softcapping\":null}"),
	             0);
	CHECK_EQ_INT(cfg.num_layers, 10);
	CHECK_EQ_INT(cfg.multimodal, 0);
	CHECK_EQ_INT(cfg.intermediate_size[9], 4096);
	CHECK_NEAR(cfg.rope_theta_global, 5e5, 0);
	CHECK_NEAR(cfg.rope_theta_local, 2e4, 0);
	/* default rule: every 5th layer full */
	CHECK_EQ_INT(cfg.sliding[4], 0);
	CHECK_EQ_INT(cfg.sliding[9], 0);
	CHECK_EQ_INT(cfg.sliding[5], 1);
	/* default sparsity on the first 10 layers */
	CHECK_NEAR(cfg.activation_sparsity[9], 0.95, 1e-7);
	CHECK_EQ_INT(cfg.n_eos, 1);
	CHECK_EQ_INT(cfg.eos_token_ids[0], 7);
	CHECK_NEAR(cfg.final_logit_softcap, 0.0, 0);
}

TEST(old_spelling_gemma3_text)
{
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":12,\"sliding_window_pattern\":4,"
	                   "\"rope_scaling\":{\"type\":\"linear\",\"factor\":8.0},\"rope_theta\":1000000,"
	                   "\"rope_local_base_freq\":10000.0,\"sliding_window\":1024,\"torch_dtype\":\"float32\"}"),
	             0);
	CHECK_EQ_INT(cfg.sliding[3], 0);
	CHECK_EQ_INT(cfg.sliding[7], 0);
	CHECK_EQ_INT(cfg.sliding[5], 1);
	CHECK_EQ_INT(cfg.rope_scaling_global, SK_ROPE_LINEAR);
	CHECK_NEAR(cfg.rope_factor_global, 8.0, 0);
	CHECK_EQ_INT(cfg.rope_scaling_local, SK_ROPE_DEFAULT);
	CHECK_EQ_INT(cfg.sliding_window, 1024);
	CHECK(strcmp(cfg.torch_dtype, "float32") == 0);
	/* Gemma3TextConfig defaults for what is not given */
	CHECK_EQ_INT(cfg.hidden_size, 2304);
	CHECK_EQ_INT(cfg.num_kv_heads, 4);
	CHECK_EQ_INT(cfg.vocab_size, 262208);
}

TEST(gemma3_multimodal_sparse_text_config)
{
	/* the shape of google/gemma-3-4b-it's config.json: a sparse text_config */
	CHECK_EQ_INT(parse("{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"model_type\":\"gemma3\","
	                   "\"eos_token_id\":[1,106],\"text_config\":{\"hidden_size\":2560,\"intermediate_size\":10240,"
	                   "\"model_type\":\"gemma3_text\",\"num_hidden_layers\":34,\"rope_scaling\":{\"factor\":8.0,"
	                   "\"rope_type\":\"linear\"},\"sliding_window\":1024},\"vision_config\":{\"hidden_size\":1152}}"),
	             0);
	CHECK_EQ_INT(cfg.arch, SK_ARCH_GEMMA3);
	CHECK_EQ_INT(cfg.multimodal, 1);
	CHECK_EQ_INT(cfg.num_layers, 34);
	CHECK_EQ_INT(cfg.hidden_size, 2560);
	CHECK_EQ_INT(cfg.num_heads, 8);
	CHECK_EQ_INT(cfg.sliding[5], 0);
	CHECK_EQ_INT(cfg.sliding[11], 0);
	CHECK_EQ_INT(cfg.sliding[33], 1);
	CHECK_EQ_INT(cfg.rope_scaling_global, SK_ROPE_LINEAR);
	CHECK_EQ_INT(cfg.n_eos, 2);
	CHECK_EQ_INT(cfg.eos_token_ids[1], 106);
}

TEST(rope_parameters_flat_and_nested)
{
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma3_text\",\"rope_parameters\":{\"rope_type\":\"default\","
	                   "\"rope_theta\":250000.0},\"rope_local_base_freq\":5000}"),
	             0);
	CHECK_NEAR(cfg.rope_theta_global, 250000.0, 0);
	CHECK_NEAR(cfg.rope_theta_local, 5000.0, 0);
	CHECK_EQ_INT(cfg.rope_scaling_global, SK_ROPE_DEFAULT);
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma3_text\",\"rope_parameters\":{\"sliding_attention\":"
	                   "{\"rope_type\":\"default\",\"rope_theta\":12345}}}"),
	             0);
	CHECK_NEAR(cfg.rope_theta_local, 12345.0, 0);
	CHECK_NEAR(cfg.rope_theta_global, 1e6, 0);
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma3_text\",\"rope_parameters\":{\"full_attention\":"
	                   "{\"rope_type\":\"yarn\",\"factor\":4,\"rope_theta\":1e6}}}"),
	             0);
	CHECK_EQ_INT(cfg.rope_scaling_global, SK_ROPE_OTHER);
	CHECK(strcmp(cfg.rope_scaling_name, "yarn") == 0);
}

TEST(minimal_config_takes_e4b_defaults)
{
	sk_config e4b;
	CHECK_EQ_INT(load_fixture("tests/fixtures/model/e4b-config/config.json"), 0);
	e4b = cfg;
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma3n\",\"text_config\":{},\"eos_token_id\":[1,106],"
	                   "\"torch_dtype\":\"bfloat16\"}"),
	             0);
	CHECK_EQ_INT(cfg.num_layers, e4b.num_layers);
	CHECK(memcmp(cfg.intermediate_size, e4b.intermediate_size, sizeof cfg.intermediate_size) == 0);
	CHECK(memcmp(cfg.sliding, e4b.sliding, sizeof cfg.sliding) == 0);
	CHECK(memcmp(cfg.activation_sparsity, e4b.activation_sparsity, sizeof cfg.activation_sparsity) == 0);
	CHECK_EQ_INT(cfg.num_kv_shared_layers, e4b.num_kv_shared_layers);
	CHECK_EQ_INT(cfg.vocab_size, e4b.vocab_size);
	CHECK_NEAR(cfg.final_logit_softcap, e4b.final_logit_softcap, 0);
}

TEST(per_layer_lists)
{
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":4,\"num_kv_shared_layers\":1,"
	                   "\"intermediate_size\":[10,20,30,40],\"activation_sparsity_pattern\":[0.5,0,0,0],"
	                   "\"layer_types\":[\"full_attention\",\"sliding_attention\",\"full_attention\","
	                   "\"sliding_attention\"]}"),
	             0);
	CHECK_EQ_INT(cfg.intermediate_size[2], 30);
	CHECK_EQ_INT(cfg.sliding[0], 0);
	CHECK_EQ_INT(cfg.sliding[3], 1);
	CHECK_NEAR(cfg.activation_sparsity_z[0], 0.0, 1e-6); /* Phi^-1(0.5) = 0 */
	CHECK_NEAR(cfg.activation_sparsity[0], 0.5, 0);
	CHECK_EQ_INT(sk_config_kv_source_layer(&cfg, 3), 1);
}

TEST(malformed_configs)
{
	expect_error("{\"model_type\":", "not valid JSON");
	expect_error("not json at all", "not valid JSON");
	expect_error("[1,2]", "not a JSON object");
	expect_error("{}", "model_type is missing");
	expect_error("{\"model_type\":7}", "model_type must be a string");
	expect_error("{\"model_type\":\"llama\"}", "\"llama\" is not supported");
	expect_error("{\"model_type\":\"gemma3n\"}", "text_config is missing");
	expect_error("{\"model_type\":\"gemma3\",\"text_config\":5}", "text_config must be an object");
	expect_error("{\"model_type\":\"gemma3n\",\"text_config\":{\"model_type\":\"gemma3_text\"}}",
	             "text_config.model_type must be");
	expect_error("{\"model_type\":\"gemma3n\",\"text_config\":{\"num_hidden_layers\":\"35\"}}",
	             "config.json: text_config.num_hidden_layers must be a positive integer");
	expect_error("{\"model_type\":\"gemma3n\",\"text_config\":{\"num_hidden_layers\":-3}}",
	             "text_config.num_hidden_layers must be a positive integer");
	expect_error("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":100000}",
	             "config.json: num_hidden_layers must be a positive integer of at most 256");
	expect_error("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":1e300}", "num_hidden_layers must be");
	expect_error("{\"model_type\":\"gemma3_text\",\"hidden_size\":0}", "hidden_size must be a positive integer");
	expect_error("{\"model_type\":\"gemma3_text\",\"vocab_size\":-262144}", "vocab_size must be");
	expect_error("{\"model_type\":\"gemma3_text\",\"head_dim\":2.5}", "head_dim must be");
	expect_error("{\"model_type\":\"gemma3_text\",\"num_attention_heads\":8,\"num_key_value_heads\":3}",
	             "not a multiple of 3 key/value heads");
	expect_error("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":3,\"intermediate_size\":[1,2]}",
	             "intermediate_size must list one size per layer");
	expect_error("{\"model_type\":\"gemma3n_text\",\"intermediate_size\":\"big\"}", "intermediate_size must be");
	expect_error("{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":2,\"layer_types\":[\"full_attention\","
	             "\"chunked_attention\"]}",
	             "layer_types must hold");
	expect_error("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":2,\"num_kv_shared_layers\":0,"
	             "\"activation_sparsity_pattern\":[1.5,0]}",
	             "activation_sparsity_pattern must hold numbers in [0, 1)");
	expect_error("{\"model_type\":\"gemma3n_text\",\"altup_active_idx\":4}", "altup_active_idx 4 is not below");
	expect_error("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":5,\"num_kv_shared_layers\":5}",
	             "num_kv_shared_layers 5 must be below");
	/* default pattern on 5 layers: only layer 4 is full, so a shared layer 4 has no owner */
	expect_error("{\"model_type\":\"gemma3n_text\",\"num_hidden_layers\":5,\"num_kv_shared_layers\":2}",
	             "KV-shared layer 4 has no earlier full-attention layer");
	expect_error("{\"model_type\":\"gemma3_text\",\"vocab_size\":100,\"eos_token_id\":[1,1000]}",
	             "eos_token_id 1000 is outside the vocabulary");
	expect_error("{\"model_type\":\"gemma3_text\",\"eos_token_id\":[]}", "eos_token_id must be a list");
	expect_error("{\"model_type\":\"gemma3_text\",\"eos_token_id\":\"</s>\"}", "eos_token_id must be");
	expect_error("{\"model_type\":\"gemma3_text\",\"rope_theta\":\"x\"}", "rope_theta must be a number");
	expect_error("{\"model_type\":\"gemma3_text\",\"rms_norm_eps\":-1}", "rms_norm_eps must be");
	expect_error("{\"model_type\":\"gemma3_text\",\"hidden_activation\":\"relu\"}", "hidden_activation");
	expect_error("{\"model_type\":\"gemma3_text\",\"attention_bias\":true}", "attention_bias");
	expect_error("{\"model_type\":\"gemma3_text\",\"tie_word_embeddings\":1}", "tie_word_embeddings must be");
	expect_error("{\"model_type\":\"gemma3_text\",\"rope_scaling\":{\"rope_type\":\"linear\"}}",
	             "linear without a factor");
	expect_error("{\"model_type\":\"gemma3_text\",\"rope_parameters\":[1]}", "rope_parameters must be an object");
	expect_error("{\"model_type\":\"gemma3_text\",\"model_type\":\"gemma3_text\"}", "not valid JSON");
	sk_error_clear();
	CHECK_EQ_INT(sk_config_from_json("/nonexistent/config.json", &cfg), -1);
	CHECK(strstr(sk_error(), "/nonexistent/config.json: ") == sk_error());
}

/* ---- GGUF ---- */

TEST(gguf_tiny_gemma3n_matches_config_json)
{
	sk_config hf;
	CHECK_EQ_INT(load_fixture("tests/fixtures/model/gemma3n-tiny/config.json"), 0);
	hf = cfg;
	sk_gguf *g = sk_gguf_open(sk_test_path("tests/fixtures/model/gemma3n-tiny.gguf"));
	CHECK(g != NULL);
	if (!g)
		return;
	CHECK_EQ_INT(sk_config_from_gguf(g, &cfg), 0);
	CHECK_EQ_INT(cfg.arch, SK_ARCH_GEMMA3N);
	CHECK_EQ_INT(cfg.num_layers, hf.num_layers);
	CHECK_EQ_INT(cfg.hidden_size, hf.hidden_size);
	CHECK_EQ_INT(cfg.num_heads, hf.num_heads);
	CHECK_EQ_INT(cfg.num_kv_heads, hf.num_kv_heads);
	CHECK_EQ_INT(cfg.head_dim, hf.head_dim);
	CHECK_EQ_INT(cfg.vocab_size, hf.vocab_size);
	CHECK_EQ_INT(cfg.vocab_size_per_layer_input, hf.vocab_size_per_layer_input);
	CHECK_EQ_INT(cfg.hidden_size_per_layer_input, hf.hidden_size_per_layer_input);
	CHECK_EQ_INT(cfg.laurel_rank, hf.laurel_rank);
	CHECK_EQ_INT(cfg.altup_num_inputs, hf.altup_num_inputs);
	CHECK_EQ_INT(cfg.num_kv_shared_layers, hf.num_kv_shared_layers); /* stored as f32 in this file */
	CHECK_EQ_INT(cfg.sliding_window, hf.sliding_window);
	CHECK_EQ_INT(cfg.max_position_embeddings, hf.max_position_embeddings);
	for (int i = 0; i < hf.num_layers; i++) {
		CHECK_EQ_INT(cfg.intermediate_size[i], hf.intermediate_size[i]);
		CHECK_EQ_INT(cfg.sliding[i], hf.sliding[i]);
		CHECK_NEAR(cfg.activation_sparsity[i], hf.activation_sparsity[i], 1e-6);
		CHECK_NEAR(cfg.activation_sparsity_z[i], hf.activation_sparsity_z[i], 1e-5);
	}
	CHECK_NEAR(cfg.rope_theta_global, hf.rope_theta_global, 0);
	CHECK_NEAR(cfg.rope_theta_local, hf.rope_theta_local, 0);
	CHECK_NEAR(cfg.final_logit_softcap, 30.0, 0);
	CHECK_NEAR(cfg.rms_norm_eps, hf.rms_norm_eps, 1e-12);
	CHECK_EQ_INT(cfg.norm_plus_one_stored, 0);
	CHECK_EQ_INT(cfg.n_eos, 2); /* eos 1 + eot 106 */
	CHECK_EQ_INT(cfg.eos_token_ids[1], 106);
	sk_gguf_close(g);
}

TEST(gguf_tiny_gemma3_matches_config_json)
{
	sk_config hf;
	CHECK_EQ_INT(load_fixture("tests/fixtures/model/gemma3-tiny/config.json"), 0);
	hf = cfg;
	sk_gguf *g = sk_gguf_open(sk_test_path("tests/fixtures/model/gemma3-tiny.gguf"));
	CHECK(g != NULL);
	if (!g)
		return;
	CHECK_EQ_INT(sk_config_from_gguf(g, &cfg), 0);
	CHECK_EQ_INT(cfg.arch, SK_ARCH_GEMMA3);
	CHECK_EQ_INT(cfg.num_layers, hf.num_layers);
	CHECK_EQ_INT(cfg.intermediate_size[3], hf.intermediate_size[3]);
	CHECK(memcmp(cfg.sliding, hf.sliding, sizeof cfg.sliding) == 0); /* default period 6 */
	CHECK_EQ_INT(cfg.rope_scaling_global, SK_ROPE_LINEAR);
	CHECK_NEAR(cfg.rope_factor_global, 8.0, 0);
	CHECK_NEAR(cfg.rope_theta_local, 1e4, 0); /* freq_base_swa absent: default */
	CHECK_NEAR(cfg.query_pre_attn_scalar, hf.query_pre_attn_scalar, 0);
	CHECK_EQ_INT(cfg.norm_plus_one_stored, 1);
	CHECK_NEAR(cfg.final_logit_softcap, 0.0, 0);
	CHECK_EQ_INT(cfg.vocab_size, 256);
	sk_gguf_close(g);
}

TEST(gguf_default_model)
{
	const char *path = getenv("SK_DEFAULT_MODEL");
	if (!path || !*path) {
		SKIP("SK_DEFAULT_MODEL is unset");
		return;
	}
	sk_gguf *g = sk_gguf_open(path);
	CHECK_MSG(g != NULL, "%s", sk_error());
	if (!g)
		return;
	CHECK_EQ_INT(sk_config_from_gguf(g, &cfg), 0);
	/* Gemma 3 270M */
	CHECK_EQ_INT(cfg.arch, SK_ARCH_GEMMA3);
	CHECK_EQ_INT(cfg.num_layers, 18);
	CHECK_EQ_INT(cfg.hidden_size, 640);
	CHECK_EQ_INT(cfg.num_heads, 4);
	CHECK_EQ_INT(cfg.num_kv_heads, 1);
	CHECK_EQ_INT(cfg.head_dim, 256);
	CHECK_EQ_INT(cfg.intermediate_size[17], 2048);
	CHECK_EQ_INT(cfg.vocab_size, 262144);
	CHECK_EQ_INT(cfg.sliding_window, 512);
	for (int i = 0; i < 18; i++)
		CHECK_EQ_INT(cfg.sliding[i], (i + 1) % 6 != 0);
	CHECK_NEAR(cfg.rope_theta_global, 1e6, 0);
	CHECK_NEAR(cfg.rope_theta_local, 1e4, 0);
	CHECK_NEAR(sk_config_attn_scale(&cfg), 1.0 / 16.0, 1e-7);
	CHECK_EQ_INT(cfg.norm_plus_one_stored, 1);
	CHECK_EQ_INT(cfg.bos_token_id, 2);
	CHECK_EQ_INT(cfg.eos_token_ids[0], 1);
	sk_gguf_close(g);
}

/* A hand-built GGUF v3 with metadata only (formats.md §5.1-5.2). */
typedef struct {
	unsigned char buf[8192];
	size_t len;
	uint64_t nkv;
} gbuf;

static void put(gbuf *b, const void *p, size_t n)
{
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}
static void put_u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_key(gbuf *b, const char *k, uint32_t type)
{
	put_u64(b, strlen(k));
	put(b, k, strlen(k));
	put_u32(b, type);
	b->nkv++;
}
static void kv_u32(gbuf *b, const char *k, uint32_t v) { put_key(b, k, 4), put_u32(b, v); }
static void kv_f32(gbuf *b, const char *k, float v) { put_key(b, k, 6), put(b, &v, 4); }
static void kv_str(gbuf *b, const char *k, const char *s)
{
	put_key(b, k, 8);
	put_u64(b, strlen(s));
	put(b, s, strlen(s));
}
static void kv_arr_f32(gbuf *b, const char *k, const float *v, uint64_t n)
{
	put_key(b, k, 9);
	put_u32(b, 6);
	put_u64(b, n);
	put(b, v, 4 * n);
}

/* Base: a valid 5-layer gemma3n header; the caller adds or replaces keys. */
static void gguf_base(gbuf *b, const char *arch, uint32_t layers)
{
	char k[96];
	memset(b, 0, sizeof *b);
	kv_str(b, "general.architecture", arch);
	snprintf(k, sizeof k, "%s.block_count", arch), kv_u32(b, k, layers);
	snprintf(k, sizeof k, "%s.embedding_length", arch), kv_u32(b, k, 64);
	snprintf(k, sizeof k, "%s.attention.head_count", arch), kv_u32(b, k, 4);
	snprintf(k, sizeof k, "%s.attention.head_count_kv", arch), kv_u32(b, k, 1);
	snprintf(k, sizeof k, "%s.attention.key_length", arch), kv_u32(b, k, 16);
	kv_u32(b, "tokenizer.ggml.eos_token_id", 1);
	/* a token list gives the vocabulary size when there is no token_embd */
	put_key(b, "tokenizer.ggml.tokens", 9);
	put_u32(b, 8);
	put_u64(b, 300);
	for (int i = 0; i < 300; i++)
		put_u64(b, 1), put(b, "x", 1);
}

static sk_gguf *gguf_finish(gbuf *b, unsigned char *out, size_t *len)
{
	size_t o = 0;
	memcpy(out, "GGUF", 4), o += 4;
	uint32_t v = 3;
	uint64_t nt = 0;
	memcpy(out + o, &v, 4), o += 4;
	memcpy(out + o, &nt, 8), o += 8;
	memcpy(out + o, &b->nkv, 8), o += 8;
	memcpy(out + o, b->buf, b->len), o += b->len;
	while (o % 32)
		out[o++] = 0;
	*len = o;
	return sk_gguf_open_mem(out, o, "mem.gguf");
}

static int gguf_config(gbuf *b, sk_config *c)
{
	static unsigned char raw[9000];
	size_t len;
	sk_gguf *g = gguf_finish(b, raw, &len);
	CHECK_MSG(g != NULL, "%s", sk_error());
	if (!g)
		return -2;
	int rc = sk_config_from_gguf(g, c);
	sk_gguf_close(g);
	return rc;
}

TEST(gguf_metadata_variants_and_errors)
{
	static gbuf b;
	/* scalar FFN, no pattern (default period 5), shared_kv as u32, sparsity scale with -inf */
	gguf_base(&b, "gemma3n", 10);
	kv_u32(&b, "gemma3n.feed_forward_length", 256);
	kv_u32(&b, "gemma3n.attention.shared_kv_layers", 3);
	float z[10] = { 1.6448536f, 1.6448536f, -INFINITY, -INFINITY, 0, 0, 0, 0, 0, 0 };
	kv_arr_f32(&b, "gemma3n.activation_sparsity_scale", z, 10);
	CHECK_EQ_INT(gguf_config(&b, &cfg), 0);
	CHECK_EQ_INT(cfg.num_kv_shared_layers, 3);
	CHECK_EQ_INT(cfg.intermediate_size[9], 256);
	CHECK_EQ_INT(cfg.sliding[4], 0);
	CHECK_EQ_INT(cfg.sliding[3], 1);
	CHECK_EQ_INT(cfg.vocab_size, 300);
	CHECK_NEAR(cfg.activation_sparsity[1], 0.95, 1e-6);
	CHECK_NEAR(cfg.activation_sparsity[2], 0.0, 0);
	CHECK_NEAR(cfg.rope_theta_local, 1e4, 0);

	gguf_base(&b, "llama", 10);
	CHECK_EQ_INT(gguf_config(&b, &cfg), -1);
	CHECK(strstr(sk_error(), "\"llama\" is not supported") != NULL);

	gguf_base(&b, "gemma3", 1000);
	kv_u32(&b, "gemma3.feed_forward_length", 256);
	CHECK_EQ_INT(gguf_config(&b, &cfg), -1);
	CHECK(strstr(sk_error(), "gemma3.block_count must be an integer") != NULL);

	gguf_base(&b, "gemma3", 6);
	CHECK_EQ_INT(gguf_config(&b, &cfg), -1);
	CHECK(strstr(sk_error(), "gemma3.feed_forward_length is missing") != NULL);

	gguf_base(&b, "gemma3n", 10);
	float ffn[3] = { 1, 2, 3 };
	kv_arr_f32(&b, "gemma3n.feed_forward_length", ffn, 3);
	CHECK_EQ_INT(gguf_config(&b, &cfg), -1);
	CHECK(strstr(sk_error(), "has 3 entries for 10 layers") != NULL);

	gguf_base(&b, "gemma3n", 10);
	kv_u32(&b, "gemma3n.feed_forward_length", 256);
	kv_f32(&b, "gemma3n.attention.shared_kv_layers", 2.5f);
	CHECK_EQ_INT(gguf_config(&b, &cfg), -1);
	CHECK(strstr(sk_error(), "whole number") != NULL);

	gguf_base(&b, "gemma3n", 10);
	kv_u32(&b, "gemma3n.feed_forward_length", 256);
	z[0] = INFINITY;
	kv_arr_f32(&b, "gemma3n.activation_sparsity_scale", z, 10);
	CHECK_EQ_INT(gguf_config(&b, &cfg), -1);
	CHECK(strstr(sk_error(), "activation_sparsity_scale is out of range") != NULL);

	gguf_base(&b, "gemma3", 6);
	kv_u32(&b, "gemma3.feed_forward_length", 256);
	kv_str(&b, "gemma3.rope.scaling.type", "linear");
	CHECK_EQ_INT(gguf_config(&b, &cfg), -1);
	CHECK(strstr(sk_error(), "rope.scaling.factor is missing") != NULL);
}

/* The arithmetic `bench train` sets its rate against: E4B at 512 with
 * checkpointing is the ~27 GFLOP a token of docs (projections 3.9 G
 * multiply-adds a pass, three passes; the head three times; attention as
 * computed); a hand count on a two-layer shape pins the formula. */
TEST(train_flops)
{
	sk_config c;
	CHECK_EQ_INT(sk_config_preset("e4b", &c), 0);
	double f = sk_config_train_flops(&c, 512, SK_TRAIN_CKPT_ALL), k = sk_config_train_flops(&c, 512, SK_TRAIN_CKPT_KEPT);
	printf("# E4B at 512: %.2f GFLOP a token computing every product again, %.2f with the kept outputs, %.2f "
	       "without checkpointing\n", f / 1e9, k / 1e9, sk_config_train_flops(&c, 512, SK_TRAIN_CKPT_NONE) / 1e9);
	CHECK(f > 26.5e9 && f < 28.5e9);
	CHECK(sk_config_train_flops(&c, 512, SK_TRAIN_CKPT_NONE) < k && k < f);
	CHECK(sk_config_train_flops(&c, 2048, SK_TRAIN_CKPT_ALL) > f);
	/* two Gemma 3 layers, H 8, 2 heads of 4 (qd 8), one KV head (kvd 4), MLP 16, vocabulary 10 */
	sk_config t;
	memset(&t, 0, sizeof t);
	t.arch = SK_ARCH_GEMMA3;
	t.num_layers = 2, t.hidden_size = 8, t.num_heads = 2, t.num_kv_heads = 1, t.head_dim = 4;
	t.intermediate_size[0] = t.intermediate_size[1] = 16;
	t.vocab_size = 10;
	/* a layer: q, o 2·8·8 = 128, k, v 2·8·4 = 64, MLP 3·8·16 = 384: 576 multiply-adds; attention at
	 * n 4: 4 · 8 · (2·3 − 2 + 5) = 288 a layer; head 3 · 10 · 8 = 240 */
	double want = 2.0 * (3 * 2 * 576 + 240 + 2 * 288);
	CHECK(fabs(sk_config_train_flops(&t, 4, SK_TRAIN_CKPT_ALL) - want) < 1e-9);
	/* with the kept outputs, again only q 64, k, v 64, gate and up 256 a layer, and no attention:
	 * 4 · 8 · (2 + 5) = 224 */
	want = 2.0 * (2 * 2 * 576 + 2 * 384 + 240 + 2 * 224);
	CHECK(fabs(sk_config_train_flops(&t, 4, SK_TRAIN_CKPT_KEPT) - want) < 1e-9);
}

int main(void)
{
	RUN(e4b_full_config);
	RUN(e2b_full_config);
	RUN(gemma3n_tiny_fixture);
	RUN(gemma3_tiny_fixture);
	RUN(old_spelling_gemma3n_text);
	RUN(old_spelling_gemma3_text);
	RUN(gemma3_multimodal_sparse_text_config);
	RUN(rope_parameters_flat_and_nested);
	RUN(minimal_config_takes_e4b_defaults);
	RUN(per_layer_lists);
	RUN(malformed_configs);
	RUN(gguf_tiny_gemma3n_matches_config_json);
	RUN(gguf_tiny_gemma3_matches_config_json);
	RUN(gguf_default_model);
	RUN(gguf_metadata_variants_and_errors);
	RUN(train_flops);
	TEST_EXIT();
}
