/*
 * Modified UTF-7 mailbox names (RFC 3501 5.1.3). The store keeps folder
 * names in UTF-8; an IMAP4rev1 client (without UTF8=ACCEPT, which Sealpost
 * does not offer) names them in modified UTF-7: printable US-ASCII stands
 * for itself except "&", written "&-"; every other character is UTF-16
 * (surrogate pairs beyond the BMP) in a modified base64 ("," for "/", no
 * padding) between "&" and "-". "&ZeVnLIqe-" is "日本語".
 *
 * Pure functions without I/O: the commands decode every mailbox argument
 * (and LIST patterns) with imap_mutf7_decode() and encode every name they
 * send back with imap_mutf7_encode().
 */
#ifndef SEALPOST_IMAP_MUTF7_H
#define SEALPOST_IMAP_MUTF7_H

/* Decodes modified UTF-7 into UTF-8. Returns a new string (the caller
 * frees it), or NULL with *error_r set to a static reason when `in` is not
 * valid modified UTF-7: 8-bit or control bytes, an "&" run that is not
 * closed by "-", characters outside the modified base64 alphabet, bits
 * left over, unpaired surrogates, U+0000, or a printable US-ASCII
 * character that was encoded although it stands for itself. */
char *imap_mutf7_decode(const char *in, const char **error_r);

/* Encodes UTF-8 into modified UTF-7 (a new string; the caller frees it).
 * A byte sequence that is not UTF-8 comes out as U+FFFD per bad byte:
 * names are always representable, though such a name cannot be named back
 * by the client. */
char *imap_mutf7_encode(const char *in);

#endif
