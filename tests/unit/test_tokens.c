// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Token accounting (user/l7/tokens.c): which targets are LLM calls, the
 * estimate of request bodies (one row per case, the expected numbers worked
 * out by hand from the rule in tokens.h), the usage of JSON responses, and
 * the server-sent-event scanner fed the same stream whole, byte by byte and
 * in random pieces.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "tokens.h"

#define DEF_OUT 256 /* default_output in every estimate row */

struct api_case {
	const char *target;
	size_t len; /* 0: strlen(target) */
	enum tokens_api want;
};

static const struct api_case api_cases[] = {
	{ "/v1/chat/completions", 0, TOKENS_API_CHAT },
	{ "/v1/chat/completions?stream=1", 0, TOKENS_API_CHAT },
	{ "/v1/chat/completions?", 0, TOKENS_API_CHAT },
	{ "/v1/completions", 0, TOKENS_API_COMPLETIONS },
	{ "/v1/completions?a=/v1/chat/completions", 0, TOKENS_API_COMPLETIONS },
	{ "/v1/chat/completions/", 0, TOKENS_API_NONE },
	{ "/v1/completions/", 0, TOKENS_API_NONE },
	{ "/v1/chat/completionsX", 0, TOKENS_API_NONE },
	{ "/V1/completions", 0, TOKENS_API_NONE },
	{ "/v1/embeddings", 0, TOKENS_API_NONE },
	{ "/v1/chat/completions", 10, TOKENS_API_NONE }, /* only "/v1/chat/c" is the target */
	{ "/v1/completions-and-more", 15, TOKENS_API_COMPLETIONS }, /* not NUL-terminated */
	{ "?/v1/completions", 0, TOKENS_API_NONE },
	{ "", 0, TOKENS_API_NONE },
};

TEST(tokens_api_of_paths)
{
	size_t i;

	for (i = 0; i < NELEM(api_cases); i++) {
		const struct api_case *c = &api_cases[i];
		size_t len = c->len ? c->len : strlen(c->target);

		CHECK(tokens_api_of(c->target, len) == c->want, "target '%.*s': got %d, want %d",
		      (int)len, c->target, tokens_api_of(c->target, len), c->want);
	}
}

#define CHAT TOKENS_API_CHAT
#define COMPL TOKENS_API_COMPLETIONS
#define MSG(content) "{\"messages\":[{\"role\":\"user\",\"content\":" content "}]"

struct est_case {
	const char *name;
	enum tokens_api api;
	const char *body;
	uint64_t max_output;
	int rc;
	uint64_t input, output;
	int stream;
	const char *err; /* a substring of the error message, for -EINVAL rows */
};

