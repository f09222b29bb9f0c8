/* Fuzzes one dataset row: JSON parsing, the three formats, field and role
 * checks and the chat template's validation (engine/train/dataset_row.c). The
 * whole input is one line. */
#include <stdint.h>
#include <string.h>

#include "engine/train/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_dataset_row row;
	if (sk_dataset_row_parse((const char *)data, size, &row) == 0) {
		/* Touch what a caller reads, so bad pointers show up. */
		size_t total = row.text ? row.text_len : 0;
		for (size_t i = 0; i < row.nmsgs; i++) total += strlen(row.msgs[i].content) + (size_t)row.msgs[i].role;
		(void)total;
		sk_dataset_row_free(&row);
	}
	return 0;
}
