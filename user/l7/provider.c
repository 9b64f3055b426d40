// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * provider.c - limits learned from a backend's own answers (provider.h):
 * the headers' values, parsed strictly (a value not believed is ignored,
 * never turned into a cap of 0 or none), a cooldown per 429, and a token
 * bucket per kind (requests, tokens) rebuilt from every fresher report.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "provider.h"

/* --- values ------------------------------------------------------------------ */

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A decimal number "D+" or "D+.D+" at s[*i]; at most 15 integer digits (so
 * the double is exact) and any fraction (its first 9 digits count). */
static int decimal(const char *s, size_t n, size_t *i, double *out)
{
	double v = 0, scale = 1;
	size_t start = *i, digits = 0;

	while (*i < n && is_digit(s[*i])) {
		if (++digits > 15)
			return -1;
		v = v * 10 + (s[*i] - '0');
		(*i)++;
	}
	if (*i == start)
		return -1;
	if (*i < n && s[*i] == '.') {
		size_t fstart = ++(*i), fdigits = 0;

		while (*i < n && is_digit(s[*i])) {
			if (++fdigits <= 9) {
				scale /= 10;
				v += (s[*i] - '0') * scale;
			}
			(*i)++;
		}
		if (*i == fstart)
			return -1;
	}
	*out = v;
	return 0;
}

/* ns from a count of units, bounded by PROVIDER_WAIT_MAX_NS. */
static int to_ns(double v, double unit_ns, uint64_t *ns)
{
	double t = v * unit_ns;

	if (!(t >= 0) || t > (double)PROVIDER_WAIT_MAX_NS)
		return -1;
	*ns = (uint64_t)(t + 0.5);
	return 0;
}

int provider_parse_count(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	trim(&s, &n);
	if (!n || n > 16)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x > PROVIDER_COUNT_MAX)
		return -1;
	*v = x;
	return 0;
}

static const struct {
	const char *name;
	double ns;
	int rank;                          /* largest first, each once */
} units[] = {
	{ "h", 3600e9, 0 }, { "m", 60e9, 1 }, { "s", 1e9, 2 }, { "ms", 1e6, 3 },
	{ "us", 1e3, 4 }, { "\xc2\xb5s", 1e3, 4 }, { "\xce\xbcs", 1e3, 4 }, { "ns", 1, 5 },
};

int provider_parse_duration(const char *s, size_t n, uint64_t *ns)
{
	double total = 0;
	size_t i = 0;
	int rank = -1;

	trim(&s, &n);
	if (!n)
		return -1;
	for (size_t j = 0; j < n; j++)
		if (!is_digit(s[j]) && s[j] != '.')
			goto units;
	/* Plain seconds. */
	if (decimal(s, n, &i, &total) || i != n)
		return -1;
	return to_ns(total, 1e9, ns);
units:
	while (i < n) {
		double v;
		size_t u = i, k;

		if (decimal(s, n, &i, &v))
			return -1;
		u = i;
		while (i < n && !is_digit(s[i]) && s[i] != '.')
			i++;
		for (k = 0; k < sizeof(units) / sizeof(units[0]); k++)
			if (strlen(units[k].name) == i - u && !memcmp(units[k].name, s + u, i - u))
				break;
		if (k == sizeof(units) / sizeof(units[0]) || units[k].rank <= rank)
			return -1;
		rank = units[k].rank;
		total += v * units[k].ns;
		if (total > (double)PROVIDER_WAIT_MAX_NS)
			return -1;
	}
	return to_ns(total, 1, ns);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era;
	unsigned int yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned int)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int num2(const char *p, unsigned int *v)
{
	if (!is_digit(p[0]) || !is_digit(p[1]))
		return -1;
	*v = (unsigned int)((p[0] - '0') * 10 + (p[1] - '0'));
	return 0;
}

/* IMF-fixdate, the form RFC 9110 says senders use:
 * "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes). The weekday is not checked
 * against the date. */
