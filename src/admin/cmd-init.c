/* sealpost init: the data directory with everything a server needs. */
#include "admin-private.h"

#include "account/account.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
write_pem_key(const char *path, EVP_PKEY *pkey)
{
	FILE *f = NULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret = -1;

	if (fd >= 0 && (f = fdopen(fd, "w")) != NULL) {
		if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) ==
			    1 &&
		    fflush(f) == 0 && fsync(fd) == 0)
			ret = 0;
		fclose(f);
	} else if (fd >= 0) {
		close(fd);
	}
	return ret;
}

static int
write_pem_cert(const char *path, X509 *cert)
{
	FILE *f = fopen(path, "w");
	int ret = -1;

	if (f == NULL)
		return -1;
	if (PEM_write_X509(f, cert) == 1 && fflush(f) == 0 &&
	    fsync(fileno(f)) == 0)
		ret = 0;
	fclose(f);
	return ret;
}

/* A self-signed P-256 certificate for the listeners until the operator
 * installs a real one (docs/operations.md). */
static int
create_self_signed(const char *cert_path, const char *key_path,
		   const char *hostname)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char *san = xasprintf("DNS:%s,DNS:localhost,IP:127.0.0.1", hostname);
	int ret = -1;

	if (pkey == NULL || cert == NULL)
		goto out;
	random_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
		goto out;
	X509_set_version(cert, 2);
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
	X509_set_pubkey(cert, pkey);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				   (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext == NULL)
		goto out;
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(cert, pkey, EVP_sha256()) == 0)
		goto out;
	if (write_pem_key(key_path, pkey) == 0 &&
	    write_pem_cert(cert_path, cert) == 0)
		ret = 0;
out:
	BN_free(bn);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	free(san);
	return ret;
}

static int
write_default_conf(const char *path)
{
	FILE *f = fopen(path, "wx");
	int ret;

	if (f == NULL)
		return errno == EEXIST ? 0 : -1;
	conf_write_default(f);
	ret = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
	fclose(f);
	return ret;
}

int
admin_cmd_init(struct admin_ctx *ctx, int argc, char **argv)
{
	char hostname[256] = "localhost";
	char *path;
	int ret = ADMIN_EXIT_OK;

	if (argc != 0)
		return admin_usage(ctx, "unexpected argument '%s'", argv[0]);
	if (fs_mkdir_p(ctx->data_dir, 0700) < 0 || chmod(ctx->data_dir, 0700) < 0)
		return admin_fail("%s: %s", ctx->data_dir, strerror(errno));
	if (admin_load_conf(ctx) < 0)
		return ADMIN_EXIT_FAIL;

	path = xasprintf("%s/server.key", ctx->data_dir);
	if (!fs_exists(path) && crypto_server_key_create(path) < 0)
		ret = admin_fail("%s: %s", path, strerror(errno));
	free(path);
	if (ret != ADMIN_EXIT_OK)
		return ret;

	path = xasprintf("%s/tls", ctx->data_dir);
	if (fs_mkdir_p(path, 0700) < 0)
		ret = admin_fail("%s: %s", path, strerror(errno));
	free(path);
	if (ret != ADMIN_EXIT_OK)
		return ret;
	{
		char *cert = xasprintf("%s/tls/cert.pem", ctx->data_dir);
		char *key = xasprintf("%s/tls/key.pem", ctx->data_dir);

		if (*conf_str("hostname") != '\0')
			str_copy(hostname, conf_str("hostname"),
				 sizeof(hostname));
		else
			(void)gethostname(hostname, sizeof(hostname) - 1);
		if (!fs_exists(cert) &&
		    create_self_signed(cert, key, hostname) < 0)
			ret = admin_fail("could not create a TLS certificate "
					 "in %s/tls",
					 ctx->data_dir);
		free(cert);
		free(key);
	}
	if (ret != ADMIN_EXIT_OK)
		return ret;

	path = xasprintf("%s/sealpost.conf", ctx->data_dir);
	if (write_default_conf(path) < 0)
		ret = admin_fail("%s: %s", path, strerror(errno));
	free(path);
	if (ret != ADMIN_EXIT_OK)
		return ret;
	{
		/* The control plane, encrypted with the server key. */
		struct account_db *db = NULL;
		const char *error;

		if (account_db_open(ctx->data_dir, ACCOUNT_OPEN_CREATE, &db,
				    &error) != ACCOUNT_OK)
			return admin_fail("%s", error);
		account_db_close(&db);
	}
	if (fs_fsync_dir(ctx->data_dir) < 0)
		return admin_fail("%s: %s", ctx->data_dir, strerror(errno));
	if (!ctx->json)
		fprintf(stderr, "sealpost: data directory %s is ready\n",
			ctx->data_dir);
	return ADMIN_EXIT_OK;
}
