# safetensors: reader with every check of formats.md §4.3, sharded
# checkpoints (§4.5), and the writer (§4.4).
libsokhan_a_SOURCES += \
	engine/safetensors.h \
	engine/safetensors_dtypes.c engine/safetensors_dtypes.h \
	engine/safetensors_read.c \
	engine/safetensors_index.c \
	engine/safetensors_write.c

check_PROGRAMS += tests/test_safetensors
tests_test_safetensors_SOURCES = tests/test_safetensors.c tests/test.h

EXTRA_DIST += \
	tests/fixtures/safetensors/make_fixtures.py \
	tests/fixtures/safetensors/reference.safetensors \
	tests/fixtures/safetensors/writer_expected.safetensors \
	tests/fuzz/fuzz_safetensors.c \
	tests/fuzz/seeds/fuzz_safetensors/reference.safetensors \
	tests/fuzz/seeds/fuzz_safetensors/writer.safetensors \
	tests/fuzz/seeds/fuzz_safetensors/small.safetensors \
	tests/fuzz/seeds/fuzz_safetensors/empty_header.safetensors

FUZZ_TARGETS += fuzz_safetensors:tests/fuzz/fuzz_safetensors.c:engine/safetensors_read.c:engine/safetensors_index.c:engine/safetensors_write.c:engine/safetensors_dtypes.c:engine/error.c:engine/dtype.c:engine/files.c
