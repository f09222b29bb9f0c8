/* The arithmetic of a training token: the floor `sokhan bench train` sets
 * its rate against (docs/gpu-notes: about 27 GFLOP a token for E4B at 512
 * with checkpointing, ~29,000 tokens/s at 785 TFLOP/s of bf16). */
#include "engine/model/config.h"

double sk_config_train_flops(const sk_config *c, int64_t n, int grad_ckpt)
{
	const double H = c->hidden_size, qd = (double)c->num_heads * c->head_dim,
	             kvd = (double)c->num_kv_heads * c->head_dim;
	const int n3 = c->arch == SK_ARCH_GEMMA3N, first_shared = sk_config_first_kv_shared(c);
	double proj = 0; /* multiply-adds of the projections a token */
	for (int l = 0; l < c->num_layers; l++) {
		proj += 2 * H * qd + 3 * H * (double)c->intermediate_size[l];
		if (l < first_shared) /* layers sharing K/V compute no k, v of their own */
			proj += 2 * H * kvd;
		if (n3)
			proj += 2 * H * c->laurel_rank + 2 * H * c->hidden_size_per_layer_input;
	}
	/* forward, the forward again under checkpointing, and dx = dy · W (frozen weights: no dW) */
	const double passes = grad_ckpt ? 3 : 2;
	/* the tied head on every target row: logits, logits again in the loss's gradient pass, dh */
	const double head = 3 * (double)c->vocab_size * H;
	/* attention as computed, every score of a sequence's n x n block: QKᵀ and PV forward (twice
	 * under checkpointing), and in the backward the scores again, dP, dQ, dK, dV */
	const double attn = (double)c->num_layers * (double)n * qd * (2 * passes - 2 + 5);
	return 2 * (passes * proj + head + attn);
}
