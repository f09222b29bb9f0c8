# Training's core: the backward pass of the Gemma 3n / Gemma 3 decoder to
# the LoRA factors (forward with recorded activations, gradient
# checkpointing, KV-sharing accumulation), the CPU backward ops, the
# cross-entropy fused with the chunked LM head, trainable adapters, and
# `sokhan grad`.
libsokhan_a_SOURCES += \
	engine/train_grad.h engine/train_internal.h engine/lora_internal.h \
	engine/lora_train.c engine/loss.c engine/gemma_backward.c \
	engine/backend_cpu_backward.h engine/backend_cpu_backward.c \
	engine/backend_cpu_backward_elem.c engine/backend_cpu_backward_attn.c

sokhan_SOURCES += src/cmd_grad.c

check_PROGRAMS += tests/test_backward tests/test_grad
tests_test_backward_SOURCES = tests/test_backward.c tests/test.h
tests_test_grad_SOURCES = tests/test_grad.c tests/test.h
SHELL_TESTS += tests/test_grad.sh

EXTRA_DIST += tests/test_grad.sh \
	tests/fixtures/hf/tiny-gemma3n/ref/grad_all.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/grad_mlp_rslora.safetensors \
	tests/fixtures/hf/tiny-gemma3/ref/grad_all.safetensors