static const struct est_case est_cases[] = {
	/* chat input: ceil(chars / 4) + 4 per message + 3 */
	{ "chat string", CHAT, MSG("\"hello world!\"") "}", 0, 0, 3 + 4 + 3, DEF_OUT, 0, NULL },
	{ "chat string rounds up", CHAT, MSG("\"hello world!!\"") "}", 0, 0, 4 + 4 + 3, DEF_OUT, 0, NULL },
	{ "chat empty string", CHAT, MSG("\"\"") "}", 0, 0, 0 + 4 + 3, DEF_OUT, 0, NULL },
	{ "chat two messages", CHAT,
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"abcd\"},"
	  "{\"role\":\"user\",\"content\":\"efgh\"}]}", 0, 0, 2 + 8 + 3, DEF_OUT, 0, NULL },
	{ "chat array parts", CHAT,
	  MSG("[{\"type\":\"text\",\"text\":\"abcd\"},"
	      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/aaaaaaaaaaaaaaaa\"}},"
	      "{\"type\":\"text\",\"text\":\"efgh\"}]") "}", 0, 0, 2 + 4 + 3, DEF_OUT, 0, NULL },
	{ "chat null content", CHAT, "{\"messages\":[{\"role\":\"assistant\",\"content\":null}]}",
	  0, 0, 0 + 4 + 3, DEF_OUT, 0, NULL },
	{ "chat no content", CHAT, "{\"messages\":[{\"role\":\"user\"}]}", 0, 0, 0 + 4 + 3,
	  DEF_OUT, 0, NULL },
	/* "abcd" + "get" + "{\"a\":1}" (7) = 14 chars */
	{ "chat assistant tool call", CHAT,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"},"
	  "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
	  "\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\":1}\"}}]}]}",
	  0, 0, 4 + 8 + 3, DEF_OUT, 0, NULL },
	{ "chat tool call not assistant", CHAT,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"abcd\",\"tool_calls\":[{\"function\":"
	  "{\"name\":\"get\",\"arguments\":\"aaaaaaaaaaaaaaaa\"}}]}]}",
	  0, 0, 1 + 4 + 3, DEF_OUT, 0, NULL },
	{ "chat odd tool call ignored", CHAT,
	  "{\"messages\":[{\"role\":\"assistant\",\"content\":\"abcd\",\"tool_calls\":[7,"
	  "{\"function\":{\"arguments\":{\"x\":1}}}],\"function_call\":\"x\"}]}",
	  0, 0, 1 + 4 + 3, DEF_OUT, 0, NULL },
	{ "chat legacy function_call", CHAT,
	  "{\"messages\":[{\"role\":\"assistant\",\"content\":null,"
	  "\"function_call\":{\"name\":\"fn\",\"arguments\":\"xy\"}}]}",
	  0, 0, 1 + 4 + 3, DEF_OUT, 0, NULL },
	/* 3 + 3 + 2 + 5 = 13 chars */
	{ "chat names", CHAT,
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"abc\",\"name\":\"bot\"},"
	  "{\"role\":\"user\",\"content\":\"de\",\"name\":\"alice\"}]}",
	  0, 0, 4 + 8 + 3, DEF_OUT, 0, NULL },
	/* 8 code points in 9 bytes: 2 tokens, where bytes would give 3 */
	{ "chat utf-8 code points", CHAT,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"h\xc3\xa9llo\",\"name\":\"abc\"}]}", 0, 0,
	  2 + 4 + 3, DEF_OUT, 0, NULL },
	/* 4 code points in 16 bytes: 1 token, not 4 */
	{ "chat utf-8 4-byte", CHAT,
	  MSG("\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"") "}", 0, 0,
	  1 + 4 + 3, DEF_OUT, 0, NULL },
	/* escapes count as the characters they stand for: 5 */
	{ "chat escapes", CHAT, MSG("\"\\u00e9\\u00e9\\n\\\"\\u0000\"") "}", 0, 0, 2 + 4 + 3,
	  DEF_OUT, 0, NULL },
	/* output */
	{ "max_tokens", CHAT, MSG("\"abcd\"") ",\"max_tokens\":100}", 0, 0, 8, 100, 0, NULL },
	{ "max_tokens zero", CHAT, MSG("\"abcd\"") ",\"max_tokens\":0}", 0, 0, 8, 0, 0, NULL },
	{ "max_completion_tokens wins", CHAT,
	  MSG("\"abcd\"") ",\"max_tokens\":100,\"max_completion_tokens\":50}", 0, 0, 8, 50, 0, NULL },
	{ "max_completion_tokens wins, either order", CHAT,
	  MSG("\"abcd\"") ",\"max_completion_tokens\":50,\"max_tokens\":100}", 0, 0, 8, 50, 0, NULL },
	{ "max_completion_tokens null", CHAT,
	  MSG("\"abcd\"") ",\"max_completion_tokens\":null,\"max_tokens\":100}", 0, 0, 8, 100, 0, NULL },
	{ "max_tokens null is the default", CHAT, MSG("\"abcd\"") ",\"max_tokens\":null}", 0, 0, 8,
	  DEF_OUT, 0, NULL },
	{ "cap", CHAT, MSG("\"abcd\"") ",\"max_tokens\":5000}", 4096, 0, 8, 4096, 0, NULL },
	{ "cap the default", CHAT, MSG("\"abcd\"") "}", 100, 0, 8, 100, 0, NULL },
	{ "under the cap", CHAT, MSG("\"abcd\"") ",\"max_tokens\":4096}", 4096, 0, 8, 4096, 0, NULL },
	{ "huge max_tokens", CHAT, MSG("\"abcd\"") ",\"max_tokens\":9223372036854775807,\"n\":128}",
	  0, 0, 8, UINT64_MAX, 0, NULL },
	{ "n times max_tokens", CHAT, MSG("\"abcd\"") ",\"max_tokens\":100,\"n\":3}", 0, 0, 8, 300,
	  0, NULL },
	{ "n times the default", CHAT, MSG("\"abcd\"") ",\"n\":2}", 0, 0, 8, 2 * DEF_OUT, 0, NULL },
	{ "n capped", CHAT, MSG("\"abcd\"") ",\"max_tokens\":100,\"n\":3}", 250, 0, 8, 250, 0, NULL },
	{ "n one", CHAT, MSG("\"abcd\"") ",\"max_tokens\":100,\"n\":1}", 0, 0, 8, 100, 0, NULL },
	{ "stream true", CHAT, MSG("\"abcd\"") ",\"stream\":true}", 0, 0, 8, DEF_OUT, 1, NULL },
	{ "stream false", CHAT, MSG("\"abcd\"") ",\"stream\":false}", 0, 0, 8, DEF_OUT, 0, NULL },
	{ "stream null", CHAT, MSG("\"abcd\"") ",\"stream\":null}", 0, 0, 8, DEF_OUT, 0, NULL },
	{ "duplicate keys: the last wins", CHAT,
	  MSG("\"abcd\"") ",\"max_tokens\":1,\"max_tokens\":2}", 0, 0, 8, 2, 0, NULL },
	/* completions: ceil(chars / 4) + token ids, no per-message overhead */
	{ "prompt string", COMPL, "{\"prompt\":\"abcdefgh\"}", 0, 0, 2, DEF_OUT, 0, NULL },
	{ "prompt array", COMPL, "{\"prompt\":[\"abcd\",\"ef\"],\"max_tokens\":7}", 0, 0, 2, 7, 0, NULL },
	{ "prompt utf-8", COMPL, "{\"prompt\":\"abcd\xc3\xa9\"}", 0, 0, 2, DEF_OUT, 0, NULL },
	{ "prompt tokens", COMPL, "{\"prompt\":[1,2,3]}", 0, 0, 3, DEF_OUT, 0, NULL },
	{ "prompt token arrays", COMPL, "{\"prompt\":[[1,2,3],[4,5]]}", 0, 0, 5, DEF_OUT, 0, NULL },
	{ "prompt empty array", COMPL, "{\"prompt\":[]}", 0, 0, 0, DEF_OUT, 0, NULL },
	{ "completions stream", COMPL, "{\"prompt\":\"a\",\"stream\":true,\"n\":2,\"max_tokens\":9}",
	  0, 0, 1, 18, 1, NULL },
	{ "not an LLM call", TOKENS_API_NONE, "not json at all", 0, 0, 0, 0, 0, NULL },
	/* -EINVAL, each with a reason */
	{ "empty body", CHAT, "", 0, -EINVAL, 0, 0, 0, "empty" },
	{ "not JSON", CHAT, "hello", 0, -EINVAL, 0, 0, 0, "not valid JSON" },
	{ "cut JSON", CHAT, "{\"messages\":[", 0, -EINVAL, 0, 0, 0, "not valid JSON" },
	{ "data after JSON", CHAT, MSG("\"abcd\"") "} x", 0, -EINVAL, 0, 0, 0, "not valid JSON" },
	{ "bad UTF-8", CHAT, MSG("\"\xc3\"") "}", 0, -EINVAL, 0, 0, 0, "UTF-8" },
	{ "array body", CHAT, "[1,2]", 0, -EINVAL, 0, 0, 0, "must be a JSON object" },
	{ "string body", CHAT, "\"hi\"", 0, -EINVAL, 0, 0, 0, "must be a JSON object" },
	{ "number body", COMPL, "42", 0, -EINVAL, 0, 0, 0, "must be a JSON object" },
	{ "messages missing", CHAT, "{\"model\":\"m\"}", 0, -EINVAL, 0, 0, 0, "messages is required" },
	{ "messages empty", CHAT, "{\"messages\":[]}", 0, -EINVAL, 0, 0, 0, "must not be empty" },
	{ "messages not array", CHAT, "{\"messages\":\"hi\"}", 0, -EINVAL,
	  .err = "messages must be an array" },
	{ "messages null", CHAT, "{\"messages\":null}", 0, -EINVAL,
	  .err = "messages must be an array" },
	{ "message not object", CHAT, "{\"messages\":[{\"content\":\"a\"},\"hi\"]}", 0, -EINVAL,
	  .err = "messages[1] must be an object" },
	{ "content number", CHAT, MSG("5") "}", 0, -EINVAL, 0, 0, 0, "messages[0].content" },
	{ "part not object", CHAT, MSG("[\"abc\"]") "}", 0, -EINVAL,
	  .err = "messages[0].content[0] must be an object" },
	{ "part text not string", CHAT, MSG("[{\"type\":\"text\",\"text\":1}]") "}", 0, -EINVAL,
	  .err = "content[0].text must be a string" },
	{ "name not string", CHAT, "{\"messages\":[{\"content\":\"a\",\"name\":1}]}", 0, -EINVAL,
	  .err = "name must be a string" },
	{ "max_tokens negative", CHAT, MSG("\"abcd\"") ",\"max_tokens\":-1}", 0, -EINVAL,
	  .err = "max_tokens must be a non-negative integer" },
	{ "max_tokens float", CHAT, MSG("\"abcd\"") ",\"max_tokens\":100.0}", 0, -EINVAL,
	  .err = "max_tokens must be a non-negative integer" },
	{ "max_tokens string", CHAT, MSG("\"abcd\"") ",\"max_tokens\":\"100\"}", 0, -EINVAL,
	  .err = "max_tokens must be a non-negative integer" },
	{ "max_tokens bool", CHAT, MSG("\"abcd\"") ",\"max_tokens\":true}", 0, -EINVAL,
	  .err = "max_tokens must be a non-negative integer" },
	{ "max_tokens too big", CHAT, MSG("\"abcd\"") ",\"max_tokens\":99999999999999999999}", 0,
	  -EINVAL, 0, 0, 0, "number out of range" },
	{ "max_completion_tokens negative", CHAT,
	  MSG("\"abcd\"") ",\"max_tokens\":5,\"max_completion_tokens\":-5}", 0, -EINVAL,
	  .err = "max_completion_tokens must be a non-negative integer" },
	{ "n zero", CHAT, MSG("\"abcd\"") ",\"n\":0}", 0, -EINVAL, 0, 0, 0, "n must be an integer" },
	{ "n too many", CHAT, MSG("\"abcd\"") ",\"n\":129}", 0, -EINVAL,
	  .err = "n must be an integer" },
	{ "n float", CHAT, MSG("\"abcd\"") ",\"n\":2.0}", 0, -EINVAL, 0, 0, 0, "n must be an integer" },
	{ "stream string", CHAT, MSG("\"abcd\"") ",\"stream\":\"yes\"}", 0, -EINVAL,
	  .err = "stream must be a boolean" },
	{ "prompt missing", COMPL, "{\"max_tokens\":5}", 0, -EINVAL, 0, 0, 0, "prompt is required" },
	{ "prompt number", COMPL, "{\"prompt\":5}", 0, -EINVAL,
	  .err = "prompt must be a string or an array" },
	{ "prompt element", COMPL, "{\"prompt\":[\"a\",{}]}", 0, -EINVAL, 0, 0, 0, "prompt[1]" },
	{ "prompt token not integer", COMPL, "{\"prompt\":[[1,\"a\"]]}", 0, -EINVAL,
	  .err = "prompt[0][1]" },
	{ "chat body on completions", COMPL, MSG("\"abcd\"") "}", 0, -EINVAL,
	  .err = "prompt is required" },
};

