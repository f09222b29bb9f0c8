# engine/model/: configuration, model paths and tensor names, loading, the
# Gemma 3n / Gemma 3 forward pass (the one model definition), KV cache, LoRA
# adapters for inference, sampling and batched generation.
libsokhan_a_SOURCES += \
	engine/model/config.c engine/model/config.h engine/model/config_flops.c engine/model/config_gguf.c engine/model/config_presets.c \
	engine/model/tensor_names.c engine/model/tensor_names.h \
	engine/model/model_source.c engine/model/model_source.h \
	engine/model/model.h engine/model/model_internal.h engine/model/model.c \
	engine/model/gemma_forward.h engine/model/gemma.c engine/model/model_forward.c engine/model/model_random.c engine/model/kv_cache.c \
	engine/model/lora.c engine/model/lora.h engine/model/lora_internal.h engine/model/lora_config.c \
	engine/model/sampler.c engine/model/generate.c engine/model/generate.h
