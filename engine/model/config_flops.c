/* The arithmetic of a training token: the floor `sokhan bench train` sets
 * its rate against (docs/gpu-notes: about 27 GFLOP a token for E4B at 512
 * with checkpointing, ~29,000 tokens/s at 785 TFLOP/s of bf16). */
#include "engine/model/config.h"

double sk_config_train_flops(const sk_config *c, int64_t n, int ckpt)
{
	const double H = c->hidden_size, qd = (double)c->num_heads * c->head_dim,
	             kvd = (double)c->num_kv_heads * c->head_dim;
	const int n3 = c->arch == SK_ARCH_GEMMA3N, first_shared = sk_config_first_kv_shared(c);
	double proj = 0, again = 0; /* multiply-adds of the projections a token: all; those computed again */
	for (int l = 0; l < c->num_layers; l++) {
		const double F = (double)c->intermediate_size[l];
		/* q and gate, up; k, v where the layer has its own (KV-shared layers compute none) */
		double kept_not = H * qd + 2 * H * F + (l < first_shared ? 2 * H * kvd : 0);
		/* o, down, and Gemma 3n's LAuReL and per-layer-input products: the ones whose outputs a
		 * checkpointed pass may keep */
		double keepable = H * qd + H * F + (n3 ? 2 * H * c->laurel_rank + 2 * H * c->hidden_size_per_layer_input : 0);
		proj += kept_not + keepable;
		again += ckpt == SK_TRAIN_CKPT_KEPT ? kept_not : kept_not + keepable;
	}
	/* the forward, the forward again under checkpointing, and dx = dy · W (frozen weights: no dW) */
	const double proj_all = 2 * proj + (ckpt ? again : 0);
	/* the tied head on every target row: logits, logits again in the loss's gradient pass, dh */
	const double head = 3 * (double)c->vocab_size * H;
	/* attention as computed, every score of a sequence's n x n block: QKᵀ and PV forward (again
	 * when checkpointing computes attention again), and in the backward the scores again, dP, dQ,
	 * dK, dV */
	const double attn = (double)c->num_layers * (double)n * qd * (2 + (ckpt == SK_TRAIN_CKPT_ALL ? 2 : 0) + 5);
	return 2 * (proj_all + head + attn);
}
