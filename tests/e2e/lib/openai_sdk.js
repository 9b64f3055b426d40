// tests/e2e/lib/openai_sdk.js - the official `openai` Node SDK (v4) as the
// client of sluice-l7, for tests/e2e/l7_sdk.sh. It does what an application
// does and records what the SDK itself concluded, plus every HTTP exchange
// seen through the SDK's `fetch` option (status, the headers that drive its
// retries, time sent), so the suite can check that the SDK honoured them.
// Prints one JSON object on stdout.
//
// Usage: node openai_sdk.js SDK_DIR BASE_URL KEY_SMALL_RPM KEY_SMALL_TPM
'use strict';

const [sdkDir, baseURL, keyRpm, keyTpm] = process.argv.slice(2);
const OpenAI = require(require.resolve('openai', { paths: [sdkDir] }));
// openai@4's own dependency, installed beside it
const nodeFetch = require(require.resolve('node-fetch', { paths: [sdkDir] }));

const t0 = Date.now();
const exchanges = [];

// The SDK's own fetch (node-fetch), with each answer written down.
function recordingFetch(url, init) {
	const sent = Date.now() - t0;
	return nodeFetch(url, init).then((r) => {
		exchanges.push({
			sent_ms: sent,
			status: r.status,
			retry_after_ms: r.headers.get('retry-after-ms'),
			should_retry: r.headers.get('x-should-retry'),
			request_id: r.headers.get('x-request-id'),
		});
		return r;
	});
}

function client(apiKey, maxRetries) {
	return new OpenAI({ apiKey, baseURL, maxRetries, timeout: 15000, fetch: recordingFetch });
}

function errInfo(e) {
	return {
		class: e && e.constructor ? e.constructor.name : String(e),
		status: e.status ?? null,
		code: e.code ?? null,
		type: e.type ?? null,
		retry_after_ms: e.headers ? e.headers['retry-after-ms'] ?? null : null,
		should_retry: e.headers ? e.headers['x-should-retry'] ?? null : null,
		request_id: e.headers ? e.headers['x-request-id'] ?? null : null,
		message: e.message,
	};
}

async function main() {
	const out = {};
	const messages = [{ role: 'user', content: 'hello through sluice-l7' }];
	const noRetry = client(keyRpm, 0);

	// 1. A chat completion, with the response's headers.
	{
		const { data, response } = await noRetry.chat.completions
			.create({ model: 'm', messages, max_tokens: 5 })
			.withResponse();
		out.chat = {
			content: data.choices[0].message.content,
			completion_tokens: data.usage ? data.usage.completion_tokens : null,
			limit_requests: response.headers.get('x-ratelimit-limit-requests'),
			remaining_requests: response.headers.get('x-ratelimit-remaining-requests'),
			limit_tokens: response.headers.get('x-ratelimit-limit-tokens'),
			remaining_tokens: response.headers.get('x-ratelimit-remaining-tokens'),
		};
	}

	// 2. Streaming: chunks as they come, the usage chunk at the end.
	{
		const stream = await noRetry.chat.completions.create({
			model: 'm', messages, max_tokens: 4, stream: true,
			stream_options: { include_usage: true },
		});
		let text = '', chunks = 0, usage = null;
		for await (const ch of stream) {
			chunks++;
			if (ch.choices && ch.choices[0] && ch.choices[0].delta.content)
				text += ch.choices[0].delta.content;
			if (ch.usage)
				usage = ch.usage;
		}
		out.stream = { chunks, text, completion_tokens: usage ? usage.completion_tokens : null };
	}

	// 3. The key's rpm is spent: the SDK (no retries) reports the 429.
	try {
		await noRetry.chat.completions.create({ model: 'm', messages, max_tokens: 5 });
		out.limited = { class: 'none' };
	} catch (e) {
		out.limited = errInfo(e);
	}

	// 4. One retry allowed: the SDK waits retry-after-ms, and the retry is
	// admitted.
	{
		const before = exchanges.length;
		const start = Date.now();
		try {
			const r = await client(keyRpm, 1).chat.completions.create({
				model: 'm', messages, max_tokens: 5,
			});
			out.retried = { ok: true, content: r.choices[0].message.content };
		} catch (e) {
			out.retried = { ok: false, error: errInfo(e) };
		}
		out.retried.elapsed_ms = Date.now() - start;
		out.retried.exchanges = exchanges.slice(before);
	}

	// 5. Larger than the key's token limit: an error the SDK does not retry,
	// although it may (maxRetries 2).
	{
		const before = exchanges.length;
		try {
			await client(keyTpm, 2).chat.completions.create({
				model: 'm', messages, max_tokens: 5000,
			});
			out.too_large = { class: 'none' };
		} catch (e) {
			out.too_large = errInfo(e);
		}
		out.too_large.exchanges = exchanges.slice(before);
	}
	out.total_ms = Date.now() - t0;
	return out;
}

main().then(
	(o) => process.stdout.write(JSON.stringify(o) + '\n'),
	(e) => {
		process.stdout.write(JSON.stringify({ fatal: errInfo(e) }) + '\n');
		process.exitCode = 1;
	},
);
