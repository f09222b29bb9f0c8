/* libFuzzer target: sk_config_from_json_mem on arbitrary bytes. Must never
 * crash, hang or allocate hugely; a parsed config must pass validation. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_config c;
	if (sk_config_from_json_mem((const char *)data, size, "fuzz.json", &c) == 0) {
		/* what was accepted must be self-consistent */
		if (sk_config_validate(&c, "fuzz.json") != 0 || c.num_layers < 1 || c.num_layers > SK_MAX_LAYERS)
			abort();
		for (int l = 0; l < c.num_layers; l++)
			if (sk_config_kv_source_layer(&c, l) < 0 || c.intermediate_size[l] < 1)
				abort();
	}
	return 0;
}
