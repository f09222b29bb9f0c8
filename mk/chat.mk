# Chat: the Gemma chat template (text, token ids, per-token role labels).
libsokhan_a_SOURCES += \
	engine/chat_template.c engine/chat_template.h engine/chat_template_ids.c

check_PROGRAMS += tests/test_chat_template
tests_test_chat_template_SOURCES = tests/test_chat_template.c tests/test.h

EXTRA_DIST += \
	tests/fixtures/chat/conversations.jsonl \
	tests/fixtures/chat/reference.jsonl \
	tests/fixtures/chat/make_reference.py \
	tests/fuzz/fuzz_chat_template.c \
	tests/fuzz/seeds/fuzz_chat_template/user_assistant \
	tests/fuzz/seeds/fuzz_chat_template/system_first

FUZZ_TARGETS += fuzz_chat_template:tests/fuzz/fuzz_chat_template.c:engine/chat_template.c:engine/error.c
