/* Recipients to targets, and one outcome per message (see route.h). */
#include "route-private.h"

#include "conf/conf.h"
#include "crypto/crypto.h"
#include "mailauth/mailauth.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ROUTE_MEMORY_MAX (1u << 20)

struct route *
route_create(const struct route_settings *settings)
{
	struct route *r = xcalloc(1, sizeof(*r));

	r->set = *settings;
	r->data_dir = xstrdup(settings->data_dir);
	r->hostname = xstrdup(settings->hostname != NULL ? settings->hostname
							 : "localhost");
	r->set.data_dir = r->data_dir;
	r->set.hostname = r->hostname;
	if (r->set.max_forward_targets == 0)
		r->set.max_forward_targets = 10;
	r->memory = route_memory_create(ROUTE_MEMORY_MAX);
	/* Read here rather than passed in: the setting only chooses the
	 * reply, and nothing else in the MX needs it. */
	r->quota_permanent = conf_bool("smtp_quota_permanent");
	pthread_mutex_init(&r->pool_lock, NULL);
	r->keyring = account_keyring_create();
	return r;
}

void
route_destroy(struct route **route)
{
	struct route *r = *route;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->pool_count; i++)
		account_db_close(&r->pool[i]);
	free(r->pool);
	pthread_mutex_destroy(&r->pool_lock);
	account_keyring_destroy(&r->keyring);
	route_memory_destroy(&r->memory);
	free(r->data_dir);
	free(r->hostname);
	free(r);
	*route = NULL;
}

/* A control-plane handle for this thread's call; back with route_db_put. */
struct account_db *
route_db_get(struct route *r)
{
	struct account_db *db = NULL;
	const char *error;

	pthread_mutex_lock(&r->pool_lock);
	if (r->pool_count > 0)
		db = r->pool[--r->pool_count];
	pthread_mutex_unlock(&r->pool_lock);
	if (db == NULL &&
	    account_db_open(r->data_dir, 0, &db, &error) != ACCOUNT_OK) {
		log_error(NULL, "route: control plane: %s", error);
		return NULL;
	}
	return db;
}

void
route_db_put(struct route *r, struct account_db *db)
{
	pthread_mutex_lock(&r->pool_lock);
	if (r->pool_count == r->pool_cap) {
		r->pool_cap = r->pool_cap == 0 ? 4 : r->pool_cap * 2;
		r->pool = xrealloc(r->pool, r->pool_cap * sizeof(*r->pool));
	}
	r->pool[r->pool_count++] = db;
	pthread_mutex_unlock(&r->pool_lock);
}

/* ---- transactions -------------------------------------------------------- */

struct route_tx *
route_tx_create(const char *mail_from, const char *helo, const char *remote_ip,
		bool eightbit, bool smtputf8)
{
	struct route_tx *tx = xcalloc(1, sizeof(*tx));

	tx->mail_from = xstrdup(mail_from);
	tx->helo = xstrdup(helo != NULL ? helo : "");
	tx->remote_ip = xstrdup(remote_ip != NULL ? remote_ip : "");
	tx->eightbit = eightbit;
	tx->smtputf8 = smtputf8;
	tx->arrival = clock_now();
	return tx;
}

void
route_tx_destroy(struct route_tx **txp)
{
	struct route_tx *tx = *txp;

	if (tx == NULL)
		return;
	for (size_t i = 0; i < tx->rcpt_count; i++)
		free(tx->rcpts[i]);
	free(tx->rcpts);
	for (size_t i = 0; i < tx->alias_count; i++)
		account_alias_free(&tx->aliases[i]);
	free(tx->aliases);
	for (size_t i = 0; i < tx->target_count; i++) {
		free(tx->targets[i].value);
		free(tx->targets[i].original_rcpt);
	}
	free(tx->targets);
	free(tx->mail_from);
	free(tx->helo);
	free(tx->remote_ip);
	free(tx);
	*txp = NULL;
}

size_t
route_tx_rcpt_count(const struct route_tx *tx)
{
	return tx->rcpt_count;
}

void
route_tx_describe(const struct route_tx *tx, struct sp_buf *out)
{
	sp_buf_printf(out, "from=<%s> to=", tx->mail_from);
	for (size_t i = 0; i < tx->rcpt_count; i++)
		sp_buf_printf(out, "%s<%s>", i > 0 ? "," : "", tx->rcpts[i]);
}

