/* The text-decoder configurations of Gemma 3n E4B and E2B (config.json's
 * text_config as the released checkpoints ship it), for benchmarks on
 * models of the exact shape with random weights (sk_model_random). */
#include "engine/model/config.h"

#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"

static const char *const e4b_json =
	"{\"activation_sparsity_pattern\":[0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.0,0.0,0.0,0.0,0."
	"0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0],\"altup_active_idx"
	"\":0,\"altup_coef_clip\":120.0,\"altup_correct_scale\":true,\"altup_num_inputs\":4,\"attention_bias\":false,\""
	"attention_dropout\":0.0,\"bos_token_id\":2,\"eos_token_id\":1,\"final_logit_softcapping\":30.0,\"head_dim\":2"
	"56,\"hidden_activation\":\"gelu_pytorch_tanh\",\"hidden_size\":2048,\"hidden_size_per_layer_input\":256,\"ini"
	"tializer_range\":0.02,\"intermediate_size\":[16384,16384,16384,16384,16384,16384,16384,16384,16384,1638"
	"4,16384,16384,16384,16384,16384,16384,16384,16384,16384,16384,16384,16384,16384,16384,16384,16384,16"
	"384,16384,16384,16384,16384,16384,16384,16384,16384],\"laurel_rank\":64,\"layer_types\":[\"sliding_attent"
	"ion\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention"
	"\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\",\""
	"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sli"
	"ding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"slidin"
	"g_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sliding_a"
	"ttention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\",\"sliding_atte"
	"ntion\",\"sliding_attention\",\"sliding_attention\",\"full_attention\"],\"max_position_embeddings\":32768,\"mo"
	"del_type\":\"gemma3n_text\",\"num_attention_heads\":8,\"num_hidden_layers\":35,\"num_key_value_heads\":2,\"num"
	"_kv_shared_layers\":15,\"pad_token_id\":0,\"rms_norm_eps\":1e-06,\"rope_parameters\":{\"full_attention\":{\"ro"
	"pe_theta\":1000000.0,\"rope_type\":\"default\"},\"sliding_attention\":{\"rope_theta\":10000.0,\"rope_type\":\"de"
	"fault\"}},\"sliding_window\":512,\"tie_word_embeddings\":true,\"use_cache\":true,\"vocab_size\":262400,\"vocab"
	"_size_per_layer_input\":262144}"
;

static const char *const e2b_json =
	"{\"activation_sparsity_pattern\":[0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.95,0.0,0.0,0.0,0.0,0."
	"0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0],\"altup_active_idx\":0,\"altup_coef_clip"
	"\":120.0,\"altup_correct_scale\":true,\"altup_num_inputs\":4,\"attention_bias\":false,\"attention_dropout\":0"
	".0,\"bos_token_id\":2,\"eos_token_id\":1,\"final_logit_softcapping\":30.0,\"head_dim\":256,\"hidden_activatio"
	"n\":\"gelu_pytorch_tanh\",\"hidden_size\":2048,\"hidden_size_per_layer_input\":256,\"initializer_range\":0.02"
	",\"intermediate_size\":[8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,819"
	"2,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192,8192],\"laurel_rank\":64,\"layer_typ"
	"es\":[\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention"
	"\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\""
	"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sli"
	"ding_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"slidin"
	"g_attention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_a"
	"ttention\",\"sliding_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\"],\"max_positio"
	"n_embeddings\":32768,\"model_type\":\"gemma3n_text\",\"num_attention_heads\":8,\"num_hidden_layers\":30,\"num_"
	"key_value_heads\":2,\"num_kv_shared_layers\":10,\"pad_token_id\":0,\"rms_norm_eps\":1e-06,\"rope_parameters\""
	":{\"full_attention\":{\"rope_theta\":1000000.0,\"rope_type\":\"default\"},\"sliding_attention\":{\"rope_theta\":"
	"10000.0,\"rope_type\":\"default\"}},\"sliding_window\":512,\"tie_word_embeddings\":true,\"use_cache\":true,\"vo"
	"cab_size\":262400,\"vocab_size_per_layer_input\":262144}"
;

int sk_config_preset(const char *name, sk_config *out)
{
	const char *json = !strcmp(name, "e4b") ? e4b_json : !strcmp(name, "e2b") ? e2b_json : NULL;
	if (!json)
		return sk_fail(_("unknown model shape '%s' (e4b or e2b)"), name);
	return sk_config_from_json_mem(json, strlen(json), name, out);
}
