/* libFuzzer target: any byte string given as an optimizer checkpoint must
 * be rejected cleanly or load a state that steps without fault. The
 * parameter list matches the seeds: "a" (4096 elements, 8-bit state) and
 * "b" (10 elements, fp32 fallback). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/optim.h"
#include "engine/format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static float pa[4096], ga[4096], pb[10], gb[10];
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	for (int i = 0; i < 4096; i++)
		ga[i] = (float)(i % 7) - 3.0f;
	for (int i = 0; i < 10; i++)
		gb[i] = 0.5f * (float)i;
	sk_optim_param prm[2] = { { "a", pa, ga, 4096 }, { "b", pb, gb, 10 } };
	sk_optim_config cfg;
	sk_optim_config_default(&cfg);
	sk_optim *o = sk_optim_new(&cfg, prm, 2);
	sk_st_file *f = sk_st_open_mem(buf, size, "fuzz");
	if (o && f && sk_optim_load_st(o, f, "fuzz") == 0)
		sk_optim_step(o, 1e-3);
	sk_st_close(f);
	sk_optim_free(o);
	free(buf);
	return 0;
}
