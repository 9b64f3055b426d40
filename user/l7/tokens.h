/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tokens.h - LLM token accounting for sluice-l7: an estimate before a
 * request is admitted, and the backend's own count (`usage`) after, from a
 * JSON response or from the final events of a server-sent-event stream.
 * JSON is parsed with jansson. Pure functions, fuzzed with the HTTP parser.
 *
 * The estimate for OpenAI-style APIs:
 *   /v1/chat/completions: every messages[].content string (or the "text" of
 *     each content part when content is an array), plus "name" strings;
 *   /v1/completions: "prompt", a string or an array of strings;
 *   input  = ceil(characters / TOKENS_CHARS_PER_TOKEN)
 *            + TOKENS_PER_MESSAGE per message + TOKENS_PER_REPLY (chat)
 *   output = "max_completion_tokens", else "max_tokens", else the default;
 *            never more than max_output (the reservation is capped there).
 * "characters" counts UTF-8 code points. Other paths are not LLM calls: no
 * tokens, counted as requests only.
 */
#ifndef SLUICE_L7_TOKENS_H
#define SLUICE_L7_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#define TOKENS_CHARS_PER_TOKEN 4
#define TOKENS_PER_MESSAGE 4
#define TOKENS_PER_REPLY 3

enum tokens_api {
	TOKENS_API_NONE = 0,     /* not an LLM endpoint */
	TOKENS_API_CHAT,         /* /v1/chat/completions */
	TOKENS_API_COMPLETIONS,  /* /v1/completions */
};

/* The API of a request target (the query string is ignored). */
enum tokens_api tokens_api_of(const char *target, size_t len);

struct tokens_estimate {
	uint64_t input;          /* prompt tokens, estimated */
	uint64_t output;         /* reserved for the completion */
	int stream;              /* "stream": true */
};

/*
 * Estimates a request body of the given API. default_output is used when
 * the request names no maximum; max_output caps the reservation (0 = no
 * cap). Returns 0, or -EINVAL with a reason in err (for the client's 400):
 * the body is not JSON, not an object, lacks messages/prompt, or has a
 * field of the wrong type (max_tokens not a non-negative integer, ...).
 */
int tokens_estimate(enum tokens_api api, const char *body, size_t len, uint64_t default_output,
		    uint64_t max_output, struct tokens_estimate *out, char *err, size_t errlen);

/* What the backend counted. */
struct tokens_usage {
	uint64_t prompt;         /* usage.prompt_tokens */
	uint64_t completion;     /* usage.completion_tokens */
	int found;               /* a usage object with both numbers was seen */
};

/* From a complete JSON response body: 0 when found, -ENOENT when the body
 * has no usage, -EINVAL when it is not JSON. */
int tokens_usage_json(const char *body, size_t len, struct tokens_usage *u);

/*
 * A server-sent-event stream scanner (text/event-stream): fed the response
 * payload in arbitrary pieces, it splits events at blank lines, and parses
 * the JSON of every "data:" line that mentions "usage" (the final chunk of
 * an OpenAI stream with stream_options.include_usage). It also counts the
 * data events other than "[DONE]" (`events`): with no usage in the stream,
 * that is the proxy's fallback count of output tokens (one per delta).
 * A line longer than SSE_MAX_LINE is skipped, not buffered.
 */
#define SSE_MAX_LINE 65536

struct sse_scan {
	char *line;              /* SSE_MAX_LINE bytes, owned */
	size_t len;
	int skipping;            /* inside an overlong line */
	uint64_t events;         /* data events, "[DONE]" excluded */
	int done;                /* "data: [DONE]" seen */
	struct tokens_usage usage;
};

int sse_scan_init(struct sse_scan *s);  /* 0 or -ENOMEM */
void sse_scan_feed(struct sse_scan *s, const char *data, size_t n);
void sse_scan_free(struct sse_scan *s);

#endif
