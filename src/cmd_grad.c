/* `sokhan grad`: the loss and LoRA gradients of one token sequence (labels
 * are the ids shifted as for a causal LM, the first K ignored), written as
 * a safetensors file under the adapter file's own tensor names, for
 * comparing the engine's backward pass with PEFT autograd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/i18n.h"
#include "engine/format/safetensors.h"
#include "engine/train/train_grad.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/model_cli.h"

static const sk_command_help grad_help = {
	"grad",
	"[--model PATH] --adapter DIR --ids ID,ID,... [--mask-prefix K] --out FILE.safetensors",
	N_("Compute the loss and LoRA gradients of one token sequence (fp32 safetensors, the adapter's key names)."),
	N_("  --ids LIST          token ids, separated by commas or spaces\n"
	   "  --mask-prefix K     ignore the first K labels (default 0)\n"
	   "  -o, --out FILE      the .safetensors file to write"),
	SK_CO_MODEL | SK_CO_ADAPTER | SK_CO_DEVICE | SK_CO_QUANT | SK_CO_THREADS | SK_CO_VERBOSITY,
};

enum { OPT_MASK = 3300 };

static int on_opt(void *ctx, int opt, const char *arg)
{
	long long *k = ctx;
	if (opt == OPT_MASK)
		return sk_cli_parse_int(&grad_help, "mask-prefix", arg, 0, 1 << 30, k);
	return SK_EXIT_USAGE;
}

/* Two entries (A, B) per pair under the names the adapter file used. */
static int write_grads(const char *path, sk_lora *l)
{
	int n = sk_lora_pair_count(l);
	sk_st_entry *e = calloc((size_t)(n > 0 ? 2 * n : 1), sizeof *e);
	if (!e)
		return sk_cli_error("%s", _("out of memory"));
	for (int i = 0; i < n; i++) {
		int layer;
		sk_lora_module mod;
		sk_lora_pair *p = sk_lora_pair_at(l, i, &layer, &mod);
		for (int b = 0; b < 2; b++) {
			sk_st_entry *t = &e[2 * i + b];
			t->name = sk_lora_key_name(l, layer, mod, b);
			t->dtype = SK_DT_F32;
			t->ndim = 2;
			t->shape[0] = b ? p->out : p->r;
			t->shape[1] = b ? p->r : p->in;
			t->data = b ? sk_lora_grad_B(l, i) : sk_lora_grad_A(l, i);
			if (!t->name || !t->data) {
				free(e);
				return sk_cli_error("%s", _("the adapter has no tensor names or gradients"));
			}
		}
	}
	int rc = sk_st_write(path, e, (size_t)(2 * n)) != 0 ? sk_cli_fail() : SK_EXIT_OK;
	free(e);
	return rc;
}

int sk_cmd_grad(int argc, char **argv)
{
	static const struct option own[] = {
		{ "mask-prefix", required_argument, NULL, OPT_MASK },
		{ NULL, 0, NULL, 0 },
	};
	long long k = 0;
	sk_seq_cmd c;
	uint8_t *target = NULL;
	int rc = sk_seq_cmd_open(&c, argc, argv, &grad_help, own, on_opt, &k, 1);
	if (rc)
		goto out;
	sk_lora *lora = c.lora;
	size_t n = c.ids.n;
	if (n < 2 || (size_t)k >= n) {
		rc = sk_cli_error(_("no token to predict: %zu ids with the first %lld labels ignored"), n, k);
		goto out;
	}
	if (sk_lora_pair_count(lora) == 0) {
		rc = sk_cli_error("%s", _("the adapter has no LoRA pair the text decoder uses"));
		goto out;
	}
	if (sk_lora_make_trainable(lora) != 0) {
		rc = sk_cli_fail();
		goto out;
	}
	target = malloc(n);
	if (!target) {
		rc = sk_cli_error("%s", _("out of memory"));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		target[i] = i >= (size_t)k;
	int64_t nt = (int64_t)n - (k > 1 ? k : 1);
	/* the mean over the labels, as the Hugging Face causal-LM loss */
	sk_train_seq s = { c.ids.v, target, (int)n };
	sk_train_opts to = { 0.0f, 0, 1, (float)(1.0 / (double)nt), 1, 0, 0 };
	double loss = 0;
	if (sk_model_loss_grad(c.m, lora, &s, 1, &to, &loss, &nt) != 0) {
		rc = sk_cli_fail();
		goto out;
	}
	printf("loss = %.7f\n", loss / (double)nt);
	rc = write_grads(c.out, lora);
	if (rc == SK_EXIT_OK)
		sk_cli_note(&c.co, 1, _("wrote %s: %d LoRA gradient tensors"), c.out, 2 * sk_lora_pair_count(lora));
out:
	free(target);
	sk_seq_cmd_close(&c);
	return rc < 0 ? SK_EXIT_OK : rc;
}
