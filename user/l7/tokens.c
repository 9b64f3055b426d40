// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tokens.c - the token estimate of an LLM request, and the backend's usage
 * from a JSON response or a server-sent-event stream. See tokens.h.
 *
 * Bodies come bounded by the caller; jansson bounds nesting (its parser
 * refuses more than JSON_PARSER_MAX_DEPTH levels), and the walk here only
 * descends the few fixed levels of the OpenAI request shape, so nothing
 * recurses on client input beyond jansson itself. Every pass is linear.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "tokens.h"

#define PATH_CHAT "/v1/chat/completions"
#define PATH_COMPLETIONS "/v1/completions"
#define N_MAX 128 /* choices per request; OpenAI's own bound */

static int path_is(const char *p, size_t len, const char *want)
{
	size_t wl = strlen(want);

	return len == wl && memcmp(p, want, wl) == 0;
}

enum tokens_api tokens_api_of(const char *target, size_t len)
{
	const char *q;

	if (!target)
		return TOKENS_API_NONE;
	q = memchr(target, '?', len);
	if (q)
		len = (size_t)(q - target);
	if (path_is(target, len, PATH_CHAT))
		return TOKENS_API_CHAT;
	if (path_is(target, len, PATH_COMPLETIONS))
		return TOKENS_API_COMPLETIONS;
	return TOKENS_API_NONE;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A fixed reason per jansson error code: jansson's own text quotes the
 * client's bytes ("near '...'"), which may hold quotes, control characters
 * or cut UTF-8, and the message goes into a JSON error body as it is. */
static const char *json_reason(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_out_of_memory:
		return "out of memory while parsing";
	case json_error_stack_overflow:
		return "nested too deeply";
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_premature_end_of_input:
		return "unexpected end of input";
	case json_error_end_of_input_expected:
		return "data after the JSON value";
	case json_error_null_byte_in_key:
		return "NUL character in an object key";
	case json_error_numeric_overflow:
		return "number out of range";
	case json_error_invalid_argument:
		return "empty body";
	default:
		return "invalid syntax";
	}
}

/* UTF-8 code points of valid UTF-8 (jansson validated it): every byte that
 * is not a continuation byte starts one. */
static uint64_t utf8_chars(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	uint64_t c = 0;
	size_t i;

	for (i = 0; i < n; i++)
		c += (p[i] & 0xC0) != 0x80;
	return c;
}

