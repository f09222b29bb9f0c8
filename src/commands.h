/* The subcommands. Each takes argv with argv[0] = the command name and
 * returns the process exit status. */
#ifndef SK_COMMANDS_H
#define SK_COMMANDS_H

int sk_cmd_tui(int argc, char **argv);
int sk_cmd_chat(int argc, char **argv);
int sk_cmd_generate(int argc, char **argv);
int sk_cmd_logits(int argc, char **argv);
int sk_cmd_train(int argc, char **argv);
int sk_cmd_eval(int argc, char **argv);
int sk_cmd_merge(int argc, char **argv);
int sk_cmd_grad(int argc, char **argv);
int sk_cmd_plot(int argc, char **argv);
int sk_cmd_info(int argc, char **argv);
int sk_cmd_tokenize(int argc, char **argv);
int sk_cmd_detokenize(int argc, char **argv);
int sk_cmd_bench(int argc, char **argv);
/* `sokhan bench train` (cmd_bench_train.c). */
int sk_cmd_bench_train(int argc, char **argv);

#endif
