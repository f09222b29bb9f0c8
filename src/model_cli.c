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

sk_model *sk_cli_load_model(sk_common_opts *co, sk_lora **lora, int *rc)
{
	*lora = NULL;
	if ((*rc = sk_cli_model_or_default(co)) != 0)
		return NULL;
	sk_backend_info bi;
	sk_backend_probe(&bi);
	sk_device dev;
	if (sk_backend_resolve(co->device, &bi, &dev) != 0) {
		*rc = sk_cli_fail();
		return NULL;
	}
	/* auto without a usable GPU: say why once (a build without CUDA has nothing to say) */
	if (co->device == SK_DEVICE_AUTO && dev == SK_DEVICE_CPU && bi.cuda_built)
		sk_cli_note(co, 0, _("sokhan: no usable GPU (%s); using the CPU"), bi.cuda_reason);
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

void sk_cli_free_model(sk_model *m, sk_lora *lora)
{
	if (m)
		sk_model_set_adapter(m, NULL);
	sk_model_free(m);
	sk_lora_free(lora);
}

/* The command's own options come after --ids and --out. */
enum { SEQ_OPT_IDS = 3900, SEQ_OPT_OUT };

typedef struct {
	sk_seq_cmd *c;
	sk_cli_opt_fn on_opt;
	void *ctx;
} seq_parse_ctx;

static int seq_on_opt(void *vctx, int opt, const char *arg)
{
	seq_parse_ctx *p = vctx;
	switch (opt) {
	case SEQ_OPT_IDS: p->c->ids_arg = arg; return 0;
	case 'o':
	case SEQ_OPT_OUT: p->c->out = arg; return 0;
	}
	return p->on_opt ? p->on_opt(p->ctx, opt, arg) : SK_EXIT_USAGE;
}

int sk_seq_cmd_open(sk_seq_cmd *c, int argc, char **argv, const sk_command_help *h, const struct option *own,
                    sk_cli_opt_fn on_opt, void *ctx, int need_adapter)
{
	memset(c, 0, sizeof *c);
	struct option opts[16] = {
		{ "ids", required_argument, NULL, SEQ_OPT_IDS },
		{ "out", required_argument, NULL, SEQ_OPT_OUT },
	};
	size_t n = 2;
	for (; own && own->name && n < 15; own++)
		opts[n++] = *own;
	seq_parse_ctx p = { c, on_opt, ctx };
	int first;
	int rc = sk_cli_parse(argc, argv, h, opts, "o:", seq_on_opt, &p, &c->co, &first);
	if (rc == 1)
		return -1;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(h, _("unexpected argument '%s'"), argv[first]);
	if (need_adapter && !c->co.adapter)
		return sk_cli_usage(h, "%s", _("--adapter DIR is required"));
	if (!c->ids_arg)
		return sk_cli_usage(h, "%s", _("--ids LIST is required"));
	if (!c->out)
		return sk_cli_usage(h, "%s", _("--out FILE is required"));
	if ((rc = sk_cli_parse_ids(h, "ids", c->ids_arg, &c->ids)) != 0)
		return rc;
	if (!(c->m = sk_cli_load_model(&c->co, &c->lora, &rc)))
		return rc;
	return sk_cli_check_ids(c->m, c->ids.v, c->ids.n);
}

void sk_seq_cmd_close(sk_seq_cmd *c)
{
	sk_cli_free_model(c->m, c->lora);
	sk_ids_free(&c->ids);
	memset(c, 0, sizeof *c);
}
