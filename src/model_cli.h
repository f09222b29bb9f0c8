/* What the model-running commands (logits, generate) share: parsing a list
 * of token ids, resolving --device, loading the model and its adapter. */
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

/* Resolves --device (only the CPU backend runs models so far), loads
 * co->model with --quant/--threads and, with co->adapter, loads the adapter
 * and attaches it (*lora receives it; free it after the model). NULL after
 * printing the error; *rc is the exit status then. */
sk_model *sk_cli_load_model(const sk_command_help *h, const sk_common_opts *co, sk_lora **lora, int *rc);

#endif
