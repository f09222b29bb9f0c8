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
	"--model PATH [--adapter DIR] --ids ID,ID,... --out FILE.npy",
	N_("Write the logits of every position of a token sequence (float32 [T, vocab], .npy)."),
	N_("  --ids LIST          token ids, separated by commas or spaces\n"
	   "  -o, --out FILE      the .npy file to write"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_VERBOSITY,
};

enum { OPT_IDS = 3100, OPT_OUT };

typedef struct {
	const char *ids, *out;
} sk_logits_opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
	sk_logits_opts *o = ctx;
	switch (opt) {
	case OPT_IDS: o->ids = arg; return 0;
	case 'o':
	case OPT_OUT: o->out = arg; return 0;
	}
	return SK_EXIT_USAGE;
}

int sk_cmd_logits(int argc, char **argv)
{
	static const struct option own[] = {
		{ "ids", required_argument, NULL, OPT_IDS },
		{ "out", required_argument, NULL, OPT_OUT },
		{ NULL, 0, NULL, 0 },
	};
	sk_logits_opts o = { 0 };
	sk_common_opts co;
	int first;
	int rc = sk_cli_parse(argc, argv, &logits_help, own, "o:", on_opt, &o, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&logits_help, _("unexpected argument '%s'"), argv[first]);
	if (!co.model)
		return sk_cli_usage(&logits_help, "%s", _("--model PATH is required"));
	if (!o.ids)
		return sk_cli_usage(&logits_help, "%s", _("--ids LIST is required"));
	if (!o.out)
		return sk_cli_usage(&logits_help, "%s", _("--out FILE is required"));
	sk_ids ids = { 0 };
	rc = sk_cli_parse_ids(&logits_help, "ids", o.ids, &ids);
	if (rc) {
		sk_ids_free(&ids);
		return rc;
	}

	sk_lora *lora = NULL;
	sk_model *m = sk_cli_load_model(&logits_help, &co, &lora, &rc);
	sk_kv_cache *kv = NULL;
	float *logits = NULL;
	if (!m)
		goto out;
	rc = sk_cli_check_ids(m, ids.v, ids.n);
	if (rc)
		goto out;
	int32_t vocab = sk_model_vocab(m);
	int32_t max_pos = sk_model_config(m)->max_position_embeddings;
	if (ids.n > (size_t)max_pos) {
		rc = sk_cli_error(_("%zu tokens exceed the model's context of %d tokens"), ids.n, (int)max_pos);
		goto out;
	}
	kv = sk_kv_cache_new(m, 1, (int)ids.n);
	logits = malloc(ids.n * (size_t)vocab * sizeof *logits);
	if (!kv || !logits) {
		rc = kv ? sk_cli_error("%s", _("out of memory")) : sk_cli_fail();
		goto out;
	}
	sk_batch_item it = { .seq = 0, .ids = ids.v, .n = (int)ids.n, .adapter_on = lora != NULL, .all_logits = 1 };
	if (sk_model_forward(m, kv, &it, 1, logits) != 0) {
		rc = sk_cli_fail();
		goto out;
	}
	int64_t shape[2] = { (int64_t)ids.n, vocab };
	if (sk_npy_write_f32(o.out, logits, 2, shape) != 0) {
		rc = sk_cli_fail();
		goto out;
	}
	sk_cli_note(&co, 1, _("wrote %s: [%zu, %d] float32"), o.out, ids.n, (int)vocab);
	rc = SK_EXIT_OK;
out:
	free(logits);
	if (kv)
		sk_kv_cache_free(kv);
	if (m)
		sk_model_free(m);
	if (lora)
		sk_lora_free(lora);
	sk_ids_free(&ids);
	return rc;
}