/* Safe to put between the quotes of a JSON string as it is. */
static int plain_text(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

TEST(tokens_estimate_table)
{
	size_t i;

	for (i = 0; i < NELEM(est_cases); i++) {
		const struct est_case *c = &est_cases[i];
		struct tokens_estimate e;
		char err[256];
		int rc;

		memset(&e, 0xa5, sizeof(e));
		memcpy(err, "junk", 5);
		rc = tokens_estimate(c->api, c->body, strlen(c->body), DEF_OUT, c->max_output, &e,
				     err, sizeof(err));
		if (!CHECK(rc == c->rc, "%s: rc %d, want %d (%s)", c->name, rc, c->rc, err))
			continue;
		if (rc) {
			CHECK(strstr(err, c->err), "%s: error '%s' lacks '%s'", c->name, err, c->err);
			CHECK(plain_text(err), "%s: error '%s' needs escaping", c->name, err);
			CHECK(!e.input && !e.output && !e.stream, "%s: estimate not zeroed", c->name);
			continue;
		}
		CHECK(!err[0], "%s: error '%s' on success", c->name, err);
		CHECK(e.input == c->input, "%s: input %llu, want %llu", c->name,
		      (unsigned long long)e.input, (unsigned long long)c->input);
		CHECK(e.output == c->output, "%s: output %llu, want %llu", c->name,
		      (unsigned long long)e.output, (unsigned long long)c->output);
		CHECK(e.stream == c->stream, "%s: stream %d, want %d", c->name, e.stream, c->stream);
	}
}

/* Error buffers of any size, none at all, and a body that is not
 * NUL-terminated: the length is what counts. */
TEST(tokens_estimate_buffers)
{
	static const char body[] = MSG("\"abcd\"") ",\"max_tokens\":-1}TRAILING";
	size_t len = strlen(body) - strlen("TRAILING");
	struct tokens_estimate e;
	char err[8];

	CHECK_EQ(tokens_estimate(CHAT, body, len, DEF_OUT, 0, &e, NULL, 0), -EINVAL, "no buffer");
	memset(err, 'x', sizeof(err));
	CHECK_EQ(tokens_estimate(CHAT, body, len, DEF_OUT, 0, &e, err, sizeof(err)), -EINVAL,
		 "short buffer");
	CHECK(!strcmp(err, "max_tok"), "short buffer holds '%.8s'", err);
	CHECK_EQ(tokens_estimate(CHAT, body, len - 3, DEF_OUT, 0, &e, err, sizeof(err)),
		 -EINVAL, "cut body");
	CHECK_EQ(tokens_estimate(CHAT, NULL, 0, DEF_OUT, 0, &e, err, sizeof(err)), -EINVAL,
		 "NULL body");
}

/* jansson's nesting limit refuses a bomb instead of recursing through it. */
TEST(tokens_estimate_deep_nesting)
{
	size_t n = 200000, i;
	char *body = malloc(2 * n + 32), err[128];
	struct tokens_estimate e;
	struct tokens_usage u;
	size_t len;

	if (!CHECK(body, "malloc"))
		return;
	len = (size_t)sprintf(body, "{\"messages\":");
	for (i = 0; i < n; i++)
		body[len++] = '[';
	for (i = 0; i < n; i++)
		body[len++] = ']';
	body[len++] = '}';
	CHECK_EQ(tokens_estimate(CHAT, body, len, DEF_OUT, 0, &e, err, sizeof(err)), -EINVAL,
		 "deep body");
	CHECK(strstr(err, "nested too deeply"), "error '%s'", err);
	CHECK_EQ(tokens_usage_json(body, len, &u), -EINVAL, "deep response");
	free(body);
}

/* A large prompt is counted in one linear pass: 4 MiB of 'a' plus one
 * two-byte character in 1000 messages. */
TEST(tokens_estimate_large)
{
	size_t nmsg = 1000, per = 4096, i, len = 0;
	size_t cap = nmsg * (per + 64) + 64;
	char *body = malloc(cap), err[128];
	struct tokens_estimate e;

	if (!CHECK(body, "malloc"))
		return;
	len += (size_t)sprintf(body, "{\"messages\":[");
	for (i = 0; i < nmsg; i++) {
		len += (size_t)sprintf(body + len, "%s{\"role\":\"user\",\"content\":\"", i ? "," : "");
		memset(body + len, 'a', per - 1);
		len += per - 1;
		len += (size_t)sprintf(body + len, "\xc3\xa9\"}");
	}
	len += (size_t)sprintf(body + len, "]}");
	CHECK_EQ(tokens_estimate(CHAT, body, len, DEF_OUT, 0, &e, err, sizeof(err)), 0, "rc");
	CHECK_EQ(e.input, nmsg * per / 4 + nmsg * 4 + 3, "input");
	free(body);
}

struct usage_case {
	const char *name;
	const char *body;
	int rc;
	uint64_t prompt, completion;
};

static const struct usage_case usage_cases[] = {
	{ "found", "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
		   "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}",
	  0, 12, 34 },
	{ "no total", "{\"usage\":{\"completion_tokens\":3,\"prompt_tokens\":0}}", 0, 0, 3 },
	{ "large", "{\"usage\":{\"prompt_tokens\":4000000000,\"completion_tokens\":1}}", 0,
	  4000000000ULL, 1 },
	{ "missing", "{\"id\":\"x\",\"choices\":[]}", -ENOENT, 0, 0 },
	{ "usage null", "{\"usage\":null}", -ENOENT, 0, 0 },
	{ "usage not object", "{\"usage\":[12,34]}", -ENOENT, 0, 0 },
	{ "prompt missing", "{\"usage\":{\"completion_tokens\":34}}", -ENOENT, 0, 0 },
	{ "prompt null", "{\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":34}}", -ENOENT, 0, 0 },
	{ "float", "{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":34}}", -ENOENT, 0, 0 },
	{ "negative", "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":-3}}", -ENOENT, 0, 0 },
	{ "nested only", "{\"choices\":[{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}]}",
	  -ENOENT, 0, 0 },
	{ "array root", "[{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}]", -ENOENT, 0, 0 },
	{ "not JSON", "<html>502 Bad Gateway</html>", -EINVAL, 0, 0 },
	{ "cut JSON", "{\"usage\":{\"prompt_tokens\":1,", -EINVAL, 0, 0 },
	{ "empty", "", -EINVAL, 0, 0 },
};