static uint64_t str_chars(const json_t *s)
{
	return utf8_chars(json_string_value(s), json_string_length(s));
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* Present: a JSON key with a value other than null (null means "unset" in
 * OpenAI's APIs, as when a client serialises an optional field). */
static json_t *get_set(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/* The strings of a tool or function call, counted when they have the usual
 * shape ({"name": "...", "arguments": "..."}); anything else adds nothing,
 * since the backend, not the proxy, judges a call's shape. */
static uint64_t call_chars(const json_t *fn)
{
	const json_t *v;
	uint64_t c = 0;

	if (!json_is_object(fn))
		return 0;
	v = json_object_get(fn, "name");
	if (json_is_string(v))
		c += str_chars(v);
	v = json_object_get(fn, "arguments");
	if (json_is_string(v))
		c += str_chars(v);
	return c;
}

static int chat_message(const json_t *m, size_t i, uint64_t *chars, char *err, size_t errlen)
{
	const json_t *content, *name, *role, *calls, *part;
	size_t j;

	if (!json_is_object(m)) {
		set_err(err, errlen, "messages[%zu] must be an object", i);
		return -EINVAL;
	}
	content = get_set(m, "content");
	if (json_is_string(content)) {
		*chars = sat_add(*chars, str_chars(content));
	} else if (json_is_array(content)) {
		json_array_foreach(content, j, part) {
			const json_t *type, *text;

			if (!json_is_object(part)) {
				set_err(err, errlen, "messages[%zu].content[%zu] must be an object", i, j);
				return -EINVAL;
			}
			type = json_object_get(part, "type");
			if (!json_is_string(type) || strcmp(json_string_value(type), "text"))
				continue; /* images, audio: not text the estimate can count */
			text = json_object_get(part, "text");
			if (!json_is_string(text)) {
				set_err(err, errlen, "messages[%zu].content[%zu].text must be a string",
					i, j);
				return -EINVAL;
			}
			*chars = sat_add(*chars, str_chars(text));
		}
	} else if (content) {
		set_err(err, errlen,
			"messages[%zu].content must be a string, an array of content parts or null",
			i);
		return -EINVAL;
	}
	name = get_set(m, "name");
	if (name) {
		if (!json_is_string(name)) {
			set_err(err, errlen, "messages[%zu].name must be a string", i);
			return -EINVAL;
		}
		*chars = sat_add(*chars, str_chars(name));
	}
	/* An assistant's earlier tool calls are part of the prompt too. */
	role = json_object_get(m, "role");
	if (!json_is_string(role) || strcmp(json_string_value(role), "assistant"))
		return 0;
	calls = json_object_get(m, "tool_calls");
	if (json_is_array(calls))
		json_array_foreach(calls, j, part)
			if (json_is_object(part))
				*chars = sat_add(*chars, call_chars(json_object_get(part, "function")));
	*chars = sat_add(*chars, call_chars(json_object_get(m, "function_call")));
	return 0;
}

static int chat_input(const json_t *root, uint64_t *input, char *err, size_t errlen)
{
	const json_t *msgs = json_object_get(root, "messages"), *m;
	uint64_t chars = 0;
	size_t i, n;
	int rc;

	if (!msgs) {
		set_err(err, errlen, "messages is required");
		return -EINVAL;
	}
	if (!json_is_array(msgs)) {
		set_err(err, errlen, "messages must be an array");
		return -EINVAL;
	}
	n = json_array_size(msgs);
	if (!n) {
		set_err(err, errlen, "messages must not be empty");
		return -EINVAL;
	}
	json_array_foreach(msgs, i, m) {
		rc = chat_message(m, i, &chars, err, errlen);
		if (rc)
			return rc;
	}
	*input = sat_add(sat_add(chars / TOKENS_CHARS_PER_TOKEN +
				 (chars % TOKENS_CHARS_PER_TOKEN != 0),
				 sat_mul(n, TOKENS_PER_MESSAGE)),
			 TOKENS_PER_REPLY);
	return 0;
}

/* "prompt": a string, an array of strings, a token array (integers), or an
 * array of token arrays. Text counts by characters, token ids one each. */
static int completions_input(const json_t *root, uint64_t *input, char *err, size_t errlen)
{
	const json_t *p = get_set(root, "prompt"), *e, *t;
	uint64_t chars = 0, toks = 0;
	size_t i, j;

	if (!p) {
		set_err(err, errlen, "prompt is required");
		return -EINVAL;
	}
	if (json_is_string(p)) {
		chars = str_chars(p);
	} else if (json_is_array(p)) {
		json_array_foreach(p, i, e) {
			if (json_is_string(e)) {
				chars = sat_add(chars, str_chars(e));
			} else if (json_is_integer(e)) {
				toks++;
			} else if (json_is_array(e)) {
				json_array_foreach(e, j, t) {
					if (!json_is_integer(t)) {
						set_err(err, errlen,
							"prompt[%zu][%zu] must be an integer token", i, j);
						return -EINVAL;
					}
				}
				toks = sat_add(toks, json_array_size(e));
			} else {
				set_err(err, errlen,
					"prompt[%zu] must be a string, a token or an array of tokens", i);
				return -EINVAL;
			}
		}
	} else {
		set_err(err, errlen, "prompt must be a string or an array");
		return -EINVAL;
	}
	*input = sat_add(chars / TOKENS_CHARS_PER_TOKEN + (chars % TOKENS_CHARS_PER_TOKEN != 0),
			 toks);
	return 0;
}

static int estimate_output(const json_t *root, uint64_t default_output, uint64_t max_output,
			   uint64_t *output, char *err, size_t errlen)
{
	const char *key = "max_completion_tokens";
	const json_t *v = get_set(root, key), *n;
	uint64_t out = default_output, choices = 1;

	if (!v) {
		key = "max_tokens";
		v = get_set(root, key);
	}
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			set_err(err, errlen, "%s must be a non-negative integer", key);
			return -EINVAL;
		}
		out = (uint64_t)json_integer_value(v);
	}
	n = get_set(root, "n");
	if (n) {
		if (!json_is_integer(n) || json_integer_value(n) < 1 ||
		    json_integer_value(n) > N_MAX) {
			set_err(err, errlen, "n must be an integer from 1 to %d", N_MAX);
			return -EINVAL;
		}
		choices = (uint64_t)json_integer_value(n);
	}
	/* Every choice may use the whole maximum. */
	out = sat_mul(out, choices);
	if (max_output && out > max_output)
		out = max_output;
	*output = out;
	return 0;
}

int tokens_estimate(enum tokens_api api, const char *body, size_t len, uint64_t default_output,
		    uint64_t max_output, struct tokens_estimate *out, char *err, size_t errlen)
{
	json_error_t jerr;
	const json_t *stream;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (api != TOKENS_API_CHAT && api != TOKENS_API_COMPLETIONS)
		return 0; /* not an LLM call: a request, no tokens */
	/* JSON_DECODE_ANY so that "42" is reported as "not an object", and
	 * JSON_ALLOW_NUL because \u0000 is valid in a JSON string. */
	root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!root) {
		if (json_error_code(&jerr) == json_error_out_of_memory) {
			set_err(err, errlen, "out of memory while parsing the request body");
			return -ENOMEM;
		}
		if (!body || !len)
			set_err(err, errlen, "request body is empty: a JSON object is required");
		else
			set_err(err, errlen, "request body is not valid JSON: %s at byte %d",
				json_reason(&jerr), jerr.position);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		set_err(err, errlen, "request body must be a JSON object");
		rc = -EINVAL;
		goto out;
	}
	rc = api == TOKENS_API_CHAT ? chat_input(root, &out->input, err, errlen)
				    : completions_input(root, &out->input, err, errlen);
	if (rc)
		goto out;
	rc = estimate_output(root, default_output, max_output, &out->output, err, errlen);
	if (rc)
		goto out;
	stream = get_set(root, "stream");
	if (stream && !json_is_boolean(stream)) {
		set_err(err, errlen, "stream must be a boolean");
		rc = -EINVAL;
		goto out;
	}
	out->stream = json_is_true(stream);
out:
	if (rc)
		memset(out, 0, sizeof(*out));
	json_decref(root);
	return rc;
}