static int http_date(const char *s, size_t n, int64_t *epoch_s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned int day, mon, hh, mm, ss, y1, y2;
	const char *m;

	if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
	    s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' ||
	    memcmp(s + 26, "GMT", 3))
		return -1;
	if (num2(s + 5, &day) || num2(s + 12, &y1) || num2(s + 14, &y2) || num2(s + 17, &hh) ||
	    num2(s + 20, &mm) || num2(s + 23, &ss))
		return -1;
	m = NULL;
	for (unsigned int i = 0; i < 12; i++)
		if (!memcmp(months + 3 * i, s + 8, 3))
			m = months + 3 * i;
	if (!m)
		return -1;
	mon = (unsigned int)(m - months) / 3 + 1;
	if (!day || day > mdays[mon - 1] || hh > 23 || mm > 59 || ss > 60 || y1 * 100 + y2 < 1970)
		return -1;
	*epoch_s = days_from_civil(y1 * 100 + y2, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
	return 0;
}

int provider_parse_retry_after(const char *s, size_t n, int64_t wall_s, uint64_t *ns)
{
	int64_t at;
	double v;
	size_t i = 0;

	trim(&s, &n);
	if (n && is_digit(s[0])) {
		if (decimal(s, n, &i, &v) || i != n)
			return -1;
		return to_ns(v, 1e9, ns);
	}
	if (http_date(s, n, &at))
		return -1;
	if (at <= wall_s) {
		*ns = 0;
		return 0;
	}
	return to_ns((double)(at - wall_s), 1e9, ns);
}

/* --- one response's headers ---------------------------------------------------- */

void provider_resp_init(struct provider_resp *r, int status)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
}

static int name_is(const char *name, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(name, lit, n);
}

int provider_resp_header(struct provider_resp *r, const char *name, size_t name_len,
			 const char *value, size_t value_len, int64_t wall_s)
{
	static const char *const kinds[PROV_KINDS] = { "requests", "tokens" };
	uint64_t v;
	double ms;
	size_t i = 0;

	if (name_is(name, name_len, "retry-after-ms")) {
		const char *s = value;
		size_t n = value_len;

		trim(&s, &n);
		if (decimal(s, n, &i, &ms) || i != n || to_ns(ms, 1e6, &v))
			goto bad;
		r->has_retry = r->retry_ms_seen = 1;
		r->retry_ns = v;
		return 1;
	}
	if (name_is(name, name_len, "retry-after")) {
		if (provider_parse_retry_after(value, value_len, wall_s, &v))
			goto bad;
		if (!r->retry_ms_seen) {
			r->has_retry = 1;
			r->retry_ns = v;
		}
		return 1;
	}
	if (name_len < 12 || strncasecmp(name, "x-ratelimit-", 12))
		return 0;
	for (int k = 0; k < PROV_KINDS; k++) {
		char full[48];

		snprintf(full, sizeof(full), "x-ratelimit-limit-%s", kinds[k]);
		if (name_is(name, name_len, full)) {
			/* A limit of 0 would be a cap of nothing: not believed. */
			if (provider_parse_count(value, value_len, &v) || !v)
				goto bad;
			r->has_limit[k] = 1;
			r->limit[k] = v;
			return 1;
		}
		snprintf(full, sizeof(full), "x-ratelimit-remaining-%s", kinds[k]);
		if (name_is(name, name_len, full)) {
			if (provider_parse_count(value, value_len, &v))
				goto bad;
			r->has_remaining[k] = 1;
			r->remaining[k] = v;
			return 1;
		}
		snprintf(full, sizeof(full), "x-ratelimit-reset-%s", kinds[k]);
		if (name_is(name, name_len, full)) {
			if (provider_parse_duration(value, value_len, &v))
				goto bad;
			r->has_reset[k] = 1;
			r->reset_ns[k] = v;
			return 1;
		}
	}
	return 0;
bad:
	r->bad++;
	return -1;
}

void provider_resp_parse(struct provider_resp *r, const struct http_response *resp,
			 int64_t wall_s)
{
	provider_resp_init(r, resp->status);
	for (unsigned int i = 0; i < resp->n_headers && i < HTTP_MAX_HEADERS; i++) {
		const struct http_header *h = &resp->headers[i];

		provider_resp_header(r, h->name.p, h->name.n, h->value.p, h->value.n, wall_s);
	}
}