TEST(tokens_usage_json_table)
{
	size_t i;

	for (i = 0; i < NELEM(usage_cases); i++) {
		const struct usage_case *c = &usage_cases[i];
		struct tokens_usage u;
		int rc;

		memset(&u, 0xa5, sizeof(u));
		rc = tokens_usage_json(c->body, strlen(c->body), &u);
		if (!CHECK(rc == c->rc, "%s: rc %d, want %d", c->name, rc, c->rc))
			continue;
		CHECK(u.found == !rc, "%s: found %d", c->name, u.found);
		CHECK(u.prompt == c->prompt && u.completion == c->completion,
		      "%s: usage %llu/%llu, want %llu/%llu", c->name, (unsigned long long)u.prompt,
		      (unsigned long long)u.completion, (unsigned long long)c->prompt,
		      (unsigned long long)c->completion);
	}
}

/* An OpenAI stream with stream_options.include_usage: a role chunk, five
 * content deltas, a keep-alive comment, the usage chunk, [DONE]. */
static const char openai_stream[] =
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
	"\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n"
	"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n"
	"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n"
	": keep-alive\n\n"
	"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"
	"event: message\n"
	"data:{\"choices\":[{\"delta\":{\"content\":\"usage\"}}],\"usage\":null}\n\n"
	"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"
	"data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":17,"
	"\"completion_tokens\":5,\"total_tokens\":22}}\n\n"
	"data: [DONE]\n\n";
