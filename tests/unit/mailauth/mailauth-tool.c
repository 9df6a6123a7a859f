/* mailauth-tool: a command-line face of the mailauth module for the
 * integration tests, which cross-check it against dkimpy and pyspf.
 * DNS comes from a table file (see mailauth_dns_table_add). Not
 * installed; not part of the server. */
#include "core/core.h"
#include "crypto/crypto.h"
#include "mailauth/mailauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
read_all(FILE *f, size_t *len_r)
{
	struct sp_buf buf;
	char chunk[65536];
	size_t n;

	sp_buf_init(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		sp_buf_append(&buf, chunk, n);
	return sp_buf_steal(&buf, len_r);
}

/* "unbound:IP@PORT" uses the production resolver with that forwarder;
 * anything else is a table file. */
static struct mailauth_dns *
load_dns(const char *path)
{
	struct mailauth_dns *dns;
	const char *error;
	char *data;
	size_t len;

	if (str_has_prefix(path, "unbound:")) {
		dns = mailauth_dns_unbound_create(path + 8, &error);
		if (dns == NULL) {
			fprintf(stderr, "unbound: %s\n", error);
			exit(2);
		}
		return dns;
	}
	dns = mailauth_dns_table_create();
	if (fs_read_file(path, &data, &len) < 0) {
		perror(path);
		exit(2);
	}
	if (mailauth_dns_table_add(dns, data, &error) < 0) {
		fprintf(stderr, "dns table: %s\n", error);
		exit(2);
	}
	free(data);
	return dns;
}

static struct mailauth_key *
load_key(const char *path)
{
	struct mailauth_key *key;
	const char *error;
	char *data;
	size_t len;

	if (fs_read_file(path, &data, &len) < 0) {
		perror(path);
		exit(2);
	}
	key = mailauth_key_load_pem(data, len, &error);
	free(data);
	if (key == NULL) {
		fprintf(stderr, "key: %s\n", error);
		exit(2);
	}
	return key;
}

static void
parse_canon(const char *s, enum mailauth_canon *h, enum mailauth_canon *b)
{
	*h = *b = MAILAUTH_CANON_RELAXED;
	if (str_has_prefix(s, "simple"))
		*h = MAILAUTH_CANON_SIMPLE;
	if (strstr(s, "/simple") != NULL)
		*b = MAILAUTH_CANON_SIMPLE;
}

static void
usage(void)
{
	fputs("usage: mailauth-tool keygen rsa|ed25519\n"
	      "       mailauth-tool dnsrecord KEY\n"
	      "       mailauth-tool sign KEY DOMAIN SELECTOR [CANON] < msg\n"
	      "       mailauth-tool verify DNS < msg\n"
	      "       mailauth-tool arc-seal KEY DOMAIN SELECTOR AUTHSERV DNS"
	      " IP HELO MAILFROM < msg\n"
	      "       mailauth-tool arc-verify DNS < msg\n"
	      "       mailauth-tool spf DNS IP HELO MAILFROM\n"
	      "       mailauth-tool spf-host DNS IP DOMAIN SENDER HELO\n"
	      "       mailauth-tool srs-forward HEXKEY SENDER DOMAIN\n"
	      "       mailauth-tool srs-reverse HEXKEY ADDRESS\n",
	      stderr);
	exit(1);
}

static void
print_spf(const struct mailauth_spf_result *r)
{
	printf("%s terms=%u voids=%u reason=%s exp=%s\n",
	       mailauth_result_name(r->result), r->dns_terms, r->void_lookups,
	       r->reason != NULL ? r->reason : "-",
	       r->explanation != NULL ? r->explanation : "-");
}

static struct mailauth_srs *
load_srs(const char *hex)
{
	struct crypto_key *key = crypto_key_create();
	struct mailauth_srs *srs;

	if (hex_decode(hex, key->bytes, CRYPTO_KEY_BYTES) < 0)
		usage();
	srs = mailauth_srs_create(key);
	crypto_key_destroy(&key);
	return srs;
}

int
main(int argc, char **argv)
{
	const char *error = NULL;
	size_t len;
	char *msg;

	if (argc < 2 || crypto_init() < 0)
		usage();
	if (strcmp(argv[1], "keygen") == 0 && argc == 3) {
		struct mailauth_key *key = mailauth_key_generate(
			strcmp(argv[2], "rsa") == 0 ? MAILAUTH_KEY_RSA
						    : MAILAUTH_KEY_ED25519,
			&error);
		char *pem;

		if (key == NULL ||
		    mailauth_key_to_pem(key, &pem, &len, &error) < 0) {
			fprintf(stderr, "keygen: %s\n", error);
			return 2;
		}
		fwrite(pem, 1, len, stdout);
		mailauth_pem_free(&pem);
		mailauth_key_destroy(&key);
		return 0;
	}
	if (strcmp(argv[1], "dnsrecord") == 0 && argc == 3) {
		struct mailauth_key *key = load_key(argv[2]);
		char *rec = mailauth_key_dns_record(key);

		printf("%s\n", rec);
		free(rec);
		mailauth_key_destroy(&key);
		return 0;
	}
	if (strcmp(argv[1], "sign") == 0 && (argc == 5 || argc == 6)) {
		struct mailauth_key *key = load_key(argv[2]);
		struct mailauth_dkim_sign_params p = {
			.domain = argv[3],
			.selector = argv[4],
			.key = key,
		};
		char *hdr;

		if (argc == 6)
			parse_canon(argv[5], &p.header_canon, &p.body_canon);
		msg = read_all(stdin, &len);
		if (mailauth_dkim_sign(&p, msg, len, &hdr, &error) < 0) {
			fprintf(stderr, "sign: %s\n", error);
			return 2;
		}
		fputs(hdr, stdout);
		fwrite(msg, 1, len, stdout);
		free(hdr);
		free(msg);
		mailauth_key_destroy(&key);
		return 0;
	}
	if (strcmp(argv[1], "verify") == 0 && argc == 3) {
		struct mailauth_dns *dns = load_dns(argv[2]);
		struct mailauth_dkim_sig *sigs;
		size_t n;

		msg = read_all(stdin, &len);
		mailauth_dkim_verify(dns, msg, len, 0, &sigs, &n);
		for (size_t i = 0; i < n; i++)
			printf("%s d=%s reason=%s\n",
			       mailauth_result_name(sigs[i].result),
			       sigs[i].domain != NULL ? sigs[i].domain : "-",
			       sigs[i].reason != NULL ? sigs[i].reason : "-");
		if (n == 0)
			printf("none\n");
		mailauth_dkim_sigs_free(&sigs, n);
		mailauth_dns_destroy(&dns);
		free(msg);
		return 0;
	}
	if (strcmp(argv[1], "arc-seal") == 0 && argc == 10) {
		struct mailauth_key *key = load_key(argv[2]);
		struct mailauth_dns *dns = load_dns(argv[6]);
		struct mailauth_spf_request req = {
			.helo = argv[8],
			.mail_from = argv[9],
		};
		struct mailauth_verdict *v;
		char *results, *hdrs;

		if (mailauth_ip_parse(argv[7], &req.ip) < 0)
			usage();
		msg = read_all(stdin, &len);
		v = mailauth_verify_message(dns, &req, msg, len);
		results = mailauth_verdict_format(v);
		{
			struct mailauth_arc_seal_params p = {
				.domain = argv[3],
				.selector = argv[4],
				.key = key,
				.authserv_id = argv[5],
				.results = results,
				.chain = v->arc.result,
				.chain_instances = v->arc.instances,
			};

			if (mailauth_arc_seal(&p, msg, len, &hdrs, &error) <
			    0) {
				fprintf(stderr, "arc-seal: %s\n", error);
				return 2;
			}
		}
		fputs(hdrs, stdout);
		fwrite(msg, 1, len, stdout);
		free(hdrs);
		free(results);
		mailauth_verdict_free(&v);
		mailauth_dns_destroy(&dns);
		mailauth_key_destroy(&key);
		free(msg);
		return 0;
	}
	if (strcmp(argv[1], "arc-verify") == 0 && argc == 3) {
		struct mailauth_dns *dns = load_dns(argv[2]);
		struct mailauth_arc_result r;

		msg = read_all(stdin, &len);
		mailauth_arc_verify(dns, msg, len, &r);
		printf("%s i=%u reason=%s\n", mailauth_result_name(r.result),
		       r.instances, r.reason != NULL ? r.reason : "-");
		mailauth_arc_result_clear(&r);
		mailauth_dns_destroy(&dns);
		free(msg);
		return 0;
	}
	if (strcmp(argv[1], "spf") == 0 && argc == 6) {
		struct mailauth_dns *dns = load_dns(argv[2]);
		struct mailauth_spf_request req = {
			.helo = argv[4],
			.mail_from = argv[5],
			.receiver = "mx.sealpost.test",
		};
		struct mailauth_spf_result r;

		if (mailauth_ip_parse(argv[3], &req.ip) < 0)
			usage();
		mailauth_spf_check(dns, &req, &r);
		print_spf(&r);
		mailauth_spf_result_clear(&r);
		mailauth_dns_destroy(&dns);
		return 0;
	}
	if (strcmp(argv[1], "spf-host") == 0 && argc == 7) {
		struct mailauth_dns *dns = load_dns(argv[2]);
		struct mailauth_spf_request req = {
			.helo = argv[6],
			.mail_from = argv[5],
			.receiver = "mx.sealpost.test",
		};
		struct mailauth_spf_result r;

		if (mailauth_ip_parse(argv[3], &req.ip) < 0)
			usage();
		mailauth_spf_check_host(dns, &req, argv[4], argv[5], &r);
		print_spf(&r);
		mailauth_spf_result_clear(&r);
		mailauth_dns_destroy(&dns);
		return 0;
	}
	if (strcmp(argv[1], "srs-forward") == 0 && argc == 5) {
		struct mailauth_srs *srs = load_srs(argv[2]);
		char *out;

		if (mailauth_srs_forward(srs, argv[3], argv[4], &out, &error) <
		    0) {
			fprintf(stderr, "srs: %s\n", error);
			return 2;
		}
		printf("%s\n", out);
		free(out);
		mailauth_srs_destroy(&srs);
		return 0;
	}
	if (strcmp(argv[1], "srs-reverse") == 0 && argc == 4) {
		struct mailauth_srs *srs = load_srs(argv[2]);
		char *out;
		int ret = mailauth_srs_reverse(srs, argv[3], &out, &error);

		mailauth_srs_destroy(&srs);
		if (ret < 0) {
			fprintf(stderr, "srs: %s\n", error);
			return 2;
		}
		if (ret == 0) {
			printf("not-srs\n");
			return 0;
		}
		printf("%s\n", out);
		free(out);
		return 0;
	}
	usage();
	return 1;
}