char *
route_address_with_tag(const char *address, const char *tag)
{
	const char *at = strrchr(address, '@');

	if (tag == NULL || tag[0] == '\0' || at == NULL)
		return xstrdup(address);
	return xasprintf("%.*s+%s%s", (int)(at - address), address, tag, at);
}

static bool
target_exists(const struct route_tx *tx, enum account_target_kind kind,
	      const char *value, const struct account_alias *alias)
{
	for (size_t i = 0; i < tx->target_count; i++) {
		const struct route_target *t = &tx->targets[i];

		if (t->kind != kind)
			continue;
		if (kind == ACCOUNT_TARGET_MAILBOX
			    ? alias != NULL &&
				      strcmp(t->alias->mailbox_id,
					     alias->mailbox_id) == 0
			    : strcasecmp(t->value, value) == 0)
			return true;
	}
	return false;
}

static void
add_targets(struct route *r, struct route_tx *tx,
	    const struct account_alias *alias, const char *rcpt)
{
	unsigned forwards = 0;

	for (size_t i = 0; i < alias->target_count; i++) {
		const struct account_target *at = &alias->targets[i];
		struct route_target *t;
		char *value;

		if (at->kind == ACCOUNT_TARGET_FORWARD) {
			if (forwards >= r->set.max_forward_targets)
				continue;
			forwards++;
			value = route_address_with_tag(at->value,
						       alias->plus_tag);
		} else {
			value = xstrdup(at->value);
		}
		if (target_exists(tx, at->kind, value, alias)) {
			free(value);
			continue;
		}
		tx->targets = xrealloc(tx->targets,
				       (tx->target_count + 1) *
					       sizeof(*tx->targets));
		t = &tx->targets[tx->target_count++];
		t->kind = at->kind;
		t->value = value;
		t->original_rcpt = xstrdup(rcpt);
		t->alias = alias;
	}
}

static void
tx_add_rcpt(struct route_tx *tx, const char *address)
{
	tx->rcpts = xrealloc(tx->rcpts, (tx->rcpt_count + 1) *
						sizeof(*tx->rcpts));
	tx->rcpts[tx->rcpt_count++] = xstrdup(address);
}

/* ---- storage limits ------------------------------------------------------ */

/* The MX holds no key that opens a mailbox, so it cannot count message
 * sizes the way IMAP QUOTA and APPEND do (store_mailbox_usage: the sum of
 * messages.size). What it can see without the key:
 *   - the spool, exactly: each sealed file is the message as received plus
 *     CRYPTO_SEAL_OVERHEAD, so its size minus the overhead is what the
 *     message will count once a session files it into INBOX;
 *   - the mailbox file and its -wal, as sizes on disk. That is an estimate:
 *     bodies are stored deflated (smaller than their size) while the
 *     search index, the decoded text and SQLite's pages and free pages add
 *     to it, and pages written since the last checkpoint are in the -wal
 *     as well as in the file. The -wal only exists while a session has the
 *     mailbox open (SQLite removes it when the last connection closes), so
 *     for the usual case, mail arriving while nobody is logged in, the
 *     estimate is the file alone.
 * Other estimates were weighed: the file alone (misses mail not yet
 * checkpointed) and a usage figure recorded by sessions in the control
 * plane (exact at logout but stale as soon as the owner deletes mail, and
 * a second copy of each mailbox's size to keep right). The on-disk size is
 * what the data directory really costs the operator, needs no cooperation
 * from the sessions, and moves with every delete and VACUUM. */
static uint64_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static bool
has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && strcmp(name + n - s, suffix) == 0;
}

uint64_t
route_mailbox_usage(const char *data_dir, const char *mailbox_id)
{
	char *path = store_mailbox_path(data_dir, mailbox_id);
	char *wal = xasprintf("%s-wal", path);
	char *spool = store_spool_path(data_dir, mailbox_id);
	uint64_t used = file_size(path) + file_size(wal);
	DIR *dir = opendir(spool);
	struct dirent *de;

	free(path);
	free(wal);
	free(spool);
	if (dir == NULL)
		return used;
	/* Bounded by the directory's entries; "*.msg" are the sealed
	 * messages (".sent.msg" copies too: they land in Sent), a
	 * "*.msg.tmp.*" is a sealing in progress that counts once renamed. */
	while ((de = readdir(dir)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".msg"))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) == 0 &&
		    S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size >= CRYPTO_SEAL_OVERHEAD)
			used += (uint64_t)st.st_size - CRYPTO_SEAL_OVERHEAD;
	}
	closedir(dir);
	return used;
}