#define OPENAI_EVENTS 7

struct sse_want {
	uint64_t events, prompt, completion;
	int done, found;
};

static int sse_check(const char *what, const struct sse_scan *s, const struct sse_want *w)
{
	return CHECK(s->events == w->events && s->done == w->done && s->usage.found == w->found &&
			     s->usage.prompt == w->prompt && s->usage.completion == w->completion,
		     "%s: events %llu done %d found %d usage %llu/%llu, want %llu %d %d %llu/%llu",
		     what, (unsigned long long)s->events, s->done, s->usage.found,
		     (unsigned long long)s->usage.prompt, (unsigned long long)s->usage.completion,
		     (unsigned long long)w->events, w->done, w->found,
		     (unsigned long long)w->prompt, (unsigned long long)w->completion);
}

/* Deterministic, so a failure reproduces. */
static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Feeds the stream whole, a byte at a time, and in 200 random splits (pieces
 * of 1 to 64 bytes, and of 1 to len bytes), checking each result. */
static void sse_all_splits(const char *name, const char *data, size_t len,
			   const struct sse_want *w)
{
	struct sse_scan s;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char what[96];
	size_t i, off, k;
	int round, ok;

	if (!CHECK(!sse_scan_init(&s), "%s: init", name))
		return;
	sse_scan_feed(&s, data, len);
	snprintf(what, sizeof(what), "%s whole", name);
	sse_check(what, &s, w);
	sse_scan_free(&s);

	if (!CHECK(!sse_scan_init(&s), "%s: init", name))
		return;
	for (i = 0; i < len; i++)
		sse_scan_feed(&s, data + i, 1);
	snprintf(what, sizeof(what), "%s byte by byte", name);
	sse_check(what, &s, w);
	sse_scan_free(&s);

	for (round = 0; round < 200; round++) {
		size_t maxpiece = round % 2 ? 64 : len;

		if (!CHECK(!sse_scan_init(&s), "%s: init", name))
			return;
		for (off = 0; off < len; off += k) {
			k = 1 + rng_next(&x) % maxpiece;
			if (k > len - off)
				k = len - off;
			sse_scan_feed(&s, data + off, k);
		}
		snprintf(what, sizeof(what), "%s random split %d", name, round);
		ok = sse_check(what, &s, w);
		sse_scan_free(&s);
		if (!ok)
			return;
	}
}

