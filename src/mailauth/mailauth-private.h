/* mailauth internals: message splitting, canonicalization, tag lists and
 * the signature primitives shared by DKIM and ARC. */
#ifndef SEALPOST_MAILAUTH_PRIVATE_H
#define SEALPOST_MAILAUTH_PRIVATE_H

#include "core/core.h"
#include "mailauth/mailauth.h"

#include <openssl/evp.h>

/* One header field of a message; every pointer points into the message. */
struct mailauth_header {
	const char *name; /* not terminated */
	size_t name_len;
	const char *raw; /* whole field, without the final line end */
	size_t raw_len;
	const char *value; /* after the colon, up to the final line end */
	size_t value_len;
};

struct mailauth_msg {
	struct mailauth_header *headers;
	size_t count;
	const char *body; /* after the empty line (or the end) */
	size_t body_len;
};

/* Splits a message into header fields and body; never fails (a line
 * without a colon ends the header block, as it would in any reader).
 * Free with mailauth_msg_deinit. */
void mailauth_msg_parse(const char *msg, size_t len,
			struct mailauth_msg *msg_r);
void mailauth_msg_deinit(struct mailauth_msg *msg);
bool mailauth_header_is(const struct mailauth_header *hdr, const char *name);

/* Canonical form of one header field, CRLF-terminated unless
 * no_crlf, appended to out. */
void mailauth_canon_header(enum mailauth_canon canon, const char *raw,
			   size_t raw_len, bool no_crlf, struct sp_buf *out);

/* Body canonicalization, streamed: feed() any number of times, then
 * finish(). Output goes to a digest, at most `limit` bytes when
 * limit >= 0. */
struct mailauth_body_canon {
	enum mailauth_canon canon;
	EVP_MD_CTX *md;
	int64_t limit; /* -1: no limit */
	uint64_t written;
	size_t pending_empty; /* empty lines held back */
	struct sp_buf line;   /* partial line */
	size_t out_len;	      /* bytes waiting in out for the digest */
	char out[16384];
};

void mailauth_body_canon_init(struct mailauth_body_canon *bc,
			      enum mailauth_canon canon, int64_t limit);
void mailauth_body_canon_feed(struct mailauth_body_canon *bc, const char *data,
			      size_t len);
/* Writes the SHA-256 of the canonical body; frees the state. */
void mailauth_body_canon_finish(struct mailauth_body_canon *bc,
				unsigned char digest[32]);
/* One-shot: the canonical body (for tests), caller frees. */
char *mailauth_body_canon_string(enum mailauth_canon canon, const char *body,
				 size_t len, size_t *len_r);

/* A tag=value list (RFC 6376 3.2). Values are copies with surrounding FWS
 * removed; value_off/value_len locate the value in the parsed text. */
struct mailauth_tag {
	char *name;
	char *value;
	size_t value_off;
	size_t value_len;
};

struct mailauth_tags {
	struct mailauth_tag *tags;
	size_t count;
};

/* Returns 0, or -1 on a syntax error or a duplicate tag. */
int mailauth_tags_parse(const char *text, size_t len,
			struct mailauth_tags *tags_r);
void mailauth_tags_deinit(struct mailauth_tags *tags);
const struct mailauth_tag *mailauth_tags_find(const struct mailauth_tags *tags,
					      const char *name);
const char *mailauth_tags_get(const struct mailauth_tags *tags,
			      const char *name);

/* A copy of s with every whitespace character removed (for b=, bh=, p=). */
char *mailauth_strip_ws(const char *s);

/* base64; decode returns -1 on invalid input. Caller frees. */
char *mailauth_base64_encode(const unsigned char *data, size_t len);
int mailauth_base64_decode(const char *text, unsigned char **data_r,
			   size_t *len_r);

/* Whether s is a syntactically valid domain name (LDH labels, 1..63 each,
 * at most 253 in all, at least one dot unless allow_single). */
bool mailauth_domain_valid(const char *s, bool allow_single);

/* Signature primitives on the SHA-256 of data. */
int mailauth_key_sign(const struct mailauth_key *key, const void *data,
		      size_t len, unsigned char **sig_r, size_t *sig_len_r);
const char *mailauth_key_algorithm(const struct mailauth_key *key);

/* A public key fetched from <selector>._domainkey.<domain>. */
struct mailauth_pubkey {
	EVP_PKEY *pkey;
	enum mailauth_key_type type;
	bool testing; /* t=y */
	bool strict;  /* t=s */
};

/* Looks up and parses the key record. Returns the DKIM result to report
 * when it fails (temperror / permerror / policy) with *reason_r, or
 * MAILAUTH_PASS with *key_r filled. */
enum mailauth_result mailauth_pubkey_fetch(struct mailauth_dns *dns,
					   const char *selector,
					   const char *domain,
					   struct mailauth_pubkey *key_r,
					   const char **reason_r);
void mailauth_pubkey_deinit(struct mailauth_pubkey *key);
/* 1 valid, 0 invalid signature. */
int mailauth_pubkey_verify(const struct mailauth_pubkey *key, const void *data,
			   size_t len, const unsigned char *sig,
			   size_t sig_len);

/* The shared part of DKIM-Signature and ARC-Message-Signature. */
struct mailauth_sig_params {
	const char *field;  /* "DKIM-Signature" or "ARC-Message-Signature" */
	const char *prefix; /* leading tags, "v=1" or "i=2" */
	const char *domain;
	const char *selector;
	const struct mailauth_key *key;
	enum mailauth_canon header_canon;
	enum mailauth_canon body_canon;
	const char *const *headers;
	bool skip_arc; /* never sign ARC-* or Authentication-Results */
	const char *identity;
	time_t timestamp;
	unsigned int expire_secs;
};

int mailauth_sig_create(const struct mailauth_sig_params *params,
			const struct mailauth_msg *msg, char **header_r,
			const char **error_r);

/* Verifies one DKIM-Signature or AMS field (hdr) of msg. For ARC, is_arc
 * relaxes the v= requirement and requires i=. Fills sig_r. */
void mailauth_sig_verify(struct mailauth_dns *dns,
			 const struct mailauth_msg *msg,
			 const struct mailauth_header *hdr, bool is_arc,
			 struct mailauth_dkim_sig *sig_r);

/* Appends the signed header fields listed in h= (bottom-up selection) to
 * out, canonicalized. */
void mailauth_hash_headers(const struct mailauth_msg *msg, const char *h_list,
			   enum mailauth_canon canon, struct sp_buf *out);

/* Folds "Name: tag=v; tag=v; b=..." into lines of at most 78 columns,
 * breaking between tags and inside b=/bh=. */
char *mailauth_fold(const char *field, const char *const *tags, size_t count);

#endif
