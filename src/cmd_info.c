/* `sokhan info --model PATH [--tensors]`: what a model is, from headers
 * only (tensor data is never touched, so it is quick on a 16 GB checkpoint):
 * architecture, the config that matters, parameter counts by class, stored
 * types, and memory estimates. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine/model/config.h"
#include "engine/format/dtype.h"
#include "engine/i18n.h"
#include "engine/model/model_source.h"
#include "engine/model/tensor_names.h"
#include "src/cli.h"
#include "src/commands.h"

/* NF4 with double quantization: 4-bit codes, one 8-bit absmax per 64 values,
 * one fp32 second-level absmax per 256 blocks (formats.md §1.5). */
#define SK_NF4_DQ_BITS (4.0 + 8.0 / 64.0 + 32.0 / (64.0 * 256.0))

static const sk_command_help info_help = {
	"info",
	"[--model PATH] [--tensors]",
	N_("Describe a model: architecture, configuration, parameter counts, stored types, memory."),
	N_("  --tensors           also list every tensor: name, type, shape, class"),
	SK_CO_MODEL | SK_CO_VERBOSITY,
};

enum { OPT_TENSORS = 2000 };

static int on_opt(void *ctx, int opt, const char *arg)
{
	(void)arg;
	if (opt == OPT_TENSORS) {
		*(int *)ctx = 1;
		return 0;
	}
	return SK_EXIT_USAGE;
}

