/* The `sealpost` binary: everything it does lives in the admin module. */
#include "admin/admin.h"
#include "crypto/crypto.h"

#include <stdio.h>

int
main(int argc, char **argv)
{
	if (crypto_init() < 0) {
		fputs("sealpost: libsodium failed to initialise\n", stderr);
		return 2;
	}
	return admin_main(argc, argv);
}
