# NF4 weights with double quantization (bitsandbytes-exact), the 8-bit
# dynamic maps, and PEFT LoRA adapters for inference.
libsokhan_a_SOURCES += \
	engine/nf4.c engine/nf4.h \
	engine/dynamic_map.c \
	engine/lora.c engine/lora.h \
	engine/lora_config.c

check_PROGRAMS += tests/test_nf4 tests/test_lora
tests_test_nf4_SOURCES = tests/test_nf4.c tests/test.h
tests_test_lora_SOURCES = tests/test_lora.c tests/test.h

EXTRA_DIST += \
	tests/fixtures/make_fixtures.py \
	tests/fixtures/bnb/nf4_cases.safetensors \
	tests/fixtures/bnb/adamw8bit_steps.safetensors \
	tests/fixtures/bnb/versions.json \
	tests/fixtures/hf/tiny-gemma3n/config.json \
	tests/fixtures/hf/tiny-gemma3/config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all_mm/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_all_mm/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora_mm/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3n/ref/adapter_mlp_rslora_mm/adapter_model.safetensors \
	tests/fixtures/hf/tiny-gemma3/ref/adapter_all/adapter_config.json \
	tests/fixtures/hf/tiny-gemma3/ref/adapter_all/adapter_model.safetensors \
	tests/fuzz/fuzz_lora_config.c \
	tests/fuzz/seeds/fuzz_lora_config/list.json \
	tests/fuzz/seeds/fuzz_lora_config/regex.json \
	tests/fuzz/seeds/fuzz_lora_config/e4b.json \
	tests/fuzz/seeds/fuzz_lora_config/raw_regex.txt

FUZZ_TARGETS += fuzz_lora_config:tests/fuzz/fuzz_lora_config.c:engine/lora_config.c:engine/error.c