/* Would `extra` more bytes take the alias's mailbox past a limit? 1 yes,
 * 0 no, -1 the control plane failed (*error_r). The limits are those
 * account.h records: the alias's own and its domain's, the smaller of the
 * two for this mailbox (the rule of account_alias_storage_limit(), which
 * the IMAP and POP3 logins hand to the store), and the owner's quota
 * shared by every alias of every domain it owns, against the sum of their
 * mailboxes. At RCPT time extra is 1 (the smallest message): a mailbox
 * already at its limit takes nothing more. */
static int
quota_exceeded(struct route *r, struct account_db *db,
	       const struct account_alias *alias, uint64_t extra,
	       const char **error_r)
{
	const struct account_domain *d = alias->domain;
	uint64_t limit = 0, used;
	char **ids = NULL;
	size_t count = 0;

	if (alias->quota_bytes > 0)
		limit = (uint64_t)alias->quota_bytes;
	if (d != NULL && d->quota_bytes > 0 &&
	    (limit == 0 || (uint64_t)d->quota_bytes < limit))
		limit = (uint64_t)d->quota_bytes;
	if (limit > 0 &&
	    route_mailbox_usage(r->data_dir, alias->mailbox_id) + extra >
		    limit)
		return 1;
	if (d == NULL || d->owner_quota_bytes <= 0)
		return 0;
	/* One stat per alias of the owner: cheap next to the message, and
	 * paid only when the operator set an owner quota. */
	if (account_mailbox_ids(db, d->owner, NULL, &ids, &count, error_r) !=
	    ACCOUNT_OK)
		return -1;
	used = extra;
	for (size_t i = 0; i < count; i++)
		used += route_mailbox_usage(r->data_dir, ids[i]);
	account_mailbox_ids_free(&ids, count);
	return used > (uint64_t)d->owner_quota_bytes ? 1 : 0;
}

/* 1: our domain, 0: not, -1: the control plane failed. */
static int
is_our_domain(struct account_db *db, const char *domain)
{
	struct account_domain *d = NULL;
	const char *error;
	int found = account_domain_get(db, domain, &d, &error);

	account_domain_free(&d);
	return found;
}

/* A bounce to an SRS address of ours goes back to the original sender.
 * Returns -1 when the address is not SRS (route it normally). */
static int
rcpt_srs(struct route *r, struct account_db *db, struct route_tx *tx,
	 const char *address, enum route_rcpt_status *status_r)
{
	const char *at = strrchr(address, '@');
	char *local, *original = NULL;
	const char *error;
	int ret;

	if (r->set.srs == NULL || at == NULL)
		return -1;
	local = xstrndup(address, (size_t)(at - address));
	ret = mailauth_srs_is_srs(local) ? 1 : 0;
	free(local);
	if (ret == 0)
		return -1;
	ret = is_our_domain(db, at + 1);
	if (ret <= 0) {
		*status_r = ret < 0 ? ROUTE_RCPT_TEMP : ROUTE_RCPT_RELAY;
		return 0;
	}
	ret = mailauth_srs_reverse(r->set.srs, address, &original, &error);
	if (ret < 0) {
		/* forged, damaged or expired: nobody here */
		*status_r = ROUTE_RCPT_UNKNOWN;
		return 0;
	}
	if (ret == 0)
		return -1;
	tx_add_rcpt(tx, address);
	if (!target_exists(tx, ACCOUNT_TARGET_FORWARD, original, NULL)) {
		struct route_target *t;

		tx->targets = xrealloc(tx->targets,
				       (tx->target_count + 1) *
					       sizeof(*tx->targets));
		t = &tx->targets[tx->target_count++];
		memset(t, 0, sizeof(*t));
		t->kind = ACCOUNT_TARGET_FORWARD;
		t->value = original;
		t->original_rcpt = xstrdup(address);
	} else {
		free(original);
	}
	*status_r = ROUTE_RCPT_OK;
	return 0;
}

