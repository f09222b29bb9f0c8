/* libFuzzer target: the .npy parser on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "engine/format/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_npy a;
	if (sk_npy_parse(data, size, "fuzz.npy", &a) == 0)
		sk_npy_free(&a);
	return 0;
}
