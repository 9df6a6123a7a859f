/* One control-plane handle per thread, shared by the protocol servers.
 * A worker thread opens it on its first login and keeps it for its life;
 * the pthread key's destructor closes it when the thread exits, so worker
 * pools that are torn down and rebuilt (reload, tests) leak nothing. */
#include "account-private.h"

#include <pthread.h>

static pthread_key_t account_thread_key;
static pthread_once_t account_thread_once = PTHREAD_ONCE_INIT;

static void
account_thread_end(void *adb)
{
	struct account_db *db = adb;

	account_db_close(&db);
}

static void
account_thread_key_create(void)
{
	if (pthread_key_create(&account_thread_key, account_thread_end) != 0)
		core_panic("pthread_key_create failed");
}

struct account_db *
account_db_thread(const char *data_dir, const char **error_r)
{
	struct account_db *adb;

	pthread_once(&account_thread_once, account_thread_key_create);
	adb = pthread_getspecific(account_thread_key);
	if (adb != NULL)
		return adb;
	if (account_db_open(data_dir, 0, &adb, error_r) != ACCOUNT_OK)
		return NULL;
	if (pthread_setspecific(account_thread_key, adb) != 0)
		core_panic("pthread_setspecific failed");
	return adb;
}