/* One attempt of route_rcpt(); *broken_r says the handle failed. */
static enum route_rcpt_status
rcpt_once(struct route *r, struct account_db *db, struct route_tx *tx,
	  const char *address, bool *broken_r)
{
	struct account_alias *alias = NULL;
	enum account_error aerr = ACCOUNT_OK;
	enum route_rcpt_status status;
	int ret;

	*broken_r = false;
	if (rcpt_srs(r, db, tx, address, &status) == 0) {
		*broken_r = status == ROUTE_RCPT_TEMP;
		return status;
	}
	ret = account_lookup(db, address, &alias, &aerr);
	if (ret == 0) {
		/* Ours but unknown, or not ours at all (no open relay). */
		const char *at = strrchr(address, '@');
		int found = is_our_domain(db, at + 1);

		if (found < 0) {
			*broken_r = true;
			return ROUTE_RCPT_TEMP;
		}
		return found == 1 ? ROUTE_RCPT_UNKNOWN : ROUTE_RCPT_RELAY;
	}
	if (ret < 0) {
		if (aerr == ACCOUNT_ERR_INVALID)
			return ROUTE_RCPT_INVALID;
		*broken_r = true;
		return ROUTE_RCPT_TEMP;
	}
	if (!alias->enabled) {
		account_alias_free(&alias);
		return ROUTE_RCPT_DISABLED;
	}
	if (alias->has_mailbox) {
		const char *error = NULL;

		ret = quota_exceeded(r, db, alias, 1, &error);
		if (ret != 0) {
			account_alias_free(&alias);
			if (ret > 0)
				return r->quota_permanent
					       ? ROUTE_RCPT_OVER_QUOTA_PERM
					       : ROUTE_RCPT_OVER_QUOTA;
			log_error(NULL, "route: quota: %s", error);
			*broken_r = true;
			return ROUTE_RCPT_TEMP;
		}
	}
	tx_add_rcpt(tx, address);
	tx->aliases = xrealloc(tx->aliases, (tx->alias_count + 1) *
						    sizeof(*tx->aliases));
	tx->aliases[tx->alias_count++] = alias;
	add_targets(r, tx, alias, address);
	return ROUTE_RCPT_OK;
}

enum route_rcpt_status
route_rcpt(struct route *r, struct route_tx *tx, const char *address)
{
	enum route_rcpt_status status = ROUTE_RCPT_TEMP;

	/* A handle that failed is closed, not pooled, and the look-up runs
	 * once more on a fresh one: a busy or damaged connection should not
	 * turn into a 451 when a new one would answer. */
	for (int attempt = 0; attempt < 2; attempt++) {
		struct account_db *db = route_db_get(r);
		bool broken;

		if (db == NULL)
			return ROUTE_RCPT_TEMP;
		status = rcpt_once(r, db, tx, address, &broken);
		if (!broken) {
			route_db_put(r, db);
			return status;
		}
		log_warn(NULL, "route: recipient look-up failed (attempt %d)",
			 attempt + 1);
		account_db_close(&db);
	}
	return status;
}

/* ---- delivery ------------------------------------------------------------ */

/* The copy a forward sends: our trace fields, then the message. */
static void
forward_copy(struct route *r, const struct route_tx *tx,
	     const struct route_target *t, const char *msg, size_t len,
	     struct sp_buf *out)
{
	char date[64];
	time_t now = clock_now();
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	sp_buf_printf(out,
		      "Received: from %s ([%s])\r\n"
		      "\tby %s with %s;\r\n\t%s\r\n",
		      tx->helo[0] != '\0' ? tx->helo : "unknown",
		      tx->remote_ip, r->hostname,
		      tx->smtputf8 ? "UTF8SMTP" : "ESMTP", date);
	sp_buf_printf(out, "X-Original-To: %s\r\n", t->original_rcpt);
	sp_buf_append(out, msg, len);
}

