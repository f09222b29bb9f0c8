# CUDA kernels behind kernels/kernels.h. Built with nvcc for sm_90a plus
# compute_80 PTX (JIT-compiled by the driver on other GPUs); a plain C stub
# stands in when CUDA is not configured.
if HAVE_CUDA
libsokhan_a_SOURCES += kernels/kernels.h kernels/context.cuh kernels/linear_internal.cuh kernels/launch.cuh kernels/rms_row.cuh kernels/attention_softmax.cuh kernels/cublaslt_loader.h kernels/cublaslt_loader.cu \
	kernels/device.cu kernels/convert.cu \
	kernels/context.cu kernels/gemm.cu kernels/gemm_reference.cu kernels/linear.cu kernels/linear_fold.cu kernels/linear_bwd.cu kernels/gated_mlp.cu kernels/elementwise.cu kernels/norm_fused.cu kernels/altup.cu kernels/attention.cu kernels/attention_tiled.cu kernels/attention_bwd_tiled.cu kernels/attention_gemm.cu kernels/attention_spans.cu kernels/sample.cu \
	kernels/backward.cu kernels/attention_bwd.cu kernels/xent.cu kernels/head_loss.cu kernels/lora_train.cu kernels/lora_grad_a.cu kernels/adamw8bit.cu kernels/weight_cache.cu
SUFFIXES = .cu
NVCC_GENCODE = -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=compute_80
.cu.o:
	$(AM_V_CC)$(NVCC) $(NVCCFLAGS) $(NVCC_GENCODE) -O2 -std=c++17 -I$(srcdir) \
	  -Xcompiler -Wall,-Wextra,-Werror -c -o $@ $<
# the suffix rule tracks no headers: a change to a shared struct must rebuild every kernel
sk_cuda_headers = kernels/kernels.h kernels/context.cuh kernels/linear_internal.cuh kernels/launch.cuh kernels/rms_row.cuh kernels/attention_softmax.cuh kernels/cublaslt_loader.h
kernels/cublaslt_loader.o kernels/device.o kernels/convert.o kernels/context.o kernels/gemm.o kernels/linear.o kernels/linear_fold.o kernels/linear_bwd.o kernels/gated_mlp.o \
kernels/elementwise.o kernels/norm_fused.o kernels/altup.o kernels/attention.o kernels/attention_tiled.o \
kernels/attention_bwd_tiled.o kernels/attention_gemm.o kernels/attention_spans.o kernels/sample.o kernels/backward.o kernels/attention_bwd.o \
kernels/xent.o kernels/head_loss.o kernels/lora_train.o kernels/lora_grad_a.o kernels/adamw8bit.o kernels/weight_cache.o: $(sk_cuda_headers)
else
libsokhan_a_SOURCES += kernels/kernels.h kernels/kernels_none.c
endif
EXTRA_DIST += kernels/kernels.h kernels/context.cuh kernels/linear_internal.cuh kernels/launch.cuh kernels/rms_row.cuh kernels/attention_softmax.cuh kernels/cublaslt_loader.h kernels/cublaslt_loader.cu kernels/device.cu kernels/convert.cu kernels/context.cu kernels/gemm.cu kernels/gemm_reference.cu \
	kernels/linear.cu kernels/linear_fold.cu kernels/linear_bwd.cu kernels/gated_mlp.cu kernels/elementwise.cu kernels/norm_fused.cu kernels/altup.cu kernels/attention.cu kernels/attention_tiled.cu kernels/attention_bwd_tiled.cu kernels/attention_gemm.cu kernels/attention_spans.cu kernels/sample.cu kernels/kernels_none.c \
	kernels/backward.cu kernels/attention_bwd.cu kernels/xent.cu kernels/head_loss.cu kernels/lora_train.cu kernels/lora_grad_a.cu kernels/adamw8bit.cu kernels/weight_cache.cu