TEST(sse_openai_stream)
{
	struct sse_want w = { OPENAI_EVENTS, 17, 5, 1, 1 };

	sse_all_splits("openai", openai_stream, strlen(openai_stream), &w);
}

TEST(sse_crlf)
{
	size_t n = strlen(openai_stream), i, len = 0;
	char *crlf = malloc(2 * n);
	struct sse_want w = { OPENAI_EVENTS, 17, 5, 1, 1 };

	if (!CHECK(crlf, "malloc"))
		return;
	for (i = 0; i < n; i++) {
		if (openai_stream[i] == '\n')
			crlf[len++] = '\r';
		crlf[len++] = openai_stream[i];
	}
	sse_all_splits("crlf", crlf, len, &w);
	free(crlf);
}

TEST(sse_usage_null_not_found)
{
	static const char st[] =
		"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\": {\"}}],\"usage\":null}\n\n"
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":2}}\n\n"
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}\n\n"
		"data: [DONE]\n\n";
	struct sse_want w = { 4, 0, 0, 1, 0 };

	sse_all_splits("usage null", st, strlen(st), &w);
}

/* The scanner sees lines, not JSON validity: a data line is an event even
 * when it is not JSON, and [DONE] must be exactly that. A last line with no
 * LF is not yet a line. */
