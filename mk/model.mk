# Model configuration (config.json / GGUF metadata), model paths of every
# kind, tensor-name tables, and `sokhan info`.
libsokhan_a_SOURCES += \
	engine/config.c engine/config.h \
	engine/config_gguf.c \
	engine/tensor_names.c engine/tensor_names.h \
	engine/model_source.c engine/model_source.h

sokhan_SOURCES += src/cmd_info.c

check_PROGRAMS += tests/test_config tests/test_model_source
tests_test_config_SOURCES = tests/test_config.c tests/test.h
tests_test_model_source_SOURCES = tests/test_model_source.c tests/test.h
SHELL_TESTS += tests/test_info.sh

EXTRA_DIST += tests/test_info.sh tests/fuzz/fuzz_config.c \
	tests/fixtures/model/make_model_fixtures.py \
	tests/fixtures/model/e4b-config/config.json \
	tests/fixtures/model/e2b-config/config.json \
	tests/fixtures/model/gemma3n-tiny/config.json \
	tests/fixtures/model/gemma3n-tiny/model.safetensors.index.json \
	tests/fixtures/model/gemma3n-tiny/model-00001-of-00002.safetensors \
	tests/fixtures/model/gemma3n-tiny/model-00002-of-00002.safetensors \
	tests/fixtures/model/gemma3n-tiny-nokv/config.json \
	tests/fixtures/model/gemma3n-tiny-nokv/model.safetensors.index.json \
	tests/fixtures/model/gemma3n-tiny-nokv/model-00001-of-00002.safetensors \
	tests/fixtures/model/gemma3n-tiny-nokv/model-00002-of-00002.safetensors \
	tests/fixtures/model/gemma3-tiny/config.json \
	tests/fixtures/model/gemma3-tiny/model.safetensors \
	tests/fixtures/model/gemma3n-tiny.gguf \
	tests/fixtures/model/gemma3-tiny.gguf \
	tests/fuzz/seeds/fuzz_config

FUZZ_TARGETS += fuzz_config:tests/fuzz/fuzz_config.c:engine/config.c:engine/error.c
