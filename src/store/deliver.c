/* store: delivery of one message to an alias's mailbox, through the spool.
 * The MX and `sealpost deliver` share this path. */
#include "store-private.h"

#include "account/account.h"

enum store_deliver_result
store_deliver_alias(struct account_db *adb, const char *data_dir,
		    const struct account_alias *alias, const void *raw,
		    size_t len, const char **error_r)
{
	struct account_credentials creds;
	const char *aerr = NULL;
	int rc;

	if (!alias->enabled) {
		store_set_error(error_r, "the alias is disabled");
		return STORE_DELIVER_DISABLED;
	}
	if (!alias->has_mailbox) {
		store_set_error(error_r, "the alias has no mailbox");
		return STORE_DELIVER_NO_MAILBOX;
	}
	rc = account_alias_get_credentials(adb, alias->address, &creds, &aerr);
	if (rc < 0) {
		store_set_error(error_r, "control plane: %s",
				aerr != NULL ? aerr : "failure");
		return STORE_DELIVER_TEMP;
	}
	if (rc == 0) {
		store_set_error(error_r, "the alias has no password yet "
					 "(sealpost alias password)");
		return STORE_DELIVER_NO_KEY;
	}
	if (store_spool_seal(data_dir, alias->mailbox_id, creds.public_key, raw,
			     len, error_r) < 0)
		return STORE_DELIVER_TEMP;
	return STORE_DELIVER_OK;
}

enum store_deliver_result
store_deliver(struct account_db *adb, const char *data_dir,
	      const char *address, const void *raw, size_t len,
	      const char **error_r)
{
	struct account_alias *alias = NULL;
	enum account_error aerr = ACCOUNT_OK;
	enum store_deliver_result result;
	int rc;

	rc = account_lookup(adb, address, &alias, &aerr);
	if (rc < 0) {
		if (aerr == ACCOUNT_ERR_INVALID) {
			store_set_error(error_r, "not a valid address");
			return STORE_DELIVER_INVALID;
		}
		store_set_error(error_r, "control plane failure");
		return STORE_DELIVER_TEMP;
	}
	if (rc == 0) {
		store_set_error(error_r, "no such alias");
		return STORE_DELIVER_UNKNOWN;
	}
	result = store_deliver_alias(adb, data_dir, alias, raw, len, error_r);
	account_alias_free(&alias);
	return result;
}