TEST(sse_line_forms)
{
	static const char st[] =
		"data:[DONE]x\n"
		"data:  [DONE]\n"
		"data: not json\n"
		"data\n"
		"dat: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n"
		"retry: 10\n"
		"\n\r\n"
		"data:[DONE]\r\n"
		"data: {\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":9}}";
	struct sse_want w = { 3, 0, 0, 1, 0 };

	sse_all_splits("line forms", st, strlen(st), &w);
}

/* A line over SSE_MAX_LINE is skipped whole, whatever it holds (here a
 * usage that would count); one of exactly SSE_MAX_LINE bytes is kept. */
static char *usage_line(size_t linelen, size_t *total)
{
	static const char head[] =
		"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"pad\":\"";
	static const char tail[] = "\"}\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n";
	size_t hl = strlen(head), pad = linelen - hl - 2, len = 0;
	char *b = malloc(linelen + sizeof(tail));

	if (!b)
		return NULL;
	memcpy(b, head, hl);
	len = hl;
	memset(b + len, 'p', pad);
	len += pad;
	memcpy(b + len, tail, sizeof(tail));
	*total = len + strlen(tail);
	return b;
}

TEST(sse_overlong_line)
{
	struct sse_want skipped = { 1, 0, 0, 1, 0 }, kept = { 2, 1, 2, 1, 1 };
	size_t len;
	char *b;

	b = usage_line(SSE_MAX_LINE + 1, &len);
	if (!CHECK(b, "malloc"))
		return;
	CHECK_EQ((char *)memchr(b, '\n', len) - b, SSE_MAX_LINE + 1, "overlong line length");
	sse_all_splits("overlong", b, len, &skipped);
	free(b);

	b = usage_line(SSE_MAX_LINE, &len);
	if (!CHECK(b, "malloc"))
		return;
	CHECK_EQ((char *)memchr(b, '\n', len) - b, SSE_MAX_LINE, "longest line length");
	sse_all_splits("longest", b, len, &kept);
	free(b);
}

