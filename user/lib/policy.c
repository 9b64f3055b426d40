// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include "classifier.h"
#include "policy.h"
#include "util.h"

static int list_push(struct entry_list *l, const struct list_entry *le)
{
	if (array_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 64))
		return -ENOMEM;
	l->v[l->n++] = *le;
	return 0;
}

static struct list_entry *list_find(struct entry_list *l, const struct prefix *pfx)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].state != ENTRY_DELETED && prefix_equal(&l->v[i].pfx, pfx))
			return &l->v[i];
	return NULL;
}

int policy_entry_live(const struct list_entry *le)
{
	return le->state != ENTRY_DELETED;
}

/* Reads an LPM list. `val` receives each value (val_size bytes). */
static int load_list(int fd, struct entry_list *l, size_t val_size, __u64 now)
{
	struct sluice_lpm_key k, next;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct list_entry le = {};

		if (val_size && bpf_map_lookup_elem(fd, &next, &le.deny))
			goto skip; /* deleted under us (an expired ban) */
		prefix_from_lpm(&next, &le.pfx);
		le.state = ENTRY_LOADED;
		/* An expired ban is removed by this transaction's commit. */
		if (val_size && le.deny.expires_ns && le.deny.expires_ns <= now)
			le.state = ENTRY_DELETED;
		if (list_push(l, &le))
			return -ENOMEM;
skip:
		k = next;
		prev = &k;
	}
	return errno == ENOENT ? 0 : -errno;
}

int policy_load(struct policy *p, const struct sluice_maps *m)
{
	__u32 slot, zero = 0;
	int err;

	memset(p, 0, sizeof(*p));
	p->now_ns = monotonic_ns();
	if (bpf_map_lookup_elem(m->cfg, &zero, &p->cfg)) {
		err = -errno;
		pr_err("read config map: %s", strerror(-err));
		return err;
	}
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		if (bpf_map_lookup_elem(m->rules, &slot, &p->rules[slot])) {
			err = -errno;
			pr_err("read rule slot %u: %s", slot, strerror(-err));
			return err;
		}
	}
	err = load_list(m->allow, &p->allow, 0, p->now_ns);
	if (!err)
		err = load_list(m->deny, &p->deny, sizeof(struct sluice_deny_val), p->now_ns);
	if (err) {
		pr_err("read allow/deny lists: %s", strerror(-err));
		policy_free(p);
	}
	return err;
}

void policy_free(struct policy *p)
{
	free(p->allow.v);
	free(p->deny.v);
	p->allow.v = p->deny.v = NULL;
	p->allow.n = p->deny.n = p->allow.cap = p->deny.cap = 0;
}

int policy_rule_live(const struct policy *p, int slot)
{
	return (p->rules[slot].flags & SLUICE_RULE_IN_USE) && p->rule_state[slot] != ENTRY_DELETED;
}

int policy_rule_find(const struct policy *p, const char *id_or_name)
{
	char *end;
	unsigned long id = strtoul(id_or_name, &end, 10);
	int by_id = *id_or_name && !*end;
	int slot;

	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		if (!policy_rule_live(p, slot))
			continue;
		if (by_id ? p->rules[slot].id == id
			  : !strncmp(p->rules[slot].name, id_or_name, SLUICE_NAME_LEN))
			return slot;
	}
	return -1;
}

int policy_rule_add(struct policy *p, const struct sluice_rule *r, __u32 *id, struct errbuf *e)
{
	int slot;

	if (r->name[0] && policy_rule_find(p, r->name) >= 0)
		return errf(e, -EEXIST, "a rule named '%s' exists already", r->name);
	/* A slot freed in this same transaction is not reused before commit,
	 * so packets never see a new rule under the old classifier. */
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
		if (!(p->rules[slot].flags & SLUICE_RULE_IN_USE) && p->rule_state[slot] != ENTRY_DELETED)
			break;
	if (slot == SLUICE_MAX_RULES)
		return errf(e, -ENOSPC, "the rule table is full (%d rules): delete one first",
			    SLUICE_MAX_RULES);
	if (!p->cfg.next_rule_id)
		p->cfg.next_rule_id = 1;
	p->rules[slot] = *r;
	p->rules[slot].id = (__u32)p->cfg.next_rule_id++;
	p->rules[slot].flags |= SLUICE_RULE_IN_USE;
	p->rule_state[slot] = ENTRY_ADDED;
	p->rules_changed = 1;
	if (id)
		*id = p->rules[slot].id;
	return 0;
}

