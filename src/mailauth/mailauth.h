/*
 * mailauth: the authentication of mail between servers, on OpenSSL EVP.
 *
 * DKIM (RFC 6376; RSA-SHA256 and Ed25519-SHA256, RFC 8463) signs what
 * submission sends and verifies what the MX receives. SPF (RFC 7208, with
 * its limits of 10 DNS-querying terms and 2 void look-ups) checks the
 * connecting address against the envelope sender's domain. DMARC (RFC 7489)
 * ties both to the From: domain, falling back to the organizational domain
 * (the public suffix list of Debian's `publicsuffix` package when present,
 * else a small built-in heuristic). ARC (RFC 8617) verifies the chain an
 * inbound message carries and seals the copy that a forward sends on, so
 * the receiver can trust results we saw. SRS (the Shevek scheme, as in
 * libsrs2) rewrites the envelope sender of a forward so SPF still passes at
 * the next hop, and reverses bounces to our SRS addresses.
 *
 * How the MX uses it, per inbound message (off the network loop: DNS calls
 * block):
 *	mailauth_verify_message() -> struct mailauth_verdict (SPF, DKIM, DMARC,
 *	ARC); mailauth_verdict_format() -> the Authentication-Results value;
 *	for each forwarded copy mailauth_arc_seal() with that value and the
 *	verdict's ARC state, and mailauth_srs_forward() on the envelope sender.
 *	RCPT to an SRS address of ours: mailauth_srs_reverse().
 * Submission: mailauth_dkim_sign() with the domain's key.
 * Domain set-up: mailauth_key_generate(), mailauth_key_to_pem(),
 *	mailauth_key_dns_record().
 *
 * Messages are passed as raw bytes as received after DATA (dot-unstuffed);
 * lines end in CRLF, a bare LF is read as CRLF. Every signature this module
 * produces is one complete header field ending in CRLF, to be prepended to
 * the message unchanged.
 *
 * DNS goes through struct mailauth_dns, a small table of functions: tests
 * plug mailauth_dns_table (records given as text), production plugs
 * mailauth_dns_unbound_create() (libunbound). Nothing here logs; no
 * address or content leaves through an error string.
 *
 * Private keys: mailauth_key holds an OpenSSL EVP_PKEY; the PEM text this
 * module hands out lives in sodium_malloc() memory and is wiped on free.
 */
#ifndef SEALPOST_MAILAUTH_H
#define SEALPOST_MAILAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct crypto_key;

/* ------------------------------------------------------------------ */
/* Results (the words of RFC 8601 Authentication-Results). */

enum mailauth_result {
	MAILAUTH_NONE,
	MAILAUTH_PASS,
	MAILAUTH_FAIL,
	MAILAUTH_SOFTFAIL, /* SPF only */
	MAILAUTH_NEUTRAL,  /* SPF, DKIM */
	MAILAUTH_POLICY,   /* DKIM: signature fine but not acceptable */
	MAILAUTH_TEMPERROR,
	MAILAUTH_PERMERROR,
};

/* "none", "pass", "fail", ...: static strings. */
const char *mailauth_result_name(enum mailauth_result result);

/* ------------------------------------------------------------------ */
/* DNS */

enum mailauth_dns_status {
	MAILAUTH_DNS_OK,       /* at least one record */
	MAILAUTH_DNS_NODATA,   /* the name exists but has no such record */
	MAILAUTH_DNS_NXDOMAIN, /* the name does not exist */
	MAILAUTH_DNS_TEMPFAIL, /* timeout, SERVFAIL, no resolver */
};

struct mailauth_ip {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network order; 4 bytes used for AF_INET */
};

/* Parses "192.0.2.1" or "2001:db8::1" (an IPv4-mapped IPv6 address becomes
 * AF_INET). Returns 0, or -1 when it is not an address. */
int mailauth_ip_parse(const char *text, struct mailauth_ip *ip_r);
/* Text form; out must hold 46 bytes. */
void mailauth_ip_format(const struct mailauth_ip *ip, char out[46]);

