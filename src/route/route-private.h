/* Private to src/route. */
#ifndef SEALPOST_ROUTE_PRIVATE_H
#define SEALPOST_ROUTE_PRIVATE_H

#include <pthread.h>
#include <sys/socket.h>

#include "route.h"

#include "account/account.h"

/* One thing to deliver to, after de-duplication. */
struct route_target {
	enum account_target_kind kind;
	/* forward: the destination address (with the +tag); webhook: the
	 * URL; mailbox: "" */
	char *value;
	/* The recipient as the sender wrote it (X-Original-To). */
	char *original_rcpt;
	/* The alias it came from (mailbox id and key, webhook key); NULL for
	 * a reversed SRS bounce. */
	const struct account_alias *alias;
};

struct route_tx {
	char *mail_from, *helo, *remote_ip;
	bool eightbit, smtputf8;
	time_t arrival;
	char **rcpts; /* as the sender wrote them, accepted ones */
	size_t rcpt_count;
	struct account_alias **aliases; /* owned, one per accepted rcpt */
	size_t alias_count;
	struct route_target *targets;
	size_t target_count;
};

struct route {
	struct route_settings set;
	char *data_dir, *hostname;
	struct route_memory *memory;
	bool quota_permanent; /* smtp_quota_permanent: 552 5.2.2, not 452 */
	pthread_mutex_t pool_lock;
	struct account_db **pool;
	size_t pool_count, pool_cap;
	/* The loaded ARC signing keys, by domain (account_keyring). */
	struct account_keyring *keyring;
};

/* route.c: a pooled control-plane handle; back with route_db_put. */
struct account_db *route_db_get(struct route *route);
void route_db_put(struct route *route, struct account_db *db);

/* webhook.c: POSTs the message; fills *answer_r (2xx: OK, else DEFER). */
void route_webhook_post(struct route *route, const struct route_tx *tx,
			const struct route_target *target, const char *msg,
			size_t len, struct route_answer *answer_r);

#endif
