# engine/backend/: the ops table every computation of the model goes
# through, device probing, and the CPU backend (fp32, OpenBLAS: the
# reference), forward and backward ops. Device code lives in kernels/.
libsokhan_a_SOURCES += \
	engine/backend/backend.h \
	engine/backend/backend_info.c engine/backend/backend_info.h \
	engine/backend/backend_cpu.h engine/backend/backend_cpu.c \
	engine/backend/backend_cpu_linear.c engine/backend/backend_cpu_avx2.c \
	engine/backend/backend_cpu_norm.c engine/backend/backend_cpu_attn.c engine/backend/backend_cpu_attn_ref.c engine/backend/backend_cpu_elem.c \
	engine/backend/backend_cpu_memory.c engine/backend/backend_cpu_exact.h engine/backend/backend_cpu_vmath.c \
	engine/backend/backend_cpu_linear_q8.c engine/backend/backend_cpu_q8.h engine/backend/backend_cpu_q8.c \
	engine/backend/backend_cpu_q8_kernels.h engine/backend/backend_cpu_q8_avx2.c \
	engine/backend/backend_cpu_q8_avxvnni.c engine/backend/backend_cpu_q8_avx512.c \
	engine/backend/backend_cpu_backward.h engine/backend/backend_cpu_backward.c \
	engine/backend/backend_cpu_backward_elem.c engine/backend/backend_cpu_backward_attn.c

if HAVE_CUDA
libsokhan_a_SOURCES += engine/backend/backend_cuda.h engine/backend/backend_cuda_internal.h \
	engine/backend/backend_cuda.c engine/backend/backend_cuda_train.c engine/backend/backend_cuda_optim.c engine/backend/backend_cuda_backward.c
else
libsokhan_a_SOURCES += engine/backend/backend_cuda.h engine/backend/backend_cuda_none.c
endif
EXTRA_DIST += engine/backend/backend_cuda_internal.h engine/backend/backend_cuda.c \
	engine/backend/backend_cuda_train.c engine/backend/backend_cuda_optim.c engine/backend/backend_cuda_backward.c engine/backend/backend_cuda_none.c
