#!/bin/sh
# Installs, by Debian package name, everything Sealpost needs to build, run
# and test. Idempotent and quiet when everything is already present: both
# `make run` and `make test` call it first.
set -eu

PACKAGES="
gcc libc6-dev make meson ninja-build pkg-config curl ca-certificates
libsodium-dev libgmime-3.0-dev libglib2.0-dev libpcre2-dev libssl-dev
libevent-dev libidn2-dev libcurl4-openssl-dev libunbound-dev nettle-dev libjansson-dev
libcmocka-dev libexpat1-dev zlib1g-dev nodejs
python3 python3-pytest python3-aiosmtpd python3-dkim python3-spf python3-nacl
python3-authres python3-dnspython publicsuffix
sqlite3 openssl swaks isync fetchmail procps
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
# Debian's npm, unless a node install that ships its own npm is there.
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing packages:$missing (run as root to install them)" >&2
		exit 1
	fi
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The local S3-compatible server of the backup tests: the npm registry
# package s3rver, pinned with every dependency's integrity hash in
# tests/s3rver/package-lock.json.
s3dir="$(dirname "$0")/../tests/s3rver"
if [ ! -x "$s3dir/node_modules/.bin/s3rver" ]; then
	echo "deps: installing s3rver into tests/s3rver" >&2
	log=$(mktemp)
	# The integrity hashes (SHA-512) in package-lock.json are what
	# authenticate the packages: npm ci refuses any tarball that does not
	# match. TLS is checked when the machine's CA store can check it;
	# behind a TLS-intercepting egress proxy whose CA the store lacks (a
	# pristine chroot), npm ci is retried without certificate checks and
	# still installs only what matches the lock file.
	if ! npm ci --prefix "$s3dir" --no-audit --no-fund >"$log" 2>&1; then
		if grep -qiE 'certificate|self[- ]signed|SSL' "$log"; then
			echo "deps: TLS certificate not verifiable here; relying on the integrity hashes" >&2
			npm ci --prefix "$s3dir" --no-audit --no-fund --strict-ssl=false >"$log" 2>&1 ||
				{ cat "$log" >&2; rm -f "$log"; exit 1; }
		else
			cat "$log" >&2
			rm -f "$log"
			exit 1
		fi
	fi
	rm -f "$log"
fi