static void
deliver_mailbox(struct route *r, const struct route_target *t,
		const char *msg, size_t len, struct route_answer *a)
{
	struct account_db *db = route_db_get(r);
	enum store_deliver_result res;
	const char *error = NULL;

	int over;

	if (db == NULL) {
		a->action = ROUTE_ANSWER_DEFER;
		str_copy(a->text, "4.3.0 Temporary local problem",
			 sizeof(a->text));
		return;
	}
	/* The RCPT check saw the mailbox before this message; now its size
	 * is known. */
	over = quota_exceeded(r, db, t->alias, len, &error);
	if (over != 0) {
		route_db_put(r, db);
		if (over < 0) {
			a->action = ROUTE_ANSWER_DEFER;
			a->code = 451;
			str_copy(a->enhanced, "4.3.0", sizeof(a->enhanced));
			str_copy(a->text, "Temporary local problem",
				 sizeof(a->text));
			log_error(NULL, "route: quota: %s", error);
			return;
		}
		a->action = r->quota_permanent ? ROUTE_ANSWER_REJECT
					       : ROUTE_ANSWER_DEFER;
		a->code = r->quota_permanent ? 552 : 452;
		str_copy(a->enhanced, r->quota_permanent ? "5.2.2" : "4.2.2",
			 sizeof(a->enhanced));
		str_copy(a->text, "Mailbox full", sizeof(a->text));
		return;
	}
	res = store_deliver_alias(db, r->data_dir, t->alias, msg, len,
				  &error);
	route_db_put(r, db);
	switch (res) {
	case STORE_DELIVER_OK:
		a->action = ROUTE_ANSWER_OK;
		break;
	case STORE_DELIVER_NO_KEY:
		/* The mailbox has no password yet: nothing to seal to. */
		a->action = ROUTE_ANSWER_DEFER;
		a->code = 451;
		str_copy(a->enhanced, "4.2.1", sizeof(a->enhanced));
		str_copy(a->text, "Mailbox not ready", sizeof(a->text));
		break;
	default:
		a->action = ROUTE_ANSWER_DEFER;
		a->code = 451;
		str_copy(a->enhanced, "4.3.0", sizeof(a->enhanced));
		str_copy(a->text, "Temporary local problem", sizeof(a->text));
		log_error(NULL, "route: mailbox delivery failed: %s",
			  error != NULL ? error : "?");
		break;
	}
}

/* The envelope sender of a forwarded copy: SRS-rewritten into the alias's
 * domain so SPF passes at the next hop; a reversed bounce keeps its own
 * (normally null) sender. Caller frees. */
static char *
forward_sender(struct route *r, const struct route_tx *tx,
	       const struct route_target *t)
{
	char *rewritten;
	const char *error;

	if (r->set.srs == NULL || t->alias == NULL ||
	    tx->mail_from[0] == '\0')
		return xstrdup(tx->mail_from);
	if (mailauth_srs_forward(r->set.srs, tx->mail_from,
				 t->alias->domain->name, &rewritten,
				 &error) < 0) {
		log_warn(NULL, "route: SRS rewrite failed: %s", error);
		return xstrdup(tx->mail_from);
	}
	return rewritten;
}

/* ---- ARC on forwarded copies -------------------------------------------- */

/* The resolver used when the router has none: every look-up fails
 * temporarily, so each result is temperror (and the seal still happens). */
static enum mailauth_dns_status
dns_down_txt(void *context, const char *name, struct mailauth_dns_reply *r)
{
	return MAILAUTH_DNS_TEMPFAIL;
}

static enum mailauth_dns_status
dns_down_addr(void *context, const char *name, int family,
	      struct mailauth_dns_reply *r)
{
	return MAILAUTH_DNS_TEMPFAIL;
}

static enum mailauth_dns_status
dns_down_ptr(void *context, const struct mailauth_ip *ip,
	     struct mailauth_dns_reply *r)
{
	return MAILAUTH_DNS_TEMPFAIL;
}

static const struct mailauth_dns_vfuncs dns_down_vfuncs = {
	.txt = dns_down_txt,
	.addr = dns_down_addr,
	.mx = dns_down_txt,
	.ptr = dns_down_ptr,
};

static struct mailauth_dns dns_down = {&dns_down_vfuncs, NULL};

/* What one delivery learnt about the inbound message and the keys it
 * sealed with; filled on the first forward only. */
struct route_auth {
	bool verified;
	char *results; /* the AAR's results part */
	enum mailauth_result chain;
	unsigned chain_instances;
	/* The shared keys this delivery holds references to. */
	struct account_keyring_ref **keys;
	size_t key_count;
};

static void
auth_verify(struct route *r, const struct route_tx *tx, const char *msg,
	    size_t len, struct route_auth *auth)
{
	struct mailauth_spf_request req;
	struct mailauth_verdict *v;

	if (auth->verified)
		return;
	auth->verified = true;
	memset(&req, 0, sizeof(req));
	if (mailauth_ip_parse(tx->remote_ip, &req.ip) < 0)
		req.ip.family = AF_INET; /* 0.0.0.0 matches no record */
	req.helo = tx->helo;
	req.mail_from = tx->mail_from;
	req.receiver = r->hostname;
	v = mailauth_verify_message(r->set.dns != NULL ? r->set.dns
						       : &dns_down,
				    &req, msg, len);
	auth->results = mailauth_verdict_format(v);
	/* cv= knows none, pass and fail; a chain we could not check
	 * (temperror) is not one we vouch for. */
	auth->chain = v->arc.result == MAILAUTH_NONE   ? MAILAUTH_NONE
		      : v->arc.result == MAILAUTH_PASS ? MAILAUTH_PASS
						       : MAILAUTH_FAIL;
	auth->chain_instances = v->arc.instances;
	mailauth_verdict_free(&v);
}