/* One answer. A resolver fills it; the caller frees it with
 * mailauth_dns_reply_clear(). With MAILAUTH_DNS_OK, count > 0 and:
 *	TXT: strings[i] = the character-strings of record i joined;
 *	A/AAAA: ips[i];
 *	MX: strings[i] = exchange (no trailing dot; "." for a null MX),
 *	    mx_prefs[i];
 *	PTR: strings[i] = name (no trailing dot).
 * All arrays are malloc()ed, as is every string. */
struct mailauth_dns_reply {
	size_t count;
	char **strings;
	unsigned int *mx_prefs;
	struct mailauth_ip *ips;
};

void mailauth_dns_reply_clear(struct mailauth_dns_reply *reply);

/* A resolver. Each function fills *reply_r (zeroed by the caller) and
 * returns the status; names come without a trailing dot. Functions may
 * block; they must be safe to call from several threads at once. */
struct mailauth_dns_vfuncs {
	enum mailauth_dns_status (*txt)(void *context, const char *name,
					struct mailauth_dns_reply *reply_r);
	/* family: AF_INET (A) or AF_INET6 (AAAA) */
	enum mailauth_dns_status (*addr)(void *context, const char *name,
					 int family,
					 struct mailauth_dns_reply *reply_r);
	enum mailauth_dns_status (*mx)(void *context, const char *name,
				       struct mailauth_dns_reply *reply_r);
	enum mailauth_dns_status (*ptr)(void *context,
					const struct mailauth_ip *ip,
					struct mailauth_dns_reply *reply_r);
	void (*destroy)(void *context);
};

struct mailauth_dns {
	const struct mailauth_dns_vfuncs *v;
	void *context;
};

/* Frees a resolver made by one of the constructors below; NULLs it. */
void mailauth_dns_destroy(struct mailauth_dns **dns);

/* The production resolver (libunbound, DNSSEC not required). `forwarder`
 * "ip" or "ip@port" sends every query to that server (tests run a local
 * one); NULL uses /etc/resolv.conf, or full recursion when it names no
 * server. Returns NULL with *error_r set on failure. Thread-safe. */
struct mailauth_dns *mailauth_dns_unbound_create(const char *forwarder,
						 const char **error_r);
/* How many look-ups of that resolver were answered from its own answer
 * cache (dns-unbound.c keeps answers for their TTL), for tests. */
unsigned long mailauth_dns_unbound_cache_hits(const struct mailauth_dns *dns);

/* A resolver answering from a table, for tests and the test tool.
 * Records are added as text lines:
 *	<name> TXT <text>          (one record; may repeat for several)
 *	<name> A <ipv4>  /  <name> AAAA <ipv6>
 *	<name> MX <pref> <host>
 *	<name> PTR <host>          (name is the address, e.g. 192.0.2.1)
 *	<name> NXDOMAIN  /  <name> TEMPFAIL   (force that status, any type)
 * A name with some record but none of the asked type answers NODATA; an
 * unknown name answers NXDOMAIN. Lines starting with '#' are ignored.
 * Names compare case-insensitively. Each lookup is counted, so tests can
 * check how many queries a check made. */
struct mailauth_dns *mailauth_dns_table_create(void);
/* Returns 0, or -1 with *error_r on a malformed line (nothing added from
 * that line on). The dns must come from mailauth_dns_table_create(). */
int mailauth_dns_table_add(struct mailauth_dns *dns, const char *lines,
			   const char **error_r);
unsigned int mailauth_dns_table_queries(const struct mailauth_dns *dns);

/* ------------------------------------------------------------------ */
/* Keys (DKIM and ARC signing) */

enum mailauth_key_type {
	MAILAUTH_KEY_RSA,     /* RSA 2048, rsa-sha256 */
	MAILAUTH_KEY_ED25519, /* ed25519-sha256 (RFC 8463) */
};

struct mailauth_key;