/* Skipping lasts to the LF: the bytes past the limit are not a new line,
 * even when they look like one. */
TEST(sse_overlong_resync)
{
	static const char tail[] =
		"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n"
		"data: {\"choices\":[]}\n\ndata: [DONE]\n\n";
	struct sse_want w = { 1, 0, 0, 1, 0 };
	size_t pad = SSE_MAX_LINE + 1;
	char *b = malloc(pad + sizeof(tail));

	if (!CHECK(b, "malloc"))
		return;
	memset(b, 'x', pad);
	memcpy(b + pad, tail, sizeof(tail));
	sse_all_splits("resync", b, pad + strlen(tail), &w);
	free(b);
}

/* A usage once found stays: a later chunk with "usage": null or a broken
 * usage does not erase it, and a later complete one replaces it. */
TEST(sse_usage_kept)
{
	static const char st[] =
		"data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
		"data: {\"choices\":[],\"usage\":null}\n\n"
		"data: {\"usage\":{\"prompt_tokens\":9}}\n\n"
		"data: {\"usage\":\n\n";
	static const char st2[] =
		"data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
		"data: {\"choices\":[], \"usage\" :\t{\"prompt_tokens\":30,\"completion_tokens\":40}}\n\n";
	struct sse_want w = { 4, 3, 4, 0, 1 }, w2 = { 2, 30, 40, 0, 1 };

	sse_all_splits("usage kept", st, strlen(st), &w);
	sse_all_splits("usage replaced", st2, strlen(st2), &w2);
}

/* Random bytes, rich in LF, "data:" and "usage": nothing crashes (ASan and
 * UBSan watch), and no more events than lines. */
TEST(sse_garbage)
{
	static const char *const bits[] = { "\n", "\r\n", "data:", "data: ", "[DONE]", "\"usage\"",
					    "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":",
					    "}}", "\xff", "\0" };
	uint64_t x = 12345, lines;
	struct sse_scan s;
	char buf[1024];
	size_t len, k, off;
	int round;

	for (round = 0; round < 2000; round++) {
		len = 0;
		while (len < sizeof(buf) - 64) {
			uint64_t r = rng_next(&x);

			if (r % 3) {
				buf[len++] = (char)(r >> 8);
			} else {
				const char *b = bits[(r >> 8) % NELEM(bits)];
				size_t bl = *b ? strlen(b) : 1;

				memcpy(buf + len, b, bl);
				len += bl;
			}
			if (r % 97 == 0)
				break;
		}
		if (!CHECK(!sse_scan_init(&s), "init"))
			return;
		for (off = 0; off < len; off += k) {
			k = 1 + rng_next(&x) % 40;
			if (k > len - off)
				k = len - off;
			sse_scan_feed(&s, buf + off, k);
		}
		for (lines = 0, k = 0; k < len; k++)
			lines += buf[k] == '\n';
		if (!CHECK(s.events <= lines, "round %d: %llu events in %llu lines", round,
			   (unsigned long long)s.events, (unsigned long long)lines))
			return;
		sse_scan_free(&s);
	}
}

/* What a fuzzer or an error path may do: free a scanner whose init failed
 * (all zero), free twice, feed after free. */
TEST(sse_free_safe)
{
	struct sse_scan s;

	memset(&s, 0, sizeof(s));
	sse_scan_feed(&s, "data: x\n", 8);
	CHECK_EQ(s.events, 0, "events with no buffer");
	sse_scan_free(&s);
	sse_scan_free(&s);
	if (!CHECK(!sse_scan_init(&s), "init"))
		return;
	sse_scan_feed(&s, "data: x\ndata: y", 15);
	CHECK_EQ(s.events, 1, "events");
	sse_scan_free(&s);
	CHECK(s.line == NULL, "line not cleared by free");
	sse_scan_free(&s);
	sse_scan_feed(&s, "\n", 1);
	CHECK_EQ(s.events, 1, "a freed scanner counts nothing more");
	sse_scan_free(NULL);
}
