# Tokenizer: tokenizer.json / GGUF vocabulary, BPE encode, decode, cache;
# the tokenize and detokenize commands.
libsokhan_a_SOURCES += \
	engine/tokenizer.c engine/tokenizer.h engine/tokenizer_model.h \
	engine/tokenizer_decode.c \
	engine/detok_stream.c \
	engine/tokenizer_json.c \
	engine/tokenizer_gguf.c \
	engine/tokenizer_cache.c \
	engine/tokenizer_open.c

sokhan_SOURCES += src/cmd_tokenize.c

check_PROGRAMS += tests/test_tokenizer
tests_test_tokenizer_SOURCES = tests/test_tokenizer.c tests/test.h
SHELL_TESTS += tests/test_tokenize_cli.sh

# Built with `make check` but not run as a test: ./tests/bench_tokenizer
noinst_PROGRAMS = tests/bench_tokenizer
tests_bench_tokenizer_SOURCES = tests/bench_tokenizer.c

EXTRA_DIST += \
	tests/fixtures/tokenizer/make_corpus.py \
	tests/fixtures/tokenizer/make_reference.py \
	tests/fixtures/tokenizer/corpus.jsonl \
	tests/fixtures/tokenizer/reference.jsonl \
	tests/fixtures/tokenizer/check_gguf_merges.py \
	tests/test_tokenize_cli.sh \
	tests/fuzz/fuzz_tokenizer_json.c \
	tests/fuzz/seeds/fuzz_tokenizer_json

FUZZ_TARGETS += fuzz_tokenizer_json:tests/fuzz/fuzz_tokenizer_json.c:engine/tokenizer.c:engine/tokenizer_decode.c:engine/detok_stream.c:engine/tokenizer_json.c:engine/error.c
