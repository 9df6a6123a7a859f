#!/bin/sh
# Installs, by Debian package name, everything Sealpost needs to build, run
# and test. Idempotent and quiet when everything is already present: both
# `make run` and `make test` call it first.
set -eu

PACKAGES="
gcc libc6-dev make meson ninja-build pkg-config curl ca-certificates
libsodium-dev libgmime-3.0-dev libglib2.0-dev libpcre2-dev libssl-dev
libevent-dev libidn2-dev libcurl4-openssl-dev libunbound-dev nettle-dev libjansson-dev
libcmocka-dev
python3 python3-pytest python3-aiosmtpd python3-dkim python3-spf
sqlite3 openssl swaks isync fetchmail procps
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
