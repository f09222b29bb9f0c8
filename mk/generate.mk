# Sampling and batched generation, .npy files; the logits and generate
# commands.
libsokhan_a_SOURCES += \
	engine/sampler.c engine/generate.c engine/generate.h \
	engine/npy.c engine/npy.h

sokhan_SOURCES += src/cmd_logits.c src/cmd_generate.c src/model_cli.c src/model_cli.h

check_PROGRAMS += tests/test_sampler tests/test_npy tests/test_generate_mock tests/test_generate
tests_test_sampler_SOURCES = tests/test_sampler.c tests/test.h
tests_test_npy_SOURCES = tests/test_npy.c tests/test.h
tests_test_generate_mock_SOURCES = tests/test_generate_mock.c tests/test.h
tests_test_generate_SOURCES = tests/test_generate.c tests/test.h
SHELL_TESTS += tests/test_generate.sh

EXTRA_DIST += \
	tests/test_generate.sh \
	tests/fixtures/npy/make_npy.py \
	tests/fixtures/npy/f32_2x3.npy \
	tests/fixtures/npy/i32_5.npy \
	tests/fixtures/npy/f32_scalar.npy \
	tests/fixtures/npy/f32_2x0x4.npy \
	tests/fixtures/npy/f32_3d.npy \
	tests/fixtures/npy/f32_v2.npy \
	tests/fixtures/npy/f64_2.npy \
	tests/fixtures/npy/f32_be.npy \
	tests/fixtures/npy/f32_fortran.npy \
	tests/fuzz/fuzz_npy.c \
	tests/fuzz/seeds/fuzz_npy

FUZZ_TARGETS += fuzz_npy:tests/fuzz/fuzz_npy.c:engine/npy.c:engine/files.c:engine/error.c
