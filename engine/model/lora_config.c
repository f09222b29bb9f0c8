/* adapter_config.json of a PEFT LoRA adapter (formats.md §3.6): the fields
 * that change the math, and PEFT's rules for which modules are targeted.
 * Unknown keys are ignored (newer PEFT versions keep adding fields); known
 * keys whose value would need math this engine does not do are errors. */
#include "engine/model/lora.h"

#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/i18n.h"
#include "engine/strbuf.h"

/* Bounds on hostile input: target lists and regex text. */
#define MAX_TARGETS 1024
#define MAX_NAME 512
#define MAX_REGEX 8192
#define MAX_REPEAT 4096

struct sk_lora_match {
	char **names; /* list form */
	size_t n;
	int is_regex;
	regex_t re;
};

static void match_free(sk_lora_match *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->names[i]);
	free(m->names);
	if (m->is_regex)
		regfree(&m->re);
	free(m);
}

static int match_test(const sk_lora_match *m, const char *module)
{
	if (m->is_regex)
		return regexec(&m->re, module, 0, NULL, 0) == 0;
	size_t len = strlen(module);
	for (size_t i = 0; i < m->n; i++) {
		size_t k = strlen(m->names[i]);
		if (strcmp(module, m->names[i]) == 0)
			return 1;
		if (k < len && module[len - k - 1] == '.' && strcmp(module + len - k, m->names[i]) == 0)
			return 1;
	}
	return 0;
}

/* Characters a Python "\x" may escape to mean x itself. */
static int is_escapable(char c)
{
	return c && strchr(".^$*+?()[]{}|\\-/_,:=!<>#&~'\"%@;` ", c) != NULL;
}

/* ERE specials: an escaped one stays escaped, other punctuation goes out bare. */
static int is_ere_special(char c)
{
	return strchr(".^$*+?()[]{}|\\", c) != NULL;
}

