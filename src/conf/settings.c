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
	{"login_failures_per_ip", CONF_INT, "10",
	 "failed logins (IMAP, POP3) allowed from one IP per window "
	 "(0: no limit)"},
	{"login_failures_per_alias", CONF_INT, "10",
	 "failed logins allowed for one address per window (0: no limit)"},
	{"login_failure_window_seconds", CONF_INT, "3600",
	 "the window of the failed-login limits"},

	/* IMAP. */
	{"imap_allow_plaintext_loopback", CONF_BOOL, "false",
	 "allow LOGIN/AUTHENTICATE without TLS from loopback (tests)"},
	{"imap_idle_timeout_seconds", CONF_INT, "1800",
	 "idle time before a logged-in session is closed (at least 1800)"},
	{"imap_login_timeout_seconds", CONF_INT, "60",
	 "idle time before a session that has not logged in is closed"},
	{"imap_max_connections_per_ip", CONF_INT, "50",
	 "simultaneous IMAP connections from one IP (0: no limit)"},
	{"imap_max_connections_per_alias", CONF_INT, "20",
	 "simultaneous IMAP sessions of one alias (0: no limit)"},
	{"imap_commands_per_second", CONF_INT, "500",
	 "commands one session may issue per second; beyond, reading pauses "
	 "(0: no limit)"},
	{"imap_append_limit", CONF_INT, "52428800",
	 "largest message APPEND accepts, in bytes (APPENDLIMIT)"},
	{"imap_max_line", CONF_INT, "65536",
	 "longest command line outside literals, in bytes"},
	{"imap_max_literal_bytes", CONF_INT, "1048576",
	 "bytes of literals in one command other than APPEND"},
	{"imap_max_literals", CONF_INT, "1000",
	 "literals in one command other than APPEND"},

	/* POP3. */
	{"pop3_allow_plaintext_loopback", CONF_BOOL, "false",
	 "allow USER/PASS and AUTH without TLS from loopback (tests)"},
	{"pop3_timeout_seconds", CONF_INT, "600",
	 "idle time before a POP3 session is closed (RFC 1939: at least "
	 "600)"},
	{"pop3_max_connections_per_ip", CONF_INT, "20",
	 "simultaneous POP3 connections from one IP (0: no limit)"},
	{"pop3_max_line_length", CONF_INT, "2048",
	 "longest command line, in bytes (at least 255)"},

	/* Submission (ports 587 and 465). */
	{"submission_max_message_size", CONF_INT, "52428800",
	 "largest message accepted for submission, in bytes"},
	{"submission_max_recipients", CONF_INT, "50",
	 "recipients per submitted message"},
	{"submission_max_messages_per_day", CONF_INT, "300",
	 "messages one alias may submit per day (0: no limit)"},
	{"submission_max_messages_per_domain_day", CONF_INT, "10000",
	 "messages all aliases of one domain may submit per day (0: no limit)"},

	/* Outbound. */
	{"outbound_relayhost", CONF_STRING, "",
	 "host:port of a smart host for all outbound SMTP (empty: MX look-up)"},
	{"webhook_allow_private", CONF_BOOL, "false",
	 "allow webhook targets on loopback and private addresses"},
	{"webhook_timeout_seconds", CONF_INT, "30", "webhook request timeout"},
	{"outbound_timeout_seconds", CONF_INT, "120",
	 "outbound SMTP: timeout of each step (connect, each reply)"},
	/* The outbound queue of submitted mail. */
	{"queue_threads", CONF_INT, "4",
	 "outbound queue: deliveries at once (also after a restart)"},
	{"queue_retry_min_seconds", CONF_INT, "300",
	 "outbound queue: first retry after a temporary failure, doubling "
	 "after each"},
	{"queue_retry_max_seconds", CONF_INT, "3600",
	 "outbound queue: longest wait between two retries"},
	{"queue_max_age_days", CONF_INT, "5",
	 "outbound queue: give up (failure DSN) this long after acceptance"},
	{"queue_delay_warning_hours", CONF_INT, "4",
	 "outbound queue: send one delay DSN per recipient after this long"},
	{"queue_purge_days", CONF_INT, "30",
	 "outbound queue: delete a sent message's record this long after its "
	 "content was redacted"},
	{"dns_resolver", CONF_STRING, "",
	 "DNS server (ip or ip@port) for MX look-ups and SPF/DKIM/DMARC/ARC "
	 "(empty: /etc/resolv.conf)"},

	/* Inbound SMTP (MX). */
	{"smtp_max_message_size", CONF_INT, "52428800",
	 "largest message accepted, in bytes (SIZE)"},
	{"smtp_max_recipients", CONF_INT, "100", "recipients per message"},
	{"smtp_max_line_length", CONF_INT, "2048",
	 "longest command line, in bytes"},
	{"smtp_timeout_seconds", CONF_INT, "300",
	 "idle time before a session is closed"},
	{"smtp_max_connections_per_ip", CONF_INT, "20",
	 "simultaneous connections from one IP (0: no limit)"},
	{"smtp_max_messages_per_ip_hour", CONF_INT, "1000",
	 "messages accepted from one IP per hour (0: no limit)"},
	{"smtp_max_forward_targets", CONF_INT, "10",
	 "forward targets used per alias"},
	{"smtp_delivery_threads", CONF_INT, "32",
	 "threads delivering accepted messages (they mostly wait on the "
	 "network)"},
	{"smtp_quota_permanent", CONF_BOOL, "false",
	 "a mailbox over its storage limit is refused permanently "
	 "(552 5.2.2) instead of temporarily (452 4.2.2)"},

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
