/* `sokhan logits`: the logits of every position of one token sequence (after
 * the final softcap) as a float32 [T, vocab] .npy file, for comparing the
 * engine with a reference implementation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "engine/format/npy.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"

static const sk_command_help logits_help = {
	"logits",
	"[--model PATH] [--adapter DIR] --ids ID,ID,... --out FILE.npy",
	N_("Write the logits of every position of a token sequence (float32 [T, vocab], .npy)."),
	N_("  --ids LIST          token ids, separated by commas or spaces\n"
	   "  -o, --out FILE      the .npy file to write"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_VERBOSITY,
};

int sk_cmd_logits(int argc, char **argv)
{
	sk_seq_cmd c;
	int rc = sk_seq_cmd_open(&c, argc, argv, &logits_help, NULL, NULL, NULL, 0);
	sk_kv_cache *kv = NULL;
	float *logits = NULL;
	if (rc)
		goto out;
	size_t n = c.ids.n;
	int32_t vocab = sk_model_vocab(c.m);
	int32_t max_pos = sk_model_config(c.m)->max_position_embeddings;
	if (n > (size_t)max_pos) {
		rc = sk_cli_error(_("%zu tokens exceed the model's context of %d tokens"), n, (int)max_pos);
		goto out;
	}
	kv = sk_kv_cache_new(c.m, 1, (int)n);
	logits = malloc(n * (size_t)vocab * sizeof *logits);
	if (!kv || !logits) {
		rc = kv ? sk_cli_error("%s", _("out of memory")) : sk_cli_fail();
		goto out;
	}
	sk_batch_item it = { .seq = 0, .ids = c.ids.v, .n = (int)n, .adapter_on = c.lora != NULL, .all_logits = 1 };
	if (sk_model_forward(c.m, kv, &it, 1, logits) != 0) {
		rc = sk_cli_fail();
		goto out;
	}
	int64_t shape[2] = { (int64_t)n, vocab };
	if (sk_npy_write_f32(c.out, logits, 2, shape) != 0) {
		rc = sk_cli_fail();
		goto out;
	}
	sk_cli_note(&c.co, 1, _("wrote %s: [%zu, %d] float32"), c.out, n, (int)vocab);
out:
	free(logits);
	if (kv)
		sk_kv_cache_free(kv);
	sk_seq_cmd_close(&c);
	return rc < 0 ? SK_EXIT_OK : rc;
}
