/* NF4 4-bit weights with optional double quantization, bit-exact with
 * bitsandbytes quantize_4bit / dequantize_4bit (formats.md §1): blocks of
 * 64 values, one absmax each; with double quantization the absmax array is
 * itself quantized to 8 bits in blocks of 256 with the signed dynamic map. */
#ifndef SK_NF4_H
#define SK_NF4_H

#include <stdint.h>

#define SK_NF4_BLOCK 64
#define SK_NF4_NESTED_BLOCK 256

typedef struct {
	int64_t n;               /* elements */
	uint8_t *packed;         /* (n + 1) / 2 bytes: even element in the high nibble */
	int double_quant;
	float *absmax;           /* [nblocks] when !double_quant */
	uint8_t *absmax_q;       /* [nblocks] codes into the signed dynamic map, when double_quant */
	float *nested_absmax;    /* [ceil(nblocks / 256)] */
	float nested_offset;     /* mean of the first-level absmax */
} sk_nf4_tensor;

extern const float sk_nf4_table[16];
/* The signed 8-bit dynamic map (formats.md Appendix A.1). */
extern const float sk_dynamic_map_signed[256];
extern const float sk_dynamic_map_unsigned[256];

/* Quantizes n floats (bf16 weights are converted to f32 first, exactly).
 * Allocates the arrays of out. Returns 0 or -1 (out of memory). */
int sk_nf4_quantize(const float *x, int64_t n, int double_quant, sk_nf4_tensor *out);
/* The same, the blocks shared out over pool's threads (NULL: the caller's
 * alone); the result is identical. */
struct sk_threadpool;
int sk_nf4_quantize_pool(const float *x, int64_t n, int double_quant, sk_nf4_tensor *out,
                         struct sk_threadpool *pool);
void sk_nf4_free(sk_nf4_tensor *t);
/* Dequantizes elements [start, start + count) to f32 (start a multiple of 64). */
void sk_nf4_dequantize(const sk_nf4_tensor *t, int64_t start, int64_t count, float *out);
/* The first-level absmax of block b (double-dequantized when needed). */
float sk_nf4_block_absmax(const sk_nf4_tensor *t, int64_t b);

/* Double quantization with a given offset instead of the computed mean (the
 * reference offset comes from a GPU reduction whose order may differ by an
 * ulp on large tensors; tests use this to check everything else exactly). */
int sk_nf4_quantize_offset(const float *x, int64_t n, float offset, sk_nf4_tensor *out);
/* The offset of double quantization: float32 mean of absmax, summed in the
 * order of a 32-thread x 4-lane GPU reduction and multiplied by float32(1/n). */
float sk_nf4_absmax_mean(const float *absmax, int64_t n);

/* Builds a dynamic map by the construction of formats.md §2.1 (as PyTorch
 * >= 2 evaluates it); equals sk_dynamic_map_signed / _unsigned. */
void sk_dynamic_map_build(int is_signed, float out[256]);

/* Generic 8-bit blockwise quantizer (formats.md §1.6) with a sorted
 * 256-entry code table: the code of one scaled value (binary search, then
 * the midpoint test; ties resolve as bitsandbytes' kernel does) ... */
uint8_t sk_blockwise8_code(const float code[256], float y);
/* ... and of n values in blocks of blocksize: q[n], absmax[ceil(n / blocksize)]. */
void sk_blockwise8_quantize(const float *x, int64_t n, int64_t blocksize, const float code[256],
			    uint8_t *q, float *absmax);
void sk_blockwise8_dequantize(const uint8_t *q, const float *absmax, int64_t n, int64_t blocksize,
			      const float code[256], float *out);

#endif
