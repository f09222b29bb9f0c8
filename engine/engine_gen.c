/* Generate commands on the engine thread: each answer's conversation is
 * rendered through the chat template (the oldest turns dropped when it
 * outgrows the context), then all answers run in ONE batched sk_generate,
 * streaming token events and stopping at a cancel within one token. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"
#include "engine/error.h"
#include "engine/i18n.h"

typedef struct {
	sk_engine *e;
	uint64_t seq;
	int sessions[SK_ENGINE_MAX_ANSWERS];
	int cancelled[SK_ENGINE_MAX_ANSWERS];
} gen_ctx;

static int on_token(void *ctx, int i, int32_t id, const char *text)
{
	(void)id;
	gen_ctx *g = ctx;
	if (i < 0 || i >= SK_ENGINE_MAX_ANSWERS)
		return 1;
	if (text && *text) {
		sk_engine_event ev = { .type = SK_EV_TOKEN, .session = g->sessions[i] };
		ev.text = strdup(text);
		sk_engine_emit(g->e, &ev);
	}
	if (g->e->opts.token_delay_us > 0) {
		long us = g->e->opts.token_delay_us;
		struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
		nanosleep(&ts, NULL);
	}
	if (sk_engine_cancelled(g->e, g->seq, g->sessions[i]))
		g->cancelled[i] = 1;
	return g->cancelled[i];
}

/* Prompt ids for msgs: a leading system message is kept; the oldest
 * user/assistant pairs after it are dropped while prompt + reserve exceed
 * ctx. *dropped counts the pairs. */
static int fit_prompt(const sk_tokenizer *tok, const sk_chat_msg *msgs, size_t n, int ctx, int reserve, sk_ids *ids,
                      int *dropped)
{
	size_t sys = n > 0 && msgs[0].role == SK_CHAT_SYSTEM ? 1 : 0;
	sk_chat_msg *tmp = malloc(n * sizeof *tmp);
	if (!tmp)
		return sk_fail("%s", _("engine: out of memory"));
	*dropped = 0;
	for (size_t first = sys;; first += 2) {
		size_t k = 0;
		if (sys)
			tmp[k++] = msgs[0];
		for (size_t i = first; i < n; i++)
			tmp[k++] = msgs[i];
		ids->n = 0;
		if (sk_chat_render(tok, tmp, k, 1, ids, NULL) != 0) {
			free(tmp);
			return -1;
		}
		if ((long long)ids->n + reserve <= ctx) {
			free(tmp);
			return 0;
		}
		if (first + 2 >= n) {
			free(tmp);
			return sk_fail(_("the message is too long: %zu tokens with %d reserved for the answer, context %d"),
			               ids->n, reserve, ctx);
		}
		(*dropped)++;
	}
}

void sk_engine_drop_caches(sk_engine *e)
{
	sk_gen_cache_free(e->gcache);
	e->gcache = NULL;
}

/* The kept cache's slot of a session (a free one, else the one after the
 * last taken, forgotten); -1 when there is no cache. */
static int slot_of(sk_engine *e, int session, const int *taken, int n_taken)
{
	for (int s = 0; s < SK_ENGINE_CACHE_SLOTS; s++)
		if (e->slot_session[s] == session)
			return s;
	for (int s = 0; s < SK_ENGINE_CACHE_SLOTS; s++) {
		int busy = 0;
		for (int k = 0; k < n_taken; k++)
			busy |= taken[k] == s;
		if (!busy && (e->slot_session[s] < 0 || s == SK_ENGINE_CACHE_SLOTS - 1)) {
			sk_gen_cache_forget(e->gcache, s);
			e->slot_session[s] = session;
			return s;
		}
	}
	return -1;
}

/* The kept caches for this generation: made for ctx tokens (again when ctx
 * changed); slots whose adapter changed since are forgotten. */
static int ready_caches(sk_engine *e, int ctx, const sk_gen_request *reqs, const int *sessions, int n, int *slots)
{
	if (e->gcache && e->gcache_ctx != ctx)
		sk_engine_drop_caches(e);
	if (!e->gcache) {
		if (!(e->gcache = sk_gen_cache_new(e->model, SK_ENGINE_CACHE_SLOTS, ctx)))
			return -1;
		e->gcache_ctx = ctx;
		for (int s = 0; s < SK_ENGINE_CACHE_SLOTS; s++)
			e->slot_session[s] = -1;
		e->gcache_adapter_gen = e->adapter_gen;
	}
	int adapter_changed = e->gcache_adapter_gen != e->adapter_gen;
	e->gcache_adapter_gen = e->adapter_gen;
	for (int a = 0; a < n; a++) {
		slots[a] = slot_of(e, sessions[a], slots, a);
		if (slots[a] < 0)
			return sk_fail("%s", _("engine: no cache slot for the session"));
		/* a training run changes the live adapter between any two turns */
		if (reqs[a].adapter_on && (adapter_changed || e->train_state == SK_TRAIN_RUNNING ||
		                           e->train_state == SK_TRAIN_PAUSED))
			sk_gen_cache_forget(e->gcache, slots[a]);
	}
	return 0;
}

