# engine/ itself: the engine thread (engine.h, the UI's one door) and the
# basics everything uses: errors, growable strings, tensors and arenas,
# paths, the thread pool.
libsokhan_a_SOURCES += \
	engine/engine.h engine/engine_internal.h \
	engine/engine.c engine/engine_gen.c engine/engine_train.c \
	engine/error.c engine/error.h \
	engine/i18n.h \
	engine/tensor.h engine/arena.c \
	engine/paths.c engine/paths.h \
	engine/strbuf.c engine/strbuf.h engine/splitmix.h engine/env_flag.h \
	engine/threadpool.c engine/threadpool.h
