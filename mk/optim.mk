# Optimizers for LoRA training: AdamW8bit (bitsandbytes-exact states) and
# fp32 AdamW, gradient clipping, state checkpoints, learning-rate schedules.
libsokhan_a_SOURCES += \
	engine/optim.h engine/optim_internal.h \
	engine/optim.c engine/optim_state.c engine/optim_clip.c \
	engine/optim_adamw8bit.c engine/optim_adamw.c \
	engine/lr_schedule.h engine/lr_schedule.c

check_PROGRAMS += tests/test_optim
tests_test_optim_SOURCES = tests/test_optim.c tests/test.h

# the bitsandbytes fixture itself is listed in mk/lora_nf4.mk
EXTRA_DIST += \
	tests/fixtures/bnb/adamw8bit_steps.json \
	tests/fixtures/optim/make_lr_schedules.py \
	tests/fuzz/fuzz_optim_state.c \
	tests/fuzz/seeds/fuzz_optim_state/adamw8bit.safetensors \
	tests/fuzz/seeds/fuzz_optim_state/adamw.safetensors

FUZZ_TARGETS += fuzz_optim_state:tests/fuzz/fuzz_optim_state.c:engine/optim.c:engine/optim_state.c:engine/optim_adamw8bit.c:engine/optim_adamw.c:engine/optim_clip.c:engine/nf4.c:engine/dynamic_map.c:engine/safetensors_read.c:engine/safetensors_index.c:engine/safetensors_write.c:engine/safetensors_dtypes.c:engine/error.c:engine/dtype.c:engine/files.c:engine/tensor_view.c