/* A fresh key; the caller owns it. Returns NULL only when OpenSSL fails
 * (*error_r says so). */
struct mailauth_key *mailauth_key_generate(enum mailauth_key_type type,
					   const char **error_r);
/* Loads a PEM private key (PKCS#8 or traditional RSA). Returns NULL with
 * *error_r when it is not an RSA (>= 1024 bits) or Ed25519 private key. */
struct mailauth_key *mailauth_key_load_pem(const char *pem, size_t len,
					   const char **error_r);
void mailauth_key_destroy(struct mailauth_key **key);
enum mailauth_key_type mailauth_key_get_type(const struct mailauth_key *key);
/* The PKCS#8 PEM text of the private key in sodium_malloc() memory,
 * NUL-terminated; free it with mailauth_pem_free(). */
int mailauth_key_to_pem(const struct mailauth_key *key, char **pem_r,
			size_t *len_r, const char **error_r);
void mailauth_pem_free(char **pem);
/* The TXT value to publish at <selector>._domainkey.<domain>:
 * "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" or
 * "v=DKIM1; k=ed25519; p=<base64 raw 32-byte key>". Caller frees. */
char *mailauth_key_dns_record(const struct mailauth_key *key);

/* ------------------------------------------------------------------ */
/* DKIM */

enum mailauth_canon {
	MAILAUTH_CANON_RELAXED,
	MAILAUTH_CANON_SIMPLE,
};

struct mailauth_dkim_sign_params {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	const struct mailauth_key *key;
	enum mailauth_canon header_canon; /* zero value: relaxed */
	enum mailauth_canon body_canon;
	/* Header field names to sign, NULL-terminated; NULL: a default set
	 * (From, To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To,
	 * References, MIME-Version, Content-Type, Content-Transfer-Encoding,
	 * List-*, ...), each present one signed once more than it occurs so
	 * that an added copy breaks the signature. From is always signed. */
	const char *const *headers;
	const char *identity;	  /* i=, optional */
	time_t timestamp;	  /* t=; 0: clock_now() */
	unsigned int expire_secs; /* x= t + this; 0: no x= */
};

/* Signs; *header_r = "DKIM-Signature: ...\r\n", folded at 78 columns, for
 * the caller to prepend (caller frees). Returns 0, or -1 with *error_r. */
int mailauth_dkim_sign(const struct mailauth_dkim_sign_params *params,
		       const char *msg, size_t len, char **header_r,
		       const char **error_r);

/* The outcome of one DKIM-Signature. */
struct mailauth_dkim_sig {
	/* pass, fail, neutral (syntax), policy, temperror, permerror */
	enum mailauth_result result;
	char *domain;	/* d=, lower case; NULL when unparseable */
	char *selector; /* s= */
	char *identity; /* i= (or "@d") */
	char *b_prefix; /* first 8 characters of b= (header.b) */
	enum mailauth_key_type algorithm;
	const char *reason; /* static, short, no content; NULL on pass */
};

/* Verifies up to max_sigs DKIM-Signature fields (0: 8), in order of
 * appearance. *sigs_r (caller frees with mailauth_dkim_sigs_free) has one
 * entry per signature; *count_r is 0 when there is none. Never fails. */
void mailauth_dkim_verify(struct mailauth_dns *dns, const char *msg, size_t len,
			  unsigned int max_sigs,
			  struct mailauth_dkim_sig **sigs_r, size_t *count_r);
void mailauth_dkim_sigs_free(struct mailauth_dkim_sig **sigs, size_t count);

/* ------------------------------------------------------------------ */
/* SPF */

struct mailauth_spf_request {
	struct mailauth_ip ip; /* the connecting client */
	const char *helo;      /* EHLO/HELO argument */
	const char *mail_from; /* envelope sender; "" for <> */
	const char *receiver;  /* our host name, for %{r}; NULL: "unknown" */
};

