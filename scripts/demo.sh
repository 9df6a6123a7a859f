#!/bin/sh
# `make run`: a demo data directory with a demo domain and alias, then the
# server in the foreground. The alias's password is printed once, when the
# directory is first made; delete the directory to start over.
set -eu
SEALPOST=$1
DATA=$2
DOMAIN=${SEALPOST_DEMO_DOMAIN:-demo.example}
ALIAS=hello@$DOMAIN

if [ ! -f "$DATA/server.key" ]; then
	"$SEALPOST" --data "$DATA" init
	if "$SEALPOST" --data "$DATA" domain add --help >/dev/null 2>&1; then
		"$SEALPOST" --data "$DATA" domain add "$DOMAIN"
		"$SEALPOST" --data "$DATA" alias add "$ALIAS" --mailbox
		password=$("$SEALPOST" --data "$DATA" alias password "$ALIAS")
		echo "demo alias $ALIAS, password (shown once): $password"
	fi
fi
exec "$SEALPOST" --data "$DATA" serve
