# src/: main, the command table and one cmd_*.c per command, the model
# options every command shares, the chat REPL and progress bars.
sokhan_SOURCES += \
	src/main.c src/cli.c src/cli.h src/commands.h \
	src/model_cli.c src/model_cli.h \
	src/progress.c src/progress.h \
	src/cmd_tui.c src/cmd_chat.c src/cmd_generate.c src/cmd_logits.c src/cmd_grad.c \
	src/cmd_train.c src/cmd_eval.c src/cmd_merge.c src/cmd_plot.c \
	src/cmd_info.c src/cmd_tokenize.c src/bench.h src/cmd_bench.c src/cmd_bench_train.c \
	src/chat_session.c src/chat_session.h \
	src/chat_repl.c src/chat_repl.h \
	src/chat_conv.c src/chat_conv.h \
	src/chat_stream.c src/chat_stream.h
