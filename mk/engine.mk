# The inference engine: tensors and arenas, the thread pool, the backend ops
# table with its CPU implementation, the Gemma 3n / Gemma 3 model and its
# KV cache.
libsokhan_a_SOURCES += \
	engine/tensor.h engine/arena.c \
	engine/threadpool.c engine/threadpool.h \
	engine/backend.h engine/backend_cpu.h \
	engine/backend_cpu.c engine/backend_cpu_linear.c engine/backend_cpu_avx2.c \
	engine/backend_cpu_norm.c engine/backend_cpu_attn.c engine/backend_cpu_elem.c \
	engine/model.h engine/model_internal.h engine/model.c engine/gemma.c engine/kv_cache.c

check_PROGRAMS += tests/test_ops tests/test_forward
tests_test_ops_SOURCES = tests/test_ops.c tests/test.h
tests_test_forward_SOURCES = tests/test_forward.c tests/test.h

noinst_PROGRAMS += tests/bench_forward
tests_bench_forward_SOURCES = tests/bench_forward.c