/* usage.prompt_tokens and usage.completion_tokens, both non-negative
 * integers; "usage": null (OpenAI's non-final stream chunks) is not one. */
static int usage_of(const json_t *root, struct tokens_usage *u)
{
	const json_t *usage = json_object_get(root, "usage"), *p, *c;

	if (!json_is_object(usage))
		return -ENOENT;
	p = json_object_get(usage, "prompt_tokens");
	c = json_object_get(usage, "completion_tokens");
	if (!json_is_integer(p) || !json_is_integer(c) || json_integer_value(p) < 0 ||
	    json_integer_value(c) < 0)
		return -ENOENT;
	u->prompt = (uint64_t)json_integer_value(p);
	u->completion = (uint64_t)json_integer_value(c);
	u->found = 1;
	return 0;
}

static int json_space(char c);

/* Where the top-level "usage" object starts ('{'), or NULL: one pass that
 * tracks nesting and strings, so a "usage" key deeper down, or the text of
 * a reply, is not taken for it. */
static const char *top_usage(const char *p, size_t len)
{
	const char *end = p + len, *found = NULL;
	int depth = 0;

	while (p < end) {
		char ch = *p;

		if (ch == '"') {
			const char *str = ++p;

			while (p < end && *p != '"')
				p += *p == '\\' ? 2 : 1;
			if (p >= end)
				return NULL;
			if (depth == 1 && p - str == 5 && !memcmp(str, "usage", 5)) {
				const char *q = p + 1;

				while (q < end && json_space(*q))
					q++;
				if (q < end && *q == ':') {
					q++;
					while (q < end && json_space(*q))
						q++;
					if (q < end && *q == '{')
						found = q;
				}
			}
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
		p++;
	}
	return found;
}

int tokens_usage_json(const char *body, size_t len, struct tokens_usage *u)
{
	const char *obj = top_usage(body, len);
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(u, 0, sizeof(*u));
	/* The usage object alone: a reply's body is mostly its text, and
	 * parsing all of it cost 16% of the proxy's time per chat request.
	 * The whole body is parsed only when this does not find a usage. */
	if (obj) {
		json_t *usage = json_loadb(obj, len - (size_t)(obj - body), JSON_DISABLE_EOF_CHECK,
					   &jerr);

		if (usage) {
			root = json_object();
			if (root && !json_object_set_new(root, "usage", usage)) {
				rc = usage_of(root, u);
				json_decref(root);
				if (!rc)
					return 0;
			} else {
				json_decref(root);
			}
		}
		memset(u, 0, sizeof(*u));
	}
	root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!root)
		return json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
	rc = usage_of(root, u);
	json_decref(root);
	return rc;
}