/* 6866696688 → "6,866,696,688" */
static const char *fmt_count(char *buf, size_t cap, int64_t v)
{
	char digits[32];
	int n = snprintf(digits, sizeof digits, "%" PRId64, v < 0 ? -v : v);
	size_t o = 0;
	if (v < 0 && o + 1 < cap)
		buf[o++] = '-';
	for (int i = 0; i < n && o + 2 < cap; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *fmt_bytes(char *buf, size_t cap, double bytes)
{
	if (bytes >= 1024.0 * 1024.0 * 1024.0)
		snprintf(buf, cap, _("%.2f GiB"), bytes / (1024.0 * 1024.0 * 1024.0));
	else if (bytes >= 1024.0 * 1024.0)
		snprintf(buf, cap, _("%.1f MiB"), bytes / (1024.0 * 1024.0));
	else
		snprintf(buf, cap, _("%.1f KiB"), bytes / 1024.0);
	return buf;
}

static void fmt_shape(char *buf, size_t cap, const sk_tensor_view *v)
{
	size_t o = (size_t)snprintf(buf, cap, "[");
	for (int i = 0; i < v->ndim && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, i ? ", " : "", v->shape[i]);
	if (o < cap)
		snprintf(buf + o, cap - o, "]");
}

/* Layer list "4, 9, 14" (layers where sel[i] is set), shortened when long. */
static void layer_list(char *buf, size_t cap, const sk_config *c, int want_sliding)
{
	size_t o = 0;
	int shown = 0, total = 0;
	buf[0] = '\0';
	for (int i = 0; i < c->num_layers; i++) {
		if ((c->sliding[i] != 0) != want_sliding)
			continue;
		total++;
		if (shown < 12 && o < cap) {
			o += (size_t)snprintf(buf + o, cap - o, "%s%d", shown ? ", " : "", i);
			shown++;
		}
	}
	if (total > shown && o < cap)
		snprintf(buf + o, cap - o, ", ... (%d)", total);
	if (total == 0)
		snprintf(buf, cap, "%s", _("none"));
}

/* "every 5th" when the full layers follow the period rule, else "" */
static int full_period(const sk_config *c)
{
	for (int p = 2; p <= c->num_layers; p++) {
		int ok = 1;
		for (int i = 0; i < c->num_layers && ok; i++)
			ok = (c->sliding[i] != 0) == ((i + 1) % p != 0);
		if (ok)
			return p;
	}
	return 0;
}

static void print_ffn(const sk_config *c)
{
	int same = 1;
	for (int i = 1; i < c->num_layers; i++)
		same &= c->intermediate_size[i] == c->intermediate_size[0];
	char n[32];
	if (same) {
		printf("  %-30s %s\n", sk_cli_pad(_("FFN size:"), 30), fmt_count(n, sizeof n, c->intermediate_size[0]));
		return;
	}
	printf("  %-30s", sk_cli_pad(_("FFN size per layer:"), 30));
	for (int i = 0; i < c->num_layers; i++)
		printf("%s%d", i ? ", " : " ", c->intermediate_size[i]);
	printf("\n");
}

static const char *rope_desc(char *buf, size_t cap, float theta, sk_rope_scaling k, float f, const sk_config *c)
{
	char n[32];
	fmt_count(n, sizeof n, (int64_t)(theta + 0.5f));
	if (k == SK_ROPE_LINEAR)
		snprintf(buf, cap, _("%s (linear scaling x%g)"), n, (double)f);
	else if (k == SK_ROPE_OTHER)
		snprintf(buf, cap, _("%s (%s scaling x%g, not supported)"), n, c->rope_scaling_name, (double)f);
	else
		snprintf(buf, cap, "%s", n);
	return buf;
}

static void print_config(const sk_config *c)
{
	char a[64], b[64], list[256];
	printf("%s\n", _("Configuration:"));
	printf("  %-30s %s%s\n", sk_cli_pad(_("Architecture:"), 30), sk_arch_name(c->arch),
	       c->arch == SK_ARCH_GEMMA3N ? _(" (Gemma 3n text decoder)") : _(" (Gemma 3 text decoder)"));
	printf("  %-30s %d\n", sk_cli_pad(_("Layers:"), 30), c->num_layers);
	printf("  %-30s %d\n", sk_cli_pad(_("Hidden size:"), 30), c->hidden_size);
	printf("  %-30s %d / %d / %d\n", sk_cli_pad(_("Heads / KV heads / head dim:"), 30), c->num_heads, c->num_kv_heads, c->head_dim);
	printf("  %-30s %g\n", sk_cli_pad(_("Attention scale:"), 30), (double)sk_config_attn_scale(c));
	print_ffn(c);
	printf("  %-30s %s\n", sk_cli_pad(_("Vocabulary:"), 30), fmt_count(a, sizeof a, c->vocab_size));
	if (c->arch == SK_ARCH_GEMMA3N) {
		printf("  %-30s %s x %d\n", sk_cli_pad(_("Per-layer embeddings:"), 30), fmt_count(a, sizeof a, c->vocab_size_per_layer_input),
		       c->hidden_size_per_layer_input);
		printf(_("  %-30s %d streams, active %d, coefficient clip %g, correct scale %s\n"), sk_cli_pad(_("AltUp:"), 30),
		       c->altup_num_inputs, c->altup_active_idx, (double)c->altup_coef_clip,
		       c->altup_correct_scale ? _("yes") : _("no"));
		printf("  %-30s %d\n", sk_cli_pad(_("LAuReL rank:"), 30), c->laurel_rank);
	}
	printf("  %-30s %d\n", sk_cli_pad(_("Sliding window:"), 30), c->sliding_window);
	layer_list(list, sizeof list, c, 0);
	int p = full_period(c);
	if (p)
		printf(_("  %-30s %s (one layer in %d)\n"), sk_cli_pad(_("Full-attention layers:"), 30), list, p);
	else
		printf("  %-30s %s\n", sk_cli_pad(_("Full-attention layers:"), 30), list);
	printf("  %-30s %s\n", sk_cli_pad(_("RoPE base, global:"), 30),
	       rope_desc(a, sizeof a, c->rope_theta_global, c->rope_scaling_global, c->rope_factor_global, c));
	printf("  %-30s %s\n", sk_cli_pad(_("RoPE base, local:"), 30),
	       rope_desc(b, sizeof b, c->rope_theta_local, c->rope_scaling_local, c->rope_factor_local, c));
	if (c->arch == SK_ARCH_GEMMA3N) {
		int first = sk_config_first_kv_shared(c);
		if (c->num_kv_shared_layers > 0) {
			int s_src = -1, f_src = -1;
			for (int l = first; l < c->num_layers; l++) {
				int src = sk_config_kv_source_layer(c, l);
				if (c->sliding[l])
					s_src = src;
				else
					f_src = src;
			}
			printf(_("  %-30s %d (layers %d-%d; K/V from layer %d (sliding), %d (full))\n"), sk_cli_pad(_("KV-shared layers:"), 30),
			       c->num_kv_shared_layers, first, c->num_layers - 1, s_src, f_src);
		} else {
			printf("  %-30s 0\n", sk_cli_pad(_("KV-shared layers:"), 30));
		}
		size_t o = 0;
		int n = 0;
		list[0] = '\0';
		for (int l = 0; l < c->num_layers && o < sizeof list; l++)
			if (c->activation_sparsity[l] > 0.0f) {
				if (n < 12)
					o += (size_t)snprintf(list + o, sizeof list - o, "%s%d", n ? ", " : "", l);
				n++;
			}
		if (n == 0)
			printf("  %-30s %s\n", sk_cli_pad(_("Activation sparsity:"), 30), _("none"));
		else
			printf(_("  %-30s %d layers (%s%s), first p = %.2f\n"), sk_cli_pad(_("Activation sparsity:"), 30), n, list,
			       n > 12 ? ", ..." : "", (double)c->activation_sparsity[0]);
	}
	if (c->final_logit_softcap > 0.0f)
		printf("  %-30s %g\n", sk_cli_pad(_("Final logit softcap:"), 30), (double)c->final_logit_softcap);
	else
		printf("  %-30s %s\n", sk_cli_pad(_("Final logit softcap:"), 30), _("none"));
	if (c->attn_logit_softcap > 0.0f)
		printf("  %-30s %g\n", sk_cli_pad(_("Attention softcap:"), 30), (double)c->attn_logit_softcap);
	printf("  %-30s %g\n", sk_cli_pad(_("RMSNorm epsilon:"), 30), (double)c->rms_norm_eps);
	printf("  %-30s %s\n", sk_cli_pad(_("Max positions:"), 30), fmt_count(a, sizeof a, c->max_position_embeddings));
	size_t o = 0;
	list[0] = '\0';
	for (int i = 0; i < c->n_eos; i++)
		o += (size_t)snprintf(list + o, sizeof list - o, "%s%d", i ? ", " : "", c->eos_token_ids[i]);
	printf(_("  %-30s bos %d, eos %s, pad %d\n"), sk_cli_pad(_("Special token ids:"), 30), c->bos_token_id, c->n_eos ? list : "-",
	       c->pad_token_id);
	printf("  %-30s %s\n", sk_cli_pad(_("Tied embeddings:"), 30), c->tie_word_embeddings ? _("yes") : _("no"));
	if (c->torch_dtype[0])
		printf("  %-30s %s\n", sk_cli_pad(_("torch_dtype:"), 30), c->torch_dtype);
	if (c->norm_plus_one_stored)
		printf("  %-30s %s\n", sk_cli_pad(_("Norm weights:"), 30), _("stored as 1 + w (llama.cpp Gemma 3 convention)"));
}

static void print_report(void *ctx, const char *msg)
{
	int *n = ctx;
	if (*n < 20)
		fprintf(stderr, _("sokhan: warning: %s\n"), msg);
	(*n)++;
}

static int run_info(const char *path, int list_tensors)
{
	sk_model_source *s = sk_model_source_open(path);
	if (!s)
		return sk_cli_fail();
	char a[64], b[64];
	sk_source_kind kind = sk_model_source_kind(s);
	printf("%-32s %s\n", sk_cli_pad(_("Model:"), 32), sk_model_source_path(s));
	printf("%-32s %s", sk_cli_pad(_("Source:"), 32), sk_model_source_kind_name(kind));
	if (kind != SK_SRC_TOKENIZER_ONLY) {
		size_t nf = sk_model_source_nfiles(s);
		printf(ngettext(" (%zu file)", " (%zu files)", nf), nf);
	}
	printf("\n");
	const char *tok = sk_model_source_tokenizer_json(s);
	if (kind == SK_SRC_GGUF)
		printf("%-32s %s\n", sk_cli_pad(_("Tokenizer:"), 32), _("in the GGUF file"));
	else
		printf("%-32s %s\n", sk_cli_pad(_("Tokenizer:"), 32), tok ? tok : _("none (no tokenizer.json)"));
	const sk_config *c = sk_model_source_config(s);
	if (!c) {
		printf("%s\n", _("No weights and no config: only the tokenizer can be used."));
		sk_model_source_close(s);
		return SK_EXIT_OK;
	}
	printf("%-32s %s\n", sk_cli_pad(_("Config from:"), 32), sk_model_source_config_origin(s));
	if (c->inferred)
		fprintf(stderr, "%s", _("sokhan: warning: no config.json: sizes inferred from tensor shapes, attention "
		                        "pattern, RoPE and KV sharing assumed to be the transformers defaults\n"));
	printf("\n");
	print_config(c);

	size_t n = sk_model_source_tensor_count(s);
	sk_param_totals tot;
	memset(&tot, 0, sizeof tot);
	int64_t dt_count[SK_DT_COUNT] = { 0 }, dt_params[SK_DT_COUNT] = { 0 };
	uint64_t dt_bytes[SK_DT_COUNT] = { 0 };
	int64_t nf4_params = 0, bf16_kept = 0; /* decoder weights under the NF4 convention */
	for (size_t i = 0; i < n; i++) {
		const sk_tensor_view *v = sk_model_source_tensor(s, i);
		sk_tensor_id id = sk_model_source_tensor_id(s, i);
		sk_param_totals_add(&tot, id.cls, v);
		if ((int)v->dtype >= 0 && v->dtype < SK_DT_COUNT) {
			dt_count[v->dtype]++;
			dt_params[v->dtype] += sk_tensor_view_numel(v);
			dt_bytes[v->dtype] += v->nbytes;
		}
		int64_t numel = sk_tensor_view_numel(v);
		if (id.cls == SK_TC_COMPUTE && v->ndim >= 2 && numel % 64 == 0)
			nf4_params += numel;
		else if (id.cls == SK_TC_COMPUTE || id.cls == SK_TC_TOKEN_EMBD || id.cls == SK_TC_PLE)
			bf16_kept += numel;
	}

	printf("\n%s\n", _("Parameters:"));
	printf(_("  %-34s %zu\n"), sk_cli_pad(_("tensors in the file(s):"), 34), n);
	static const struct {
		sk_tensor_class cls;
		const char *label;
	} rows[] = {
		{ SK_TC_COMPUTE, N_("decoder compute:") },
		{ SK_TC_TOKEN_EMBD, N_("token embedding (tied LM head):") },
		{ SK_TC_PLE, N_("per-layer embeddings:") },
	};
	int64_t decoder = 0;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t k = tot.count[rows[i].cls];
		if (rows[i].cls == SK_TC_PLE && c->arch != SK_ARCH_GEMMA3N)
			continue;
		printf("  %-34s %15s  ", sk_cli_pad(_(rows[i].label), 34), fmt_count(a, sizeof a, tot.params[rows[i].cls]));
		printf(ngettext("(%zu tensor)\n", "(%zu tensors)\n", k), k);
		decoder += tot.params[rows[i].cls];
	}
	printf("  %-34s %15s\n", sk_cli_pad(_("text decoder total:"), 34), fmt_count(a, sizeof a, decoder));
	if (tot.count[SK_TC_UNUSED_KV])
		printf(_("  %-34s %15s  (%zu tensors; stored, never used, not counted above)\n"),
		       _("unused consumer k/v (KV-shared):"), fmt_count(a, sizeof a, tot.params[SK_TC_UNUSED_KV]),
		       tot.count[SK_TC_UNUSED_KV]);
	if (tot.count[SK_TC_LM_HEAD])
		printf(_("  %-34s %15s  (%zu tensors; copy of the tied embedding)\n"), sk_cli_pad(_("lm_head:"), 34),
		       fmt_count(a, sizeof a, tot.params[SK_TC_LM_HEAD]), tot.count[SK_TC_LM_HEAD]);
	printf("  %-34s %15s  ", sk_cli_pad(_("skipped vision/audio towers:"), 34), fmt_count(a, sizeof a, tot.params[SK_TC_SKIPPED]));
	printf(ngettext("(%zu tensor)\n", "(%zu tensors)\n", tot.count[SK_TC_SKIPPED]), tot.count[SK_TC_SKIPPED]);
	if (tot.count[SK_TC_UNKNOWN])
		printf(_("  %-34s %15s  (%zu tensors; not used)\n"), sk_cli_pad(_("unrecognised:"), 34),
		       fmt_count(a, sizeof a, tot.params[SK_TC_UNKNOWN]), tot.count[SK_TC_UNKNOWN]);

	printf("\n%s\n", _("Stored types:"));
	for (int t = 0; t < SK_DT_COUNT; t++)
		if (dt_count[t])
			printf(_("  %-8s %6" PRId64 " tensors %17s params %12s\n"), sk_dtype_name((sk_dtype)t), dt_count[t],
			       fmt_count(a, sizeof a, dt_params[t]), fmt_bytes(b, sizeof b, (double)dt_bytes[t]));

	printf("\n%s\n", _("Memory for the text decoder weights (unused k/v and towers not loaded):"));
	printf("  %-8s %s\n", "bf16", fmt_bytes(a, sizeof a, 2.0 * (double)decoder));
	double nf4 = (double)nf4_params * SK_NF4_DQ_BITS / 8.0 + 2.0 * (double)bf16_kept;
	printf("  %-8s %s\n", "NF4", fmt_bytes(a, sizeof a, nf4));
	printf(_("           (NF4: decoder matrices at %.3f bits/param = 4-bit codes + double-quantized absmax;\n"
	         "            embeddings and norms kept in bf16, as bitsandbytes QLoRA does)\n"),
	       SK_NF4_DQ_BITS);

	int nwarn = 0;
	sk_model_source_check(s, print_report, &nwarn);
	if (nwarn > 20)
		fprintf(stderr, _("sokhan: warning: ... and %d more problems\n"), nwarn - 20);
	if (nwarn)
		printf(_("\nShape check: %d problem(s) (see the warnings)\n"), nwarn);
	else
		printf("\n%s\n", _("Shape check: every tensor the architecture needs is present with the expected shape"));

	if (list_tensors) {
		printf("\n%s\n", _("Tensors:"));
		for (size_t i = 0; i < n; i++) {
			const sk_tensor_view *v = sk_model_source_tensor(s, i);
			sk_tensor_id id = sk_model_source_tensor_id(s, i);
			char shape[128];
			fmt_shape(shape, sizeof shape, v);
			printf("  %-64s %-6s %-22s %s\n", v->name, sk_dtype_name(v->dtype), shape, sk_tensor_class_name(id.cls));
		}
	}
	sk_model_source_close(s);
	return SK_EXIT_OK;
}

int sk_cmd_info(int argc, char **argv)
{
	static const struct option own[] = {
		{ "tensors", no_argument, NULL, OPT_TENSORS },
		{ NULL, 0, NULL, 0 },
	};
	int list_tensors = 0, first;
	sk_common_opts co;
	int rc = sk_cli_parse(argc, argv, &info_help, own, "", on_opt, &list_tensors, &co, &first);
	if (rc == 1)
		return SK_EXIT_OK;
	if (rc)
		return SK_EXIT_USAGE;
	if (first < argc)
		return sk_cli_usage(&info_help, _("unexpected argument '%s'"), argv[first]);
	if (sk_cli_model_or_default(&co))
		return SK_EXIT_ERROR;
	return run_info(co.model, list_tensors);
}