int policy_rule_del(struct policy *p, const char *id_or_name, struct errbuf *e)
{
	int slot = policy_rule_find(p, id_or_name);

	if (slot < 0)
		return errf(e, -ENOENT, "no rule with id or name '%s' (see sluice rule list)",
			    id_or_name);
	p->rule_state[slot] = ENTRY_DELETED;
	p->rules_changed = 1;
	return 0;
}

int policy_allow_add(struct policy *p, const struct prefix *pfx, struct errbuf *e)
{
	struct list_entry le = { .pfx = *pfx, .state = ENTRY_ADDED };
	char buf[PREFIX_STRLEN];

	if (list_find(&p->allow, pfx))
		return errf(e, -EEXIST, "%s is already on the allow list",
			    prefix_str(pfx, buf, sizeof(buf)));
	if (list_push(&p->allow, &le))
		return errf(e, -ENOMEM, "out of memory");
	return 0;
}

int policy_allow_del(struct policy *p, const struct prefix *pfx, struct errbuf *e)
{
	struct list_entry *le = list_find(&p->allow, pfx);
	char buf[PREFIX_STRLEN];

	if (!le)
		return errf(e, -ENOENT, "%s is not on the allow list",
			    prefix_str(pfx, buf, sizeof(buf)));
	le->state = ENTRY_DELETED;
	return 0;
}

static int deny_add(struct policy *p, const struct prefix *pfx, __u64 timeout_s, __u32 kind,
		    __u32 rule_id, struct errbuf *e)
{
	struct list_entry le = { .pfx = *pfx, .state = ENTRY_ADDED };
	struct list_entry *old = list_find(&p->deny, pfx);

	if (old)
		old->state = ENTRY_DELETED; /* replaced; the add below rewrites it */
	le.deny.kind = kind;
	le.deny.rule_id = rule_id;
	le.deny.created_ns = p->now_ns;
	le.deny.expires_ns = timeout_s ? p->now_ns + timeout_s * 1000000000ULL : 0;
	le.deny.prefix_len = pfx->len;
	if (list_push(&p->deny, &le))
		return errf(e, -ENOMEM, "out of memory");
	return 0;
}

int policy_deny_add(struct policy *p, const struct prefix *pfx, __u64 timeout_s,
		    struct errbuf *e)
{
	return deny_add(p, pfx, timeout_s, SLUICE_DENY_STATIC, 0, e);
}

int policy_ban_add(struct policy *p, const struct prefix *pfx, __u64 timeout_s, __u32 rule_id,
		   struct errbuf *e)
{
	return deny_add(p, pfx, timeout_s, SLUICE_DENY_BAN, rule_id, e);
}

int policy_deny_del(struct policy *p, const struct prefix *pfx, struct errbuf *e)
{
	struct list_entry *le = list_find(&p->deny, pfx);
	char buf[PREFIX_STRLEN];

	if (!le)
		return errf(e, -ENOENT, "%s is not on the deny list",
			    prefix_str(pfx, buf, sizeof(buf)));
	le->state = ENTRY_DELETED;
	return 0;
}

/* Deleted entries first, so a replaced deny entry's add survives. */
static int commit_list(int fd, struct entry_list *l, int with_val, const char *what)
{
	struct sluice_allow_val av = {};
	struct sluice_lpm_key k;
	size_t i;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < l->n; i++) {
			struct list_entry *le = &l->v[i];

			prefix_to_lpm(&le->pfx, 0, &k);
			if (pass == 0 && le->state == ENTRY_DELETED) {
				if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
					goto fail;
			} else if (pass == 1 && le->state == ENTRY_ADDED) {
				av.created_ns = le->deny.created_ns;
				if (bpf_map_update_elem(fd, &k, with_val ? (void *)&le->deny
									 : (void *)&av, BPF_ANY))
					goto fail;
			}
		}
	}
	return 0;
fail:
	{
		int err = -errno;
		char buf[PREFIX_STRLEN];

		pr_err("update %s list (%s): %s%s", what, prefix_str(&l->v[i].pfx, buf, sizeof(buf)),
		       strerror(-err), err == -ENOSPC || err == -E2BIG ? " (the list is full)" : "");
		return err;
	}
}

