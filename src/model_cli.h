/* What the model-running commands share: parsing a list of token ids,
 * resolving --device, loading the model (the default one without --model)
 * and its adapter, and the opening of logits and grad. */
#ifndef SK_MODEL_CLI_H
#define SK_MODEL_CLI_H

#include "engine/model/lora.h"
#include "engine/model/model.h"
#include "engine/text/tokenizer.h"
#include "src/cli.h"

/* Ids as decimal numbers separated by commas and/or spaces ("2,105, 7").
 * Returns 0, or 2 after a usage error naming the bad item (opt names the
 * option, e.g. "ids"). */
int sk_cli_parse_ids(const sk_command_help *h, const char *opt, const char *s, sk_ids *ids);

/* Checks every id against the model's vocabulary: 0, or 1 after an error
 * naming the first id out of range. */
int sk_cli_check_ids(const sk_model *m, const int32_t *ids, size_t n);

/* Resolves --device (auto: the GPU when one is usable, else the CPU with a
 * note saying why), loads
 * co->model (the default model without --model) with --quant/--threads
 * and, with co->adapter, loads the adapter and attaches it (*lora receives
 * it; free it after the model). NULL after printing the error; *rc is the
 * exit status then. */
sk_model *sk_cli_load_model(sk_common_opts *co, sk_lora **lora, int *rc);

/* Frees a model loaded by sk_cli_load_model and its adapter (either may be NULL). */
void sk_cli_free_model(sk_model *m, sk_lora *lora);

/* The opening that the commands running one token sequence (logits, grad)
 * share: --ids LIST and -o/--out FILE, both required, besides the command's
 * own options (own and on_opt with ctx, as for sk_cli_parse); the ids are
 * parsed, the model and adapter loaded and the ids checked against the
 * vocabulary. */
typedef struct {
	sk_common_opts co;
	const char *ids_arg, *out;
	sk_ids ids;
	sk_model *m;
	sk_lora *lora;
} sk_seq_cmd;

/* 0 when all is ready; -1 after --help (exit 0); else the exit status
 * after printing the error. Call sk_seq_cmd_close in every case. */
int sk_seq_cmd_open(sk_seq_cmd *c, int argc, char **argv, const sk_command_help *h, const struct option *own,
                    sk_cli_opt_fn on_opt, void *ctx, int need_adapter);
void sk_seq_cmd_close(sk_seq_cmd *c);

#endif
