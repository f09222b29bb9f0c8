# GGUF reader and dequantization to f32.
libsokhan_a_SOURCES += \
	engine/gguf.c engine/gguf.h \
	engine/quants.c engine/quants.h

check_PROGRAMS += tests/test_gguf tests/test_quants
tests_test_gguf_SOURCES = tests/test_gguf.c tests/test.h
tests_test_quants_SOURCES = tests/test_quants.c tests/test.h

EXTRA_DIST += \
	tests/fixtures/gguf/make_gguf_fixture.py \
	tests/fixtures/gguf/fixture.gguf \
	tests/fixtures/gguf/expected.bin \
	tests/fuzz/fuzz_gguf.c \
	tests/fuzz/seeds/fuzz_gguf

FUZZ_TARGETS += fuzz_gguf:tests/fuzz/fuzz_gguf.c:engine/gguf.c:engine/quants.c:engine/error.c:engine/files.c