static void
auth_clear(struct route *r, struct route_auth *auth)
{
	free(auth->results);
	for (size_t i = 0; i < auth->key_count; i++)
		account_keyring_release(r->keyring, &auth->keys[i]);
	free(auth->keys);
}

/* The domain's RSA key for this delivery; NULL when there is none. */
static const struct account_dkim_key *
auth_key(struct route *r, struct route_auth *auth, const char *domain)
{
	struct account_keyring_ref *key =
		account_keyring_lookup(r->keyring, domain);

	if (key == NULL) {
		struct account_db *db = route_db_get(r);
		const char *error = NULL;
		int ret;

		if (db == NULL)
			return NULL;
		ret = account_keyring_load(r->keyring, db, domain, &key,
					   &error);
		if (ret < 0)
			account_db_close(&db);
		else
			route_db_put(r, db);
		if (ret <= 0) {
			log_warn(NULL, "route: no ARC key: %s",
				 error != NULL ? error : "none");
			return NULL;
		}
	}
	auth->keys = xrealloc(auth->keys,
			      (auth->key_count + 1) * sizeof(*auth->keys));
	auth->keys[auth->key_count++] = key;
	return account_keyring_keys(key)->rsa;
}

/* Prepends the ARC set of our hop to a forwarded copy. On failure the copy
 * goes out unsealed: a missing seal costs the receiver's trust in our
 * results, a refused forward would cost the message. */
static void
arc_seal_copy(struct route *r, const struct route_tx *tx,
	      const struct route_target *t, const char *msg, size_t len,
	      struct route_auth *auth, struct sp_buf *copy)
{
	const char *at = strrchr(t->original_rcpt, '@');
	const char *domain = t->alias != NULL ? t->alias->domain->name
				: at != NULL  ? at + 1
					      : NULL;
	const struct account_dkim_key *key;
	struct mailauth_arc_seal_params p;
	struct sp_buf sealed;
	char *headers = NULL;
	const char *error;

	if (domain == NULL)
		return;
	auth_verify(r, tx, msg, len, auth);
	key = auth_key(r, auth, domain);
	if (key == NULL)
		return;
	memset(&p, 0, sizeof(p));
	p.domain = domain;
	p.selector = key->selector;
	p.key = key->key;
	p.authserv_id = r->hostname;
	p.results = auth->results;
	p.chain = auth->chain;
	p.chain_instances = auth->chain_instances;
	if (mailauth_arc_seal(&p, copy->data, copy->len, &headers, &error) <
	    0) {
		log_warn(NULL, "route: ARC seal failed: %s", error);
		return;
	}
	sp_buf_init(&sealed);
	sp_buf_append_str(&sealed, headers);
	sp_buf_append(&sealed, copy->data, copy->len);
	free(headers);
	sodium_memzero(copy->data, copy->cap);
	sp_buf_deinit(copy);
	*copy = sealed;
}

static void
fingerprint(const struct route_tx *tx, const char *msg, size_t len,
	    unsigned char out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const unsigned char *)tx->mail_from,
				  strlen(tx->mail_from) + 1);
	crypto_generichash_update(&st, (const unsigned char *)msg, len);
	crypto_generichash_final(&st, out, 32);
}

/* A remote answer goes back to the sender, but the forward destination is
 * the alias owner's private address: it is replaced by the recipient the
 * sender wrote. */
static void
scrub_target(struct route_answer *a, const struct route_target *t)
{
	size_t n;
	char *hit;

	if (t->kind != ACCOUNT_TARGET_FORWARD || t->value[0] == '\0')
		return;
	n = strlen(t->value);
	while ((hit = strcasestr(a->text, t->value)) != NULL) {
		char *rest = xstrdup(hit + n);

		*hit = '\0';
		str_copy(hit, t->original_rcpt,
			 sizeof(a->text) - (size_t)(hit - a->text));
		str_copy(a->text + strlen(a->text), rest,
			 sizeof(a->text) - strlen(a->text));
		free(rest);
		if (strcasestr(t->original_rcpt, t->value) != NULL)
			break; /* would loop */
	}
}