/* --- budgets ------------------------------------------------------------------- */

/* Float slack: a level of 0.9999999 after refills is a whole unit. */
#define LEVEL_EPS 1e-6

/* Is b a cap at now? A budget without a rate ends at its reset. */
static int budget_active(const struct provider_budget *b, uint64_t now)
{
	return b->known && (b->rate > 0 || now < b->reset_at_ns);
}

static double budget_level(const struct provider_budget *b, uint64_t now)
{
	double lv = b->level;

	if (b->rate > 0 && now > b->at_ns) {
		lv += b->rate * (double)(now - b->at_ns);
		if (b->limit && lv > (double)b->limit)
			lv = (double)b->limit;
	}
	return lv;
}

/* When b admits cost (>= now), cost 0 always. */
static uint64_t budget_ready(const struct provider_budget *b, uint64_t now, uint64_t cost)
{
	double need = (double)cost, lv, wait;

	if (!cost || !budget_active(b, now))
		return now;
	if (b->limit && need > (double)b->limit)
		need = (double)b->limit;  /* bigger than the limit: once full */
	lv = budget_level(b, now);
	if (lv + LEVEL_EPS >= need)
		return now;
	if (b->rate <= 0)
		return b->reset_at_ns;
	wait = (need - lv - LEVEL_EPS) / b->rate + 1;
	if (wait > (double)PROVIDER_WAIT_MAX_NS)
		wait = (double)PROVIDER_WAIT_MAX_NS;
	return now + (uint64_t)wait;
}

static void budget_charge(struct provider_budget *b, uint64_t now, uint64_t cost)
{
	if (!b->known)
		return;
	if (!budget_active(b, now)) {
		b->known = 0;  /* past its reset, and no rate to refill it: forgotten */
		return;
	}
	b->level = budget_level(b, now) - (double)cost;
	b->at_ns = now;
}

void provider_init(struct provider *p)
{
	memset(p, 0, sizeof(*p));
}

static uint64_t cost_of(enum provider_kind k, uint64_t est_tokens)
{
	return k == PROV_REQUESTS ? 1 : est_tokens;
}

uint64_t provider_ready_at(const struct provider *p, uint64_t now, uint64_t est_tokens)
{
	uint64_t at = now;

	if (p->cooldown_until_ns > at)
		at = p->cooldown_until_ns;
	for (int k = 0; k < PROV_KINDS; k++) {
		uint64_t r = budget_ready(&p->b[k], now, cost_of(k, est_tokens));

		if (r > at)
			at = r;
	}
	return at;
}

int provider_can_send(const struct provider *p, uint64_t now, uint64_t est_tokens,
		      uint64_t *wait_ns)
{
	uint64_t at = provider_ready_at(p, now, est_tokens);

	*wait_ns = at - now;
	return at == now;
}

uint64_t provider_earliest(struct provider *const *ps, unsigned int n, uint64_t now,
			   uint64_t est_tokens, int *which)
{
	uint64_t best = UINT64_MAX;

	*which = -1;
	for (unsigned int i = 0; i < n; i++) {
		uint64_t at;

		if (!ps[i])
			continue;
		at = provider_ready_at(ps[i], now, est_tokens);
		if (at < best) {
			best = at;
			*which = (int)i;
		}
	}
	return best;
}

void provider_held(struct provider *p)
{
	p->st.held_back++;
}

void provider_sent(struct provider *p, uint64_t now, uint64_t est_tokens,
		   struct provider_ticket *t)
{
	p->seq++;
	p->inflight++;
	p->st.sent++;
	t->seq = p->seq;
	t->tokens = est_tokens;
	t->sent_ns = now;
	for (int k = 0; k < PROV_KINDS; k++) {
		uint64_t c = cost_of(k, est_tokens);

		p->sent_units[k] += c;
		t->cum[k] = p->sent_units[k];
		budget_charge(&p->b[k], now, c);
	}
}

