#!/usr/bin/env bash
# The main job on its embedded default: build hastack, start a local
# 3-node lab (real sshd, Redis, Sentinel in network namespaces), apply the
# HSTS HA Redis cluster to it, check it, and say how to look at it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bash tools/deps.sh
go build -o bin/hastack ./cmd/hastack
hs=$PWD/bin/hastack
"$hs" lab down -name demo >/dev/null 2>&1 || true
"$hs" lab up -n 3 -name demo
export HASTACK_LAB=/tmp/hastack-lab-demo
if [ -z "${HASTACK_REDIS_PASSWORD:-}" ]; then
	(umask 077; head -c 18 /dev/urandom | base64 | tr -d '+/=' >"$HASTACK_LAB/redis-password")
	HASTACK_REDIS_PASSWORD=$(cat "$HASTACK_LAB/redis-password")
fi
export HASTACK_REDIS_PASSWORD
cfg=$HASTACK_LAB/config
"$hs" vet "$cfg"
"$hs" apply -auto-approve "$cfg"
"$hs" plan -detailed-exitcode "$cfg"
# apply already waits until the Sentinels know each other; -wait covers a
# machine slower than that wait.
"$hs" check -wait 30s "$cfg"
cat <<TXT

The cluster runs on lab "demo". Look at it:
  export HASTACK_LAB=$HASTACK_LAB
  export HASTACK_REDIS_PASSWORD=\$(cat $HASTACK_LAB/redis-password)
  $hs plan $cfg                   # "No changes."
  $hs lab exec -name demo node1 -- cat /opt/aspera/etc/redis/sentinel_41415.conf
  $hs lab exec -name demo node2 -- systemctl status asperaredisd
Stop it: $hs lab down -name demo
TXT