struct mailauth_spf_result {
	enum mailauth_result result;
	char *domain;		/* the domain checked (sender's or HELO's) */
	bool from_helo;		/* domain came from HELO (null sender) */
	char *explanation;	/* expanded exp= text on fail, else NULL */
	const char *reason;	/* static; NULL on a plain match */
	unsigned int dns_terms; /* terms that queried DNS */
	unsigned int void_lookups;
};

/* check_host() of RFC 7208 for the request's MAIL FROM (or HELO when the
 * sender is empty: postmaster@helo). Fills *result_r (clear it with
 * mailauth_spf_result_clear). */
void mailauth_spf_check(struct mailauth_dns *dns,
			const struct mailauth_spf_request *req,
			struct mailauth_spf_result *result_r);
/* check_host(ip, domain, sender) itself; sender "local@domain". */
void mailauth_spf_check_host(struct mailauth_dns *dns,
			     const struct mailauth_spf_request *req,
			     const char *domain, const char *sender,
			     struct mailauth_spf_result *result_r);
void mailauth_spf_result_clear(struct mailauth_spf_result *result);

/* ------------------------------------------------------------------ */
/* DMARC */

enum mailauth_dmarc_policy {
	MAILAUTH_DMARC_POLICY_NONE,
	MAILAUTH_DMARC_POLICY_QUARANTINE,
	MAILAUTH_DMARC_POLICY_REJECT,
};

struct mailauth_dmarc_result {
	/* none (no record), pass, fail, temperror, permerror */
	enum mailauth_result result;
	enum mailauth_dmarc_policy policy; /* p= or sp= as it applies */
	unsigned int pct;		   /* 0..100 */
	char *from_domain;		   /* lower case */
	char *policy_domain;		   /* where the record was found */
	bool spf_aligned;
	bool dkim_aligned;
};

/* The organizational domain of `domain` (lower case, caller frees):
 * one label below its public suffix. */
char *mailauth_org_domain(const char *domain);
/* Identifier alignment (RFC 7489 3.1): strict = equal names; relaxed =
 * same organizational domain. */
bool mailauth_dmarc_aligned(const char *a, const char *b, bool strict);

/* Looks up the DMARC record of from_domain (then of its organizational
 * domain) and evaluates alignment with the SPF result (for a null sender
 * that is the HELO identity, as RFC 7208 2.4 makes it the MAIL FROM one)
 * and the passing DKIM signatures. spf may be NULL. */
void mailauth_dmarc_check(struct mailauth_dns *dns, const char *from_domain,
			  const struct mailauth_spf_result *spf,
			  const struct mailauth_dkim_sig *sigs, size_t count,
			  struct mailauth_dmarc_result *result_r);
void mailauth_dmarc_result_clear(struct mailauth_dmarc_result *result);

/* The domain of the message's single From: address, lower case (caller
 * frees); NULL when there is no From:, several, or no domain. */
char *mailauth_from_domain(const char *msg, size_t len);

/* ------------------------------------------------------------------ */
/* ARC */

struct mailauth_arc_result {
	/* none (no ARC set), pass (every set valid, last AMS valid), fail */
	enum mailauth_result result;
	unsigned int instances;	  /* highest i= seen (0 for none) */
	const char *reason;	  /* static; NULL on pass/none */
	char *oldest_pass_domain; /* d= of AS i=1 on pass, else NULL */
};

/* Verifies the ARC chain of a message (RFC 8617 5.2). Clear the result with
 * mailauth_arc_result_clear. Never fails. */
void mailauth_arc_verify(struct mailauth_dns *dns, const char *msg, size_t len,
			 struct mailauth_arc_result *result_r);
void mailauth_arc_result_clear(struct mailauth_arc_result *result);