/* A report of kind k from the request of ticket t. */
static int learn(struct provider *p, uint64_t now, const struct provider_ticket *t,
		 const struct provider_resp *r, int k)
{
	struct provider_budget *b = &p->b[k];
	uint64_t rem = r->remaining[k], limit, reset, after;
	double rate;

	if (budget_active(b, now) && t->seq < b->seq)
		return 0;  /* an older request's view: the budget is fresher */
	limit = r->has_limit[k] ? r->limit[k] : b->limit;
	if (limit && rem > limit)
		rem = limit;
	reset = r->has_reset[k] ? r->reset_ns[k] : PROVIDER_RESET_DEFAULT_NS;
	rate = b->limit == limit ? b->rate : 0;
	if (limit && rem < limit && r->has_reset[k] && reset)
		rate = (double)(limit - rem) / (double)reset;
	if (!limit)
		rate = 0;
	/* Sent after this request (in flight, or back without a report yet):
	 * the provider had not counted them in rem. */
	after = p->sent_units[k] - t->cum[k];
	b->known = 1;
	b->limit = limit;
	b->rate = rate;
	b->level = (double)rem - (double)after;
	b->at_ns = now;
	b->reset_at_ns = now + reset;
	b->seq = t->seq;
	return 1;
}

unsigned int provider_done(struct provider *p, uint64_t now, struct provider_ticket *t,
			   const struct provider_resp *r)
{
	unsigned int ev = 0;
	int reported = 0;

	if (!t->seq)
		return 0;
	if (p->inflight)
		p->inflight--;
	if (!r) {
		t->seq = 0;
		return 0;
	}
	p->st.responses++;
	p->st.bad_headers += r->bad;
	for (int k = 0; k < PROV_KINDS; k++) {
		if (!r->has_remaining[k])
			continue;
		reported = 1;
		if (learn(p, now, t, r, k))
			ev |= PROVIDER_EV_LEARNED;
	}
	p->st.reports += reported;

	if (r->status == 429) {
		p->st.seen_429++;
		ev |= PROVIDER_EV_429;
	} else if (r->status == 503 && r->has_retry) {
		p->st.seen_503_retry++;
	}
	if (r->status == 429 || (r->status == 503 && r->has_retry)) {
		uint64_t cool;

		if (r->has_retry) {
			cool = r->retry_ns;
			p->backoff = 0;   /* the provider's word: a guess starts over */
		} else {
			/* No word from the provider: back off, doubling only for
			 * requests sent after the last cooldown began (those in
			 * flight when it began were refused for the same reason). */
			if (!p->backoff || t->sent_ns > p->cooldown_from_ns)
				p->backoff++;
			if (p->backoff > 6)
				p->backoff = 6;
			cool = PROVIDER_BACKOFF_NS << (p->backoff - 1);
			if (cool > PROVIDER_BACKOFF_MAX_NS)
				cool = PROVIDER_BACKOFF_MAX_NS;
		}
		if (cool < PROVIDER_COOLDOWN_MIN_NS)
			cool = PROVIDER_COOLDOWN_MIN_NS;
		if (now >= p->cooldown_until_ns) {
			p->st.cooldowns++;
			p->cooldown_from_ns = now;
			ev |= PROVIDER_EV_COOLDOWN;
		}
		if (now + cool > p->cooldown_until_ns)
			p->cooldown_until_ns = now + cool;
	} else if (r->status >= 200 && r->status < 300) {
		p->backoff = 0;
	}
	t->seq = 0;
	return ev;
}

int64_t provider_remaining(const struct provider *p, uint64_t now, enum provider_kind k)
{
	double lv;

	if (k >= PROV_KINDS || !budget_active(&p->b[k], now))
		return -1;
	lv = budget_level(&p->b[k], now);
	return lv < 0 ? 0 : (int64_t)(lv + LEVEL_EPS);
}

uint64_t provider_cooldown_left(const struct provider *p, uint64_t now)
{
	return p->cooldown_until_ns > now ? p->cooldown_until_ns - now : 0;
}
