# Training files: PEFT adapter writer, atomic directories, checkpoints
# (save, resume discovery, retention), the metrics log, the SVG chart and
# `sokhan plot`.
libsokhan_a_SOURCES += \
	engine/atomic_dir.c engine/atomic_dir.h \
	engine/adapter_write.c engine/adapter_write.h \
	engine/checkpoint.c engine/checkpoint.h \
	engine/metrics.c engine/metrics.h \
	engine/svg_plot.c engine/svg_plot.h

sokhan_SOURCES += src/cmd_plot.c

check_PROGRAMS += tests/test_checkpoint
tests_test_checkpoint_SOURCES = tests/test_checkpoint.c tests/test.h
SHELL_TESTS += tests/test_plot.sh

EXTRA_DIST += \
	tests/test_plot.sh \
	tests/fixtures/check_peft_adapter.py \
	tests/fixtures/train/make_metrics.py \
	tests/fixtures/train/metrics.jsonl

EXTRA_DIST += \
	tests/fuzz/fuzz_trainer_state.c \
	tests/fuzz/seeds/fuzz_trainer_state/state.json \
	tests/fuzz/seeds/fuzz_trainer_state/metrics.jsonl
FUZZ_TARGETS += fuzz_trainer_state:tests/fuzz/fuzz_trainer_state.c:engine/checkpoint.c:engine/metrics.c:engine/atomic_dir.c:engine/adapter_write.c:engine/safetensors_write.c:engine/safetensors_dtypes.c:engine/safetensors_read.c:engine/lora.c:engine/lora_config.c:engine/config.c:engine/dtype.c:engine/tensor_view.c:engine/files.c:engine/error.c
