# Chat REPL: `sokhan chat` (GNU readline, streaming answers) and the pure
# bidi layout functions it shares with the TUI (ui/bidi.c, ICU).
libsokhan_ui_a_SOURCES += ui/bidi.c ui/bidi.h

sokhan_SOURCES += \
	src/cmd_chat.c \
	src/chat_session.c src/chat_session.h \
	src/chat_repl.c src/chat_repl.h \
	src/chat_conv.c src/chat_conv.h \
	src/chat_stream.c src/chat_stream.h

check_PROGRAMS += tests/test_bidi tests/test_chat_stream
tests_test_bidi_SOURCES = tests/test_bidi.c tests/test.h
tests_test_chat_stream_SOURCES = tests/test_chat_stream.c tests/test.h src/chat_stream.c src/chat_stream.h
SHELL_TESTS += tests/test_chat.sh

EXTRA_DIST += \
	tests/test_chat.sh \
	tests/fixtures/make_tiny_tokenizer.py \
	tests/fixtures/hf/tiny-gemma3n/tokenizer.json \
	tests/fixtures/hf/tiny-gemma3n/tokenizer_config.json \
	tests/fixtures/hf/tiny-gemma3/tokenizer.json \
	tests/fixtures/hf/tiny-gemma3/tokenizer_config.json