char *sk_lora_regex_to_posix(const char *py, const char *name)
{
	sk_strbuf b = { 0 };
	const char *p = py;
	int prev_quant = 0; /* the last token was a quantifier */
	int depth = 0;      /* open groups: an unbalanced ")" would escape the anchors */
	unsigned long rep_product = 1;
	sk_strbuf_puts(&b, "^(");
	while (*p) {
		char c = *p;
		if (c == '\\') {
			char e = p[1];
			const char *cls = e == 'd' ? "[0-9]" : e == 'D' ? "[^0-9]" : e == 'w' ? "[[:alnum:]_]"
					: e == 'W' ? "[^[:alnum:]_]" : e == 's' ? "[[:space:]]" : e == 'S' ? "[^[:space:]]" : NULL;
			if (cls) {
				sk_strbuf_puts(&b, cls);
			} else if (is_escapable(e)) {
				if (is_ere_special(e))
					sk_strbuf_putc(&b, '\\');
				sk_strbuf_putc(&b, e);
			} else {
				sk_fail(_("%s: target_modules: unsupported escape \\%c in regular expression \"%s\""), name,
					e ? e : ' ', py);
				goto fail;
			}
			p += 2;
			prev_quant = 0;
		} else if (c == '[') {
			/* character class: copied, with Python's escapes made literal */
			sk_strbuf_putc(&b, '[');
			p++;
			if (*p == '^')
				sk_strbuf_putc(&b, *p++);
			if (*p == ']')
				sk_strbuf_putc(&b, *p++);
			while (*p && *p != ']') {
				if (*p == '[' && p[1] == ':') {
					sk_fail(_("%s: target_modules: \"[:\" inside a character class is not supported in \"%s\""),
						name, py);
					goto fail;
				}
				if (*p == '\\') {
					char e = p[1];
					if (e == 'd')
						sk_strbuf_puts(&b, "0-9");
					else if (e == 'w')
						sk_strbuf_puts(&b, "[:alnum:]_");
					else if (e == 's')
						sk_strbuf_puts(&b, "[:space:]");
					else if (e && is_escapable(e) && !strchr("]\\^-[", e))
						sk_strbuf_putc(&b, e);
					else {
						sk_fail(_("%s: target_modules: unsupported escape \\%c in a character class in \"%s\""),
							name, e ? e : ' ', py);
						goto fail;
					}
					p += 2;
				} else {
					sk_strbuf_putc(&b, *p++);
				}
			}
			if (*p != ']') {
				sk_fail(_("%s: target_modules: unterminated character class in regular expression \"%s\""),
					name, py);
				goto fail;
			}
			sk_strbuf_putc(&b, *p++);
			prev_quant = 0;
		} else if (c == '(' && p[1] == '?') {
			if (p[2] != ':') {
				sk_fail(_("%s: target_modules: unsupported group \"(?%c\" in regular expression \"%s\""), name,
					p[2] ? p[2] : ' ', py);
				goto fail;
			}
			sk_strbuf_putc(&b, '(');
			p += 3;
			depth++;
			prev_quant = 0;
		} else if (c == '*' || c == '+' || c == '?' || c == '{') {
			if (prev_quant && c == '?') {
				/* lazy: the same strings fully match, so drop it */
				p++;
				prev_quant = 0;
				continue;
			}
			if (prev_quant && c != '{') {
				sk_fail(_("%s: target_modules: possessive or repeated quantifier in regular expression \"%s\""),
					name, py);
				goto fail;
			}
			if (c == '{') {
				const char *q = p + 1;
				while (*q && *q != '}' && (strchr("0123456789,", *q)))
					q++;
				if (*q != '}') {
					/* Python takes a malformed {...} literally */
					sk_strbuf_puts(&b, "\\{");
					p++;
					prev_quant = 0;
					continue;
				}
				/* glibc's regcomp unrolls counted repetitions: bound their
				 * product so a hostile pattern cannot take unbounded memory */
				unsigned long bound = 0, num = 0;
				for (const char *d = p + 1; d <= q; d++) {
					if (*d >= '0' && *d <= '9') {
						num = num > 100000 ? num : num * 10 + (unsigned long)(*d - '0');
					} else {
						bound = num > bound ? num : bound;
						num = 0;
					}
				}
				rep_product *= bound + 1;
				if (rep_product > MAX_REPEAT) {
					sk_fail(_("%s: target_modules: counted repetitions too large in regular expression \"%s\""),
						name, py);
					goto fail;
				}
				for (; p <= q; p++)
					sk_strbuf_putc(&b, *p);
			} else {
				sk_strbuf_putc(&b, c);
				p++;
			}
			prev_quant = 1;
		} else {
			if (c == '(')
				depth++;
			if (c == ')' && --depth < 0)
				break;
			sk_strbuf_putc(&b, c);
			p++;
			prev_quant = 0;
		}
	}
	if (depth != 0) {
		sk_fail(_("%s: target_modules: unbalanced parenthesis in regular expression \"%s\""), name, py);
		goto fail;
	}
	sk_strbuf_puts(&b, ")$");
	if (b.oom) {
		sk_fail(_("%s: out of memory"), name);
		goto fail;
	}
	return b.s;
fail:
	free(b.s);
	return NULL;
}

/* target_modules / exclude_modules: list of names, regex string, or null. */
static int parse_match(json_t *v, const char *key, const char *name, sk_lora_match **out)
{
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	sk_lora_match *m = calloc(1, sizeof *m);
	if (!m)
		return sk_fail(_("%s: out of memory"), name);
	if (json_is_string(v)) {
		const char *py = json_string_value(v);
		if (json_string_length(v) > MAX_REGEX || strlen(py) != json_string_length(v)) {
			free(m);
			return sk_fail(_("%s: %s: regular expression too long or with NUL bytes"), name, key);
		}
		char *ere = sk_lora_regex_to_posix(py, name);
		if (!ere) {
			free(m);
			return -1;
		}
		int rc = regcomp(&m->re, ere, REG_EXTENDED | REG_NOSUB);
		free(ere);
		if (rc != 0) {
			char msg[128];
			regerror(rc, &m->re, msg, sizeof msg);
			free(m);
			return sk_fail(_("%s: %s: bad regular expression \"%s\": %s"), name, key, py, msg);
		}
		m->is_regex = 1;
		*out = m;
		return 0;
	}
	if (!json_is_array(v)) {
		free(m);
		return sk_fail(_("%s: %s must be a list of names or a regular expression string"), name, key);
	}
	size_t n = json_array_size(v);
	if (n > MAX_TARGETS) {
		free(m);
		return sk_fail(_("%s: %s: too many entries (%zu)"), name, key, n);
	}
	m->names = calloc(n ? n : 1, sizeof *m->names);
	if (!m->names) {
		free(m);
		return sk_fail(_("%s: out of memory"), name);
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > MAX_NAME ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			match_free(m);
			return sk_fail(_("%s: %s: entry %zu is not a module name"), name, key, i);
		}
		m->names[i] = strdup(json_string_value(e));
		if (!m->names[i]) {
			match_free(m);
			return sk_fail(_("%s: out of memory"), name);
		}
		m->n = i + 1;
	}
	*out = m;
	return 0;
}

