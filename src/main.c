/* sokhan: entry point and command dispatch. */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend_info.h"
#include "engine/i18n.h"
#include "engine/paths.h"
#include "src/cli.h"
#include "src/commands.h"

typedef struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} sk_command;

static const sk_command sk_commands[] = {
	{ "tui", sk_cmd_tui, N_("the full-screen interface: chat, compare base and adapter, train, log") },
	{ "chat", sk_cmd_chat, N_("chat with a model in the terminal") },
	{ "generate", sk_cmd_generate, N_("generate text from a prompt or token ids") },
	{ "logits", sk_cmd_logits, N_("write the logits of token ids as a NumPy .npy file") },
	{ "train", sk_cmd_train, N_("fine-tune a LoRA adapter (QLoRA) on a JSONL dataset, with checkpoints and resume") },
	{ "eval", sk_cmd_eval, N_("mean loss and perplexity of a model or adapter over a JSONL dataset") },
	{ "merge", sk_cmd_merge, N_("merge a LoRA adapter into the model weights and write a new checkpoint") },
	{ "grad", sk_cmd_grad, N_("compute the loss and LoRA gradients of one token sequence") },
	{ "plot", sk_cmd_plot, N_("draw a training run's loss, learning rate and gradient norm as an SVG chart") },
	{ "info", sk_cmd_info, N_("describe a model: architecture, config, parameters, memory") },
	{ "tokenize", sk_cmd_tokenize, N_("print the token ids of a text") },
	{ "detokenize", sk_cmd_detokenize, N_("print the text of token ids") },
	{ "bench", sk_cmd_bench, N_("measure inference speed and memory against the device's floor") },
};
#define SK_NCOMMANDS (sizeof sk_commands / sizeof sk_commands[0])

static void sk_print_usage(FILE *fp)
{
	fprintf(fp, "%s", _("Usage: sokhan COMMAND [OPTIONS]\n"));
}

static void sk_print_help(void)
{
	sk_print_usage(stdout);
	printf("%s", _("Chat with, fine-tune (QLoRA) and compare Gemma 3n and Gemma 3 models in the terminal.\n"));
	printf("\n%s\n", _("Commands:"));
	for (size_t i = 0; i < SK_NCOMMANDS; i++)
		printf("  %-12s %s\n", sk_commands[i].name, _(sk_commands[i].summary));
	printf("\n%s\n", _("Options:"));
	printf("%s\n", _("  -h, --help     show this help and exit"));
	printf("%s\n", _("  -V, --version  show the version and the compute backends, and exit"));
	printf("\n%s\n", _("Run 'sokhan COMMAND --help' for the options of a command."));
}

static void sk_print_version(void)
{
	printf("sokhan %s\n", PACKAGE_VERSION);
	sk_backend_info bi;
	sk_backend_probe(&bi);
	printf("%s\n", _("CPU backend: available (fp32, OpenBLAS)"));
	if (!bi.cuda_built)
		printf(_("CUDA backend: not built (%s)\n"), bi.cuda_reason);
	else if (bi.cuda_devices <= 0)
		printf(_("CUDA backend: built, unavailable: %s\n"), bi.cuda_reason);
	else
		printf(_("CUDA backend: available: %s\n"), bi.cuda_desc);
	/* where the installed (or the build's) data files are found */
	char sample[4096];
	printf(_("Sample dataset: %s\n"),
	       sk_data_path(SK_SAMPLE_DATASET, sample, sizeof sample) == 0 ? sample : sk_error());
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	/* SOKHAN_LOCALEDIR lets an uninstalled build (and its tests) find its catalogs */
	const char *localedir = getenv("SOKHAN_LOCALEDIR");
	bindtextdomain(PACKAGE, localedir && *localedir ? localedir : LOCALEDIR);
	textdomain(PACKAGE);

	if (argc < 2) {
		/* no command: the full-screen interface */
		char *av[] = { (char *)"tui", NULL };
		return sk_cmd_tui(1, av);
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		sk_print_help();
		return SK_EXIT_OK;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		sk_print_version();
		return SK_EXIT_OK;
	}
	for (size_t i = 0; i < SK_NCOMMANDS; i++)
		if (!strcmp(cmd, sk_commands[i].name))
			return sk_commands[i].run(argc - 1, argv + 1);

	if (cmd[0] == '-')
		fprintf(stderr, _("sokhan: unknown option '%s'\n"), cmd);
	else
		fprintf(stderr, _("sokhan: unknown command '%s'\n"), cmd);
	sk_print_usage(stderr);
	fprintf(stderr, "%s", _("Try 'sokhan --help' for more information.\n"));
	return SK_EXIT_USAGE;
}