struct mailauth_arc_seal_params {
	const char *domain;   /* d= of AMS and AS */
	const char *selector; /* s= */
	/* RSA only: RFC 8617 verifiers know rsa-sha256 alone (an Ed25519
	 * key is refused); mailauth_arc_verify accepts both. */
	const struct mailauth_key *key;
	const char *authserv_id; /* our host name, first in the AAR */
	/* The results part of the AAR: mailauth_verdict_format()'s output
	 * ("spf=pass smtp.mailfrom=...; dkim=..."). */
	const char *results;
	/* The chain state of the message as received
	 * (mailauth_arc_verify): none, pass or fail -> cv=. */
	enum mailauth_result chain;
	unsigned int chain_instances; /* its highest i= */
	const char *const *headers;   /* AMS h=; NULL: DKIM default set */
	time_t timestamp;	      /* 0: clock_now() */
};

/* Seals a forwarded copy: *headers_r = "ARC-Seal: ...\r\n"
 * "ARC-Message-Signature: ...\r\nARC-Authentication-Results: ...\r\n"
 * to prepend (caller frees), instance = chain_instances + 1. When the
 * chain failed, the new set still records cv=fail (RFC 8617 5.1.2). Returns
 * 0, or -1 with *error_r (a chain already at i=50, a non-RSA key, a chain
 * state that does not match the message). */
int mailauth_arc_seal(const struct mailauth_arc_seal_params *params,
		      const char *msg, size_t len, char **headers_r,
		      const char **error_r);

/* ------------------------------------------------------------------ */
/* Everything an MX checks on one message */

struct mailauth_verdict {
	struct mailauth_spf_result spf;
	struct mailauth_dkim_sig *dkim;
	size_t dkim_count;
	struct mailauth_dmarc_result dmarc;
	struct mailauth_arc_result arc;
};

/* SPF of the envelope, DKIM, DMARC of From:, ARC chain. The caller owns
 * the verdict (mailauth_verdict_free). */
struct mailauth_verdict *
mailauth_verify_message(struct mailauth_dns *dns,
			const struct mailauth_spf_request *envelope,
			const char *msg, size_t len);
void mailauth_verdict_free(struct mailauth_verdict **verdict);
/* The results part of an Authentication-Results (RFC 8601) value, without
 * authserv-id: "spf=pass smtp.mailfrom=example.org; dkim=pass
 * header.d=example.org header.s=sel header.b=abcdefgh; dmarc=pass
 * header.from=example.org; arc=none". Caller frees. */
char *mailauth_verdict_format(const struct mailauth_verdict *verdict);

/* ------------------------------------------------------------------ */
/* SRS (Sender Rewriting Scheme, Shevek's SRS0/SRS1 as in libsrs2) */

#define MAILAUTH_SRS_MAX_AGE_DAYS 10

struct mailauth_srs;

/* The HMAC key is derived from the server key (which is not kept). */
struct mailauth_srs *mailauth_srs_create(const struct crypto_key *server_key);
void mailauth_srs_destroy(struct mailauth_srs **srs);

/* Rewrites envelope sender `sender` for a forward that leaves from
 * our_domain: local@example.org -> SRS0=HHHH=TT=example.org=local@ours,
 * an SRS0/SRS1 address of another forwarder -> SRS1=HHHH=hop==...@ours.
 * A sender already at our_domain and the null sender are returned
 * unchanged. Caller frees *rewritten_r. Returns 0, or -1 with *error_r. */
int mailauth_srs_forward(const struct mailauth_srs *srs, const char *sender,
			 const char *our_domain, char **rewritten_r,
			 const char **error_r);
/* Reverses an SRS address of ours (the domain part is not checked: the
 * caller routes only its own domains here). Returns 1 with *original_r
 * (caller frees), 0 when the local part is not SRS, -1 with *error_r when it
 * is SRS but malformed, forged (bad hash) or older than
 * MAILAUTH_SRS_MAX_AGE_DAYS (clock_now()). */
int mailauth_srs_reverse(const struct mailauth_srs *srs, const char *address,
			 char **original_r, const char **error_r);
/* Whether a local part looks like SRS0/SRS1 (case-insensitive). */
bool mailauth_srs_is_srs(const char *local_part);

#endif