/* A boolean key that must be false (or absent) for this engine. */
static int require_false(json_t *root, const char *key, const char *name, const char *why)
{
	json_t *v = json_object_get(root, key);
	if (!v || json_is_null(v) || json_is_false(v))
		return 0;
	if (!json_is_boolean(v))
		return sk_fail(_("%s: %s must be true or false"), name, key);
	return sk_fail(_("%s: %s is true: %s"), name, key, why);
}

/* An object key that must be empty (or absent / null). */
static int require_empty(json_t *root, const char *key, const char *name)
{
	json_t *v = json_object_get(root, key);
	if (!v || json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
	    (json_is_array(v) && json_array_size(v) == 0))
		return 0;
	return sk_fail(_("%s: %s is not supported (per-module overrides or extra trained modules)"), name, key);
}

int sk_lora_config_parse(const char *json, size_t len, const char *name, sk_lora_config *out)
{
	memset(out, 0, sizeof *out);
	json_error_t err;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		return sk_fail(_("%s: invalid JSON at line %d: %s"), name, err.line, err.text);
	int rc = -1;
	if (!json_is_object(root)) {
		sk_fail(_("%s: not a JSON object"), name);
		goto out;
	}
	json_t *v = json_object_get(root, "peft_type");
	if (!json_is_string(v)) {
		sk_fail(_("%s: peft_type missing (not a PEFT adapter config)"), name);
		goto out;
	}
	if (strcmp(json_string_value(v), "LORA") != 0) {
		sk_fail(_("%s: peft_type is \"%s\"; only LORA adapters are supported"), name, json_string_value(v));
		goto out;
	}
	/* PEFT's dataclass defaults when a key is missing: r 8, lora_alpha 8 */
	double alpha = 8.0;
	out->r = 8;
	v = json_object_get(root, "r");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65536) {
			sk_fail(_("%s: r must be an integer from 1 to 65536"), name);
			goto out;
		}
		out->r = (int32_t)json_integer_value(v);
	}
	v = json_object_get(root, "lora_alpha");
	if (v && !json_is_null(v)) {
		double a = json_number_value(v);
		if (!json_is_number(v) || !isfinite(a) || fabs(a) > 1e6) {
			sk_fail(_("%s: lora_alpha must be a number"), name);
			goto out;
		}
		alpha = a;
	}
	v = json_object_get(root, "use_rslora");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			sk_fail(_("%s: use_rslora must be true or false"), name);
			goto out;
		}
		out->use_rslora = json_is_true(v);
	}
	v = json_object_get(root, "bias");
	if (v && !json_is_null(v) && (!json_is_string(v) || strcmp(json_string_value(v), "none") != 0)) {
		sk_fail(_("%s: bias must be \"none\" (trained biases are not supported)"), name);
		goto out;
	}
	if (require_false(root, "fan_in_fan_out", name, _("only nn.Linear weights [out, in] are supported")) ||
	    require_false(root, "use_dora", name, _("DoRA adapters are not supported")) ||
	    require_false(root, "lora_bias", name, _("LoRA biases are not supported")) ||
	    require_empty(root, "rank_pattern", name) || require_empty(root, "alpha_pattern", name) ||
	    require_empty(root, "modules_to_save", name))
		goto out;
	if (parse_match(json_object_get(root, "target_modules"), "target_modules", name, &out->targets) ||
	    parse_match(json_object_get(root, "exclude_modules"), "exclude_modules", name, &out->exclude))
		goto out;
	/* PEFT keeps the scale as a Python float; it meets float32 tensors */
	out->alpha = (float)alpha;
	out->scale = (float)(out->use_rslora ? alpha / sqrt((double)out->r) : alpha / (double)out->r);
	rc = 0;
out:
	json_decref(root);
	if (rc)
		sk_lora_config_free(out);
	return rc;
}

void sk_lora_config_free(sk_lora_config *c)
{
	if (!c)
		return;
	match_free(c->targets);
	match_free(c->exclude);
	c->targets = c->exclude = NULL;
}

int sk_lora_config_targets(const sk_lora_config *c, const char *module)
{
	if (c->exclude && match_test(c->exclude, module))
		return 0;
	return !c->targets || match_test(c->targets, module);
}