static int zero_rule_stats(int fd, __u32 slot)
{
	size_t n = (size_t)maps_ncpus();
	struct sluice_rule_stats *z = calloc(n, sizeof(*z));
	int err = 0;

	if (!z)
		return -ENOMEM;
	if (bpf_map_update_elem(fd, &slot, z, BPF_ANY))
		err = -errno;
	free(z);
	return err;
}

/* Drop the deleted rules' entries of a map keyed by struct sluice_bucket_key
 * (their buckets, their connection counts) so the memory goes back to the
 * table. Returns how many it deleted. */
static __u64 delete_buckets(int fd, const __u32 *ids, unsigned int nids)
{
	struct sluice_bucket_key k, next, *doomed = NULL;
	size_t n = 0, cap = 0, i;
	void *prev = NULL;
	unsigned int j;
	__u64 deleted = 0;

	if (!nids)
		return 0;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		for (j = 0; j < nids; j++) {
			if (next.rule_id != ids[j])
				continue;
			if (array_grow(&doomed, &cap, n + 1, sizeof(*doomed), 256))
				goto out;
			doomed[n++] = next;
		}
		k = next;
		prev = &k;
	}
	for (i = 0; i < n; i++)
		if (!bpf_map_delete_elem(fd, &doomed[i]))
			deleted++; /* else ENOENT: the LRU took it first */
out:
	free(doomed);
	return deleted;
}

static int commit_rules(struct policy *p, const struct sluice_maps *m)
{
	struct sluice_rule empty = {};
	__u32 deleted_ids[SLUICE_MAX_RULES];
	unsigned int ndeleted = 0;
	struct classifier *c;
	int live[SLUICE_MAX_RULES];
	__u32 slot, zero = 0;
	int gen, err;

	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		live[slot] = policy_rule_live(p, (int)slot);
		if (p->rule_state[slot] != ENTRY_ADDED)
			continue;
		err = zero_rule_stats(m->rstats, slot);
		if (!err && bpf_map_update_elem(m->rules, &slot, &p->rules[slot], BPF_ANY))
			err = -errno;
		if (err) {
			pr_err("write rule %u: %s", p->rules[slot].id, strerror(-err));
			return err;
		}
	}

	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	classifier_compile(c, p->rules, live);
	gen = !(p->cfg.active_gen & 1);
	err = classifier_write(c, gen, m->ports, m->protos, m->srcs);
	if (!err) {
		p->cfg.any_src_mask[gen] = c->any_src;
		p->cfg.active_gen = (__u32)gen;
		/* The flip: from here packets use the new rule set. */
		if (bpf_map_update_elem(m->cfg, &zero, &p->cfg, BPF_ANY)) {
			err = -errno;
			pr_err("write config: %s", strerror(-err));
		}
	}
	free(c);
	if (err)
		return err;

	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		if (p->rule_state[slot] != ENTRY_DELETED || !(p->rules[slot].flags & SLUICE_RULE_IN_USE))
			continue;
		deleted_ids[ndeleted++] = p->rules[slot].id;
		if (bpf_map_update_elem(m->rules, &slot, &empty, BPF_ANY)) {
			err = -errno;
			pr_err("clear rule slot %u: %s", slot, strerror(-err));
			return err;
		}
	}
	if (ndeleted) {
		p->cfg.state_deleted += delete_buckets(m->buckets, deleted_ids, ndeleted);
		/* Their connection counts too: a connection that still holds
		 * one finds it gone when it closes, and lets it be. */
		delete_buckets(m->conns, deleted_ids, ndeleted);
		if (bpf_map_update_elem(m->cfg, &zero, &p->cfg, BPF_ANY)) {
			err = -errno;
			pr_err("write config: %s", strerror(-err));
			return err;
		}
	}
	return 0;
}

int policy_commit(struct policy *p, const struct sluice_maps *m)
{
	__u32 zero = 0;
	int err = 0;

	if (p->rules_changed) {
		err = commit_rules(p, m); /* writes the settings with the flip */
	} else if (p->cfg_changed && bpf_map_update_elem(m->cfg, &zero, &p->cfg, BPF_ANY)) {
		err = -errno;
		pr_err("write config: %s", strerror(-err));
	}
	if (!err)
		err = commit_list(m->allow, &p->allow, 0, "allow");
	if (!err)
		err = commit_list(m->deny, &p->deny, 1, "deny");
	return err;
}

const char *policy_rule_name(const struct policy *p, __u32 id)
{
	int slot;

	for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
		if (policy_rule_live(p, slot) && p->rules[slot].id == id)
			return p->rules[slot].name;
	return "";
}
