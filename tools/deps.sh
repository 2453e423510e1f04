#!/usr/bin/env bash
# Installs what hastack's tests and its local lab need on Debian: OpenSSH's
# sshd, Redis, Sentinel, HAProxy (and socat, the first tool a reload of
# HAProxy tries for saving its server states), nginx (examples/web, and its
# stream module for the load-balanced front end), keepalived (its VRRP
# virtual IP), iptables, iproute2, curl; MariaDB with Galera, its arbitrator
# (garbd) and rsync (its state transfer) for the MassStore stack; cron,
# chrony and NSD (round-robin DNS) for the Shares/Console web tier.
# Needs root.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
	echo "tools/deps.sh: run as root (as root: bash tools/deps.sh)" >&2
	exit 1
fi
pkgs="openssh-server openssh-client redis-server redis-sentinel redis-tools haproxy socat keepalived nginx libnginx-mod-stream curl iptables iproute2 util-linux procps coreutils mariadb-server mariadb-client galera-4 galera-arbitrator-4 rsync cron chrony nsd"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	# Debian's Go fetches the toolchain go.mod asks for from the module proxy.
	apt-get install -y -qq golang-go >/dev/null
fi
