/* The settings table. Add a row here, and docs/configuration.md follows
 * (`sealpost config markdown` regenerates its table; a test compares). */
#include "conf.h"

const struct conf_setting conf_settings[] = {
	/* Listeners: host:port; an empty value turns the listener off. */
	{"imap_listen", CONF_STRING, "0.0.0.0:143",
	 "IMAP with STARTTLS"},
	{"imaps_listen", CONF_STRING, "0.0.0.0:993", "IMAP over implicit TLS"},
	{"pop3_listen", CONF_STRING, "0.0.0.0:110", "POP3 with STLS"},
	{"pop3s_listen", CONF_STRING, "0.0.0.0:995", "POP3 over implicit TLS"},
	{"smtp_listen", CONF_STRING, "0.0.0.0:25", "inbound SMTP (MX)"},
	{"submission_listen", CONF_STRING, "0.0.0.0:587",
	 "message submission with STARTTLS"},
	{"submissions_listen", CONF_STRING, "0.0.0.0:465",
	 "message submission over implicit TLS"},
	{"http_listen", CONF_STRING, "127.0.0.1:8080", "admin HTTP JSON API"},

	/* Identity and TLS. */
	{"hostname", CONF_STRING, "",
	 "name in greetings and Received headers (empty: the system's)"},
	{"tls_cert", CONF_STRING, "tls/cert.pem",
	 "TLS certificate chain (PEM), relative to the data directory"},
	{"tls_key", CONF_STRING, "tls/key.pem",
	 "TLS private key (PEM), relative to the data directory"},
	{"user", CONF_STRING, "sealpost",
	 "unprivileged user the server runs as after binding its ports "
	 "(falls back to nobody when it does not exist)"},

	/* Logging and privacy. */
	{"log_level", CONF_STRING, "info", "debug, info, warn or error"},
	{"log_addresses", CONF_BOOL, "false",
	 "debug aid: allow addresses in logs (off: never logged)"},

	/* Accounts. */
	{"login_key_cache_seconds", CONF_INT, "300",
	 "keep a derived mailbox key this long after the last session ends "
	 "(0: off)"},
	{"alias_create_per_day", CONF_INT, "50",
	 "aliases that may be created per domain per day"},
	{"default_retention_days", CONF_INT, "30",
	 "sent-mail retention of new domains, in days"},

	/* Outbound. */
	{"outbound_relayhost", CONF_STRING, "",
	 "host:port of a smart host for all outbound SMTP (empty: MX look-up)"},
	{"webhook_allow_private", CONF_BOOL, "false",
	 "allow webhook targets on loopback and private addresses"},
	{"webhook_timeout_seconds", CONF_INT, "30", "webhook request timeout"},

	/* Backups. */
	{"s3_endpoint", CONF_STRING, "", "S3-compatible endpoint URL"},
	{"s3_region", CONF_STRING, "us-east-1", "S3 region"},
	{"s3_bucket", CONF_STRING, "", "S3 bucket for backups"},
	{"s3_access_key_id", CONF_STRING, "", "S3 access key id"},
	{"s3_secret_access_key", CONF_STRING, "", "S3 secret access key"},
	{"s3_path_style", CONF_BOOL, "false",
	 "path-style S3 URLs instead of virtual-host style"},
	{"backup_keep", CONF_INT, "1", "backup versions kept per mailbox"},

	{NULL, CONF_STRING, NULL, NULL},
};
