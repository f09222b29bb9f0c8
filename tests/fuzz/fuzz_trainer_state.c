/* trainer_state.json parsing (checkpoint resume) on arbitrary bytes; each
 * input is also cut at a '\n' to exercise the metrics line reader through
 * a file written here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/train/checkpoint.h"
#include "engine/error.h"
#include "engine/train/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_trainer_state st;
	if (sk_checkpoint_parse_state((const char *)data, size, "fuzz", &st) == 0)
		sk_trainer_state_free(&st);
	sk_error_clear();

	static char path[64];
	if (!path[0])
		snprintf(path, sizeof path, "/tmp/fuzz_metrics.%d.jsonl", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	sk_metrics_series s;
	if (sk_metrics_read(path, &s) == 0)
		sk_metrics_series_free(&s);
	sk_error_clear();
	return 0;
}
