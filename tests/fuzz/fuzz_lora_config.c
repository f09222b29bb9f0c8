/* libFuzzer target: adapter_config.json parsing and the Python-regex to
 * POSIX translation of target_modules, then matching module names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/lora.h"

static const char *const names[] = {
	"model.language_model.layers.0.self_attn.q_proj",
	"model.layers.12.mlp.down_proj",
	"model.audio_tower.conformer.0.attention.attn.k_proj",
	"q_proj",
	"",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_lora_config c;
	if (sk_lora_config_parse((const char *)data, size, "fuzz", &c) == 0) {
		for (size_t i = 0; i < sizeof names / sizeof *names; i++)
			(void)sk_lora_config_targets(&c, names[i]);
		sk_lora_config_free(&c);
	}
	/* the raw bytes as a regular expression */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	free(sk_lora_regex_to_posix(s, "fuzz"));
	free(s);
	return 0;
}