void sk_engine_run_generate(sk_engine *e, const sk_qcmd *q)
{
	const sk_engine_gen *g = &q->cmd.gen;
	int n = g->n_answers;
	gen_ctx gc = { .e = e, .seq = q->seq };
	for (int a = 0; a < n; a++)
		gc.sessions[a] = g->answers[a].session;
	const char *why = NULL;
	if (!e->model)
		why = _("no model is loaded");
	else if (!sk_model_tokenizer(e->model))
		why = _("the model has no tokenizer");
	if (why) {
		for (int a = 0; a < n; a++)
			sk_engine_error(e, gc.sessions[a], why);
		return;
	}
	/* Cancelled while it waited: done at once, nothing generated. */
	int all_cancelled = 1;
	for (int a = 0; a < n; a++)
		all_cancelled &= sk_engine_cancelled(e, q->seq, gc.sessions[a]);
	if (all_cancelled) {
		for (int a = 0; a < n; a++) {
			sk_engine_event ev = { .type = SK_EV_GEN_DONE, .session = gc.sessions[a] };
			ev.gen.stopped_by = 2;
			sk_engine_emit(e, &ev);
		}
		return;
	}
	const sk_config *c = sk_model_config(e->model);
	int ctx = g->ctx > 0 && g->ctx < c->max_position_embeddings ? g->ctx : c->max_position_embeddings;
	int max_new = g->max_new > 0 ? g->max_new : 1024;
	int reserve = max_new < ctx / 2 ? max_new : ctx / 2;
	sk_ids ids[SK_ENGINE_MAX_ANSWERS] = { 0 };
	sk_gen_request reqs[SK_ENGINE_MAX_ANSWERS];
	memset(reqs, 0, sizeof reqs);
	int ok = 1;
	/* While a run trains, "adapter on" is its live adapter: the engine
	 * thread runs both, so it never changes under a forward. */
	const sk_lora *ad = sk_engine_adapter(e);
	if (sk_model_set_adapter(e->model, ad) != 0)
		ok = 0;
	for (int a = 0; a < n && ok; a++) {
		int dropped = 0;
		if (sk_chat_validate(g->answers[a].msgs, g->answers[a].n_msgs) != 0 ||
		    fit_prompt(sk_model_tokenizer(e->model), g->answers[a].msgs, g->answers[a].n_msgs, ctx, reserve,
		               &ids[a], &dropped) != 0) {
			ok = 0;
			break;
		}
		if (dropped)
			sk_engine_log(e, SK_LOG_INFO, _("the oldest %d turn(s) were dropped to fit the context of %d tokens"),
			              dropped, ctx);
		reqs[a].prompt = ids[a].v;
		reqs[a].n_prompt = ids[a].n;
		long long room = (long long)ctx - (long long)ids[a].n;
		reqs[a].max_new = room < max_new ? (int)room : max_new;
		reqs[a].adapter_on = ad && g->answers[a].adapter_on;
		reqs[a].sampling = g->sampling;
	}
	sk_gen_stats st[SK_ENGINE_MAX_ANSWERS];
	memset(st, 0, sizeof st);
	int slots[SK_ENGINE_MAX_ANSWERS];
	if (ok && (ready_caches(e, ctx, reqs, gc.sessions, n, slots) != 0 ||
	           sk_generate_cached(e->model, e->gcache, slots, reqs, n, on_token, &gc, st) != 0))
		ok = 0;
	sk_model_set_adapter(e->model, e->lora);
	if (ok) {
		int most = 0;
		for (int a = 0; a < n; a++)
			if (st[a].n_reused + st[a].n_prompt_tokens + st[a].n_generated > most)
				most = st[a].n_reused + st[a].n_prompt_tokens + st[a].n_generated;
		e->last_kv_bytes = sk_model_kv_bytes(e->model, n, most);
	}
	if (!ok) {
		char *msg = strdup(sk_error());
		for (int a = 0; a < n; a++)
			sk_engine_error(e, gc.sessions[a], msg);
		free(msg);
	} else {
		for (int a = 0; a < n; a++) {
			sk_engine_event ev = { .type = SK_EV_GEN_DONE, .session = gc.sessions[a] };
			ev.gen.n_prompt = st[a].n_prompt_tokens;
			ev.gen.n_generated = st[a].n_generated;
			ev.gen.prefill_s = st[a].prefill_s;
			ev.gen.decode_s = st[a].decode_s;
			ev.gen.prefill_tps = st[a].prefill_s > 0 ? st[a].n_prompt_tokens / st[a].prefill_s : 0;
			ev.gen.decode_tps = st[a].decode_s > 0 ? st[a].n_generated / st[a].decode_s : 0;
			ev.gen.stopped_by = gc.cancelled[a] ? 2 : st[a].stopped_by;
			sk_engine_emit(e, &ev);
		}
	}
	for (int a = 0; a < n; a++)
		sk_ids_free(&ids[a]);
}