/* 452 4.2.2 or 552 5.2.2: "mailbox full" (RFC 3463 X.2.2). */
static bool
mailbox_full(const struct route_answer *a)
{
	return (a->code == 452 && strcmp(a->enhanced, "4.2.2") == 0) ||
	       (a->code == 552 && strcmp(a->enhanced, "5.2.2") == 0);
}

void
route_deliver(struct route *r, const struct route_tx *tx, const char *msg,
	      size_t len, struct route_result *res)
{
	unsigned char fp[32];
	struct route_answer first_reject = {0}, first_defer = {0};
	struct route_auth auth;

	memset(res, 0, sizeof(*res));
	memset(&auth, 0, sizeof(auth));
	if (msg == NULL)
		msg = ""; /* an empty message */
	fingerprint(tx, msg, len, fp);
	for (size_t i = 0; i < tx->target_count; i++) {
		const struct route_target *t = &tx->targets[i];
		struct route_answer a;
		unsigned char key[32];
		char *id;

		memset(&a, 0, sizeof(a));
		res->targets++;
		id = t->kind == ACCOUNT_TARGET_MAILBOX
			     ? xasprintf("mailbox:%s", t->alias->mailbox_id)
		     : t->kind == ACCOUNT_TARGET_WEBHOOK
			     ? xasprintf("webhook:%s", t->value)
			     : xasprintf("forward:%s", t->value);
		route_memory_key(r->memory, fp, id, key);
		free(id);
		if (route_memory_has(r->memory, key)) {
			res->remembered++;
			res->delivered++;
			continue;
		}
		switch (t->kind) {
		case ACCOUNT_TARGET_MAILBOX:
			deliver_mailbox(r, t, msg, len, &a);
			break;
		case ACCOUNT_TARGET_WEBHOOK:
			route_webhook_post(r, tx, t, msg, len, &a);
			break;
		case ACCOUNT_TARGET_FORWARD: {
			struct sp_buf copy;
			char *sender = forward_sender(r, tx, t);

			sp_buf_init(&copy);
			forward_copy(r, tx, t, msg, len, &copy);
			arc_seal_copy(r, tx, t, msg, len, &auth, &copy);
			r->set.forward(r->set.forward_ctx, sender, t->value,
				       copy.data, copy.len, tx->eightbit,
				       tx->smtputf8, &a);
			sodium_memzero(copy.data, copy.cap);
			sp_buf_deinit(&copy);
			free(sender);
			break;
		}
		}
		if (a.action != ROUTE_ANSWER_OK)
			scrub_target(&a, t);
		switch (a.action) {
		case ROUTE_ANSWER_OK:
			res->delivered++;
			route_memory_add(r->memory, key);
			break;
		case ROUTE_ANSWER_DEFER:
			if (res->deferred++ == 0)
				first_defer = a;
			break;
		case ROUTE_ANSWER_REJECT:
			if (res->rejected++ == 0)
				first_reject = a;
			break;
		}
	}
	auth_clear(r, &auth);
	if (res->deferred > 0) {
		res->outcome = ROUTE_TEMPFAIL;
		/* A full mailbox (ours, or a forward destination's) keeps its
		 * own code; every other failure is the generic 451/550. */
		res->code = mailbox_full(&first_defer) ? 452 : 451;
		snprintf(res->text, sizeof(res->text), "%s %s",
			 first_defer.enhanced[0] == '4' ? first_defer.enhanced
							: "4.4.0",
			 first_defer.text[0] != '\0'
				 ? first_defer.text
				 : "Temporary failure, try again later");
	} else if (res->rejected > 0) {
		res->outcome = ROUTE_PERMFAIL;
		res->code = mailbox_full(&first_reject) ? 552 : 550;
		snprintf(res->text, sizeof(res->text), "%s %s",
			 first_reject.enhanced[0] == '5' ? first_reject.enhanced
							 : "5.0.0",
			 first_reject.text[0] != '\0' ? first_reject.text
						      : "Delivery failed");
	} else {
		res->outcome = ROUTE_DELIVERED;
		res->code = 250;
		str_copy(res->text, "2.0.0 Message accepted",
			 sizeof(res->text));
	}
}
