# The default model (Gemma 3 270M Q4_K_M) against Hugging Face transformers'
# reference logits; skips without SK_DEFAULT_MODEL. Measurements: docs/perf.md.
check_PROGRAMS += tests/test_gemma3_270m
tests_test_gemma3_270m_SOURCES = tests/test_gemma3_270m.c tests/test.h

EXTRA_DIST += \
	tests/fixtures/gemma3-270m/make_reference.py \
	tests/fixtures/gemma3-270m/reference.json \
	tests/fixtures/gemma3-270m/README.md \
	docs/perf.md
