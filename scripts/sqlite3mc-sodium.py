#!/usr/bin/env python3
"""Prepares the SQLite3MultipleCiphers amalgamation for src/db/sqlite3mc.c.

usage: sqlite3mc-sodium.py SQLITE3_C OUTPUT

Renames the definitions (not the declarations or the calls) of the
amalgamation's portable chacha20_xor() and poly1305() so that
src/db/sqlite3mc.c, which includes the output, can define those two
functions itself on libsodium. The file format does not change: the same
ChaCha20 and Poly1305, computed by libsodium's vectorised code.

Fails, and so fails the build, unless each definition is found exactly
once: a new amalgamation that moved them must be looked at, not patched
blindly.
"""
import sys

RENAMES = [
    ("\nvoid chacha20_xor(void* buffer, size_t n, const uint8_t key[32],\n",
     "\nvoid chacha20_xor_portable(void* buffer, size_t n, const uint8_t key[32],\n"),
    ("\nvoid poly1305(const uint8_t* msg, size_t n, const uint8_t key[32],\n",
     "\nvoid poly1305_portable(const uint8_t* msg, size_t n, const uint8_t key[32],\n"),
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    for old, new in RENAMES:
        count = text.count(old)
        if count != 1:
            sys.exit("sqlite3mc-sodium: expected one definition %r, found %d"
                     % (old.strip(), count))
        text = text.replace(old, new)
    with open(sys.argv[2], "w", encoding="utf-8",
              errors="surrogateescape") as f:
        f.write(text)


if __name__ == "__main__":
    main()
