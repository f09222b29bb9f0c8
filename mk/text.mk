# engine/text/: the Gemma tokenizer (tokenizer.json or GGUF vocabulary, BPE,
# binary cache, decoding, streaming detokenizer) and the chat template.
libsokhan_a_SOURCES += \
	engine/text/tokenizer.c engine/text/tokenizer.h engine/text/tokenizer_model.h \
	engine/text/tokenizer_decode.c engine/text/detok_stream.c \
	engine/text/tokenizer_json.c engine/text/tokenizer_gguf.c \
	engine/text/tokenizer_cache.c engine/text/tokenizer_open.c \
	engine/text/chat_template.c engine/text/chat_template.h engine/text/chat_template_ids.c
