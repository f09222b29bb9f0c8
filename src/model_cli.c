/* Model loading and id lists for the commands that run a model. */
#include "src/model_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend_info.h"
#include "engine/i18n.h"

int sk_cli_parse_ids(const sk_command_help *h, const char *opt, const char *s, sk_ids *ids)
{
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',')
			p++;
		if (!*p)
			break;
		int n = (int)strcspn(p, " \t\n,");
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || errno || v < 0 || v > INT32_MAX || end != p + n || *p == '+' || *p == '-')
			return sk_cli_usage(h, _("--%s: '%.*s' is not a token id"), opt, n > 40 ? 40 : n, p);
		if (sk_ids_push(ids, (int32_t)v) != 0)
			return sk_cli_fail();
		p = end;
	}
	if (ids->n == 0)
		return sk_cli_usage(h, _("--%s: no token ids given"), opt);
	return 0;
}

int sk_cli_check_ids(const sk_model *m, const int32_t *ids, size_t n)
{
	int32_t vocab = sk_model_vocab(m);
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= vocab)
			return sk_cli_error(_("token id %d (position %zu) is out of range: the vocabulary has %d tokens"),
			                    (int)ids[i], i + 1, (int)vocab);
	return 0;
}

sk_model *sk_cli_load_model(const sk_command_help *h, const sk_common_opts *co, sk_lora **lora, int *rc)
{
	*lora = NULL;
	if (!co->model) {
		*rc = sk_cli_usage(h, "%s", _("--model PATH is required"));
		return NULL;
	}
	sk_backend_info bi;
	sk_backend_probe(&bi);
	sk_device dev;
	if (sk_backend_resolve(co->device, &bi, &dev) != 0) {
		*rc = sk_cli_fail();
		return NULL;
	}
	if (dev == SK_DEVICE_CUDA) {
		if (co->device == SK_DEVICE_CUDA) {
			*rc = sk_cli_error("%s", _("--device cuda: the CUDA backend does not run models yet"));
			return NULL;
		}
		/* auto: the GPU is there, but only the CPU backend runs models */
		sk_cli_note(co, 1, "%s", _("the CUDA backend does not run models yet; using the CPU"));
		dev = SK_DEVICE_CPU;
	}
	sk_model_opts mo = { .device = dev, .quant_nf4 = co->quant == SK_QUANT_NF4, .threads = co->threads };
	sk_model *m = sk_model_load(co->model, &mo);
	if (!m) {
		*rc = sk_cli_fail();
		return NULL;
	}
	if (co->adapter) {
		*lora = sk_lora_load(co->adapter, sk_model_config(m));
		if (!*lora) {
			*rc = sk_cli_fail();
			sk_model_free(m);
			return NULL;
		}
		if (sk_model_set_adapter(m, *lora) != 0) {
			*rc = sk_cli_fail();
			sk_lora_free(*lora);
			*lora = NULL;
			sk_model_free(m);
			return NULL;
		}
	}
	*rc = 0;
	return m;
}