int sse_scan_init(struct sse_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->line = malloc(SSE_MAX_LINE);
	return s->line ? 0 : -ENOMEM;
}

void sse_scan_free(struct sse_scan *s)
{
	if (!s)
		return;
	free(s->line);
	s->line = NULL;
	s->len = 0;
	s->skipping = 0;
}

static int json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether some "usage" in the line is followed by ':' and '{': a usage
 * object can be there. OpenAI's chunks carry "usage":null until the last
 * one, and this spares a parse of each. */
static int may_hold_usage(const char *l, size_t n)
{
	static const char needle[] = "\"usage\"";
	const size_t nl = sizeof(needle) - 1;
	const char *end = l + n, *p = l, *q;

	while ((q = memmem(p, (size_t)(end - p), needle, nl))) {
		p = q + nl;
		while (p < end && json_space(*p))
			p++;
		if (p < end && *p == ':') {
			p++;
			while (p < end && json_space(*p))
				p++;
			if (p < end && *p == '{')
				return 1;
		}
	}
	return 0;
}

/* One complete line, its LF removed. Fields other than data (event:, id:,
 * retry:, ":" comments) say nothing about tokens. */
static void sse_line(struct sse_scan *s, const char *l, size_t n)
{
	struct tokens_usage u = { 0 };
	json_t *root;

	if (n && l[n - 1] == '\r')
		n--;
	if (n < 5 || memcmp(l, "data:", 5))
		return;
	l += 5;
	n -= 5;
	if (n && *l == ' ') {
		l++;
		n--;
	}
	if (n == 6 && !memcmp(l, "[DONE]", 6)) {
		s->done = 1;
		return;
	}
	s->events++;
	/* Parse only the chunks that can carry usage: one per stream. */
	if (!may_hold_usage(l, n))
		return;
	root = json_loadb(l, n, JSON_ALLOW_NUL, NULL);
	if (!root)
		return;
	if (!usage_of(root, &u))
		s->usage = u;
	json_decref(root);
}

void sse_scan_feed(struct sse_scan *s, const char *data, size_t n)
{
	const char *lf;
	size_t take;

	if (!s || !s->line || !data)
		return; /* failed init, or freed: nothing to scan into */
	while (n) {
		lf = memchr(data, '\n', n);
		take = lf ? (size_t)(lf - data) : n;
		if (!s->skipping) {
			if (take > SSE_MAX_LINE - s->len) {
				s->skipping = 1; /* too long: drop it through its LF */
				s->len = 0;
			} else {
				memcpy(s->line + s->len, data, take);
				s->len += take;
			}
		}
		if (!lf)
			return;
		if (!s->skipping)
			sse_line(s, s->line, s->len);
		s->skipping = 0;
		s->len = 0;
		take++;
		data += take;
		n -= take;
	}
}
