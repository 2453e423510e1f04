#!/usr/bin/env bash
# The floor hastack plan is measured against: OpenSSH connects to every node
# of a lab in parallel and reads the files a plan reads, nothing else.
# Usage (root; the lab from `hastack lab up -n N -name NAME`, applied):
#   bench/openssh-baseline.sh /tmp/hastack-lab-NAME [runs]
# Prints each run's wall time and the median.
set -euo pipefail
lab=${1:?usage: $0 LABDIR [runs]}
runs=${2:-5}
ctl=$(sed -n 's/^  "controller": "\(.*\)",$/\1/p' "$lab/lab.json")
mapfile -t ips < <(sed -n 's/^      "ip": "\(.*\)",$/\1/p' "$lab/lab.json")
files="/opt/aspera/etc/aspera.conf /opt/aspera/etc/redis/aspera_31415.conf /opt/aspera/etc/redis/sentinel_41415.conf /etc/passwd /etc/group"
times=()
for r in $(seq "$runs"); do
	t0=$(date +%s%N)
	ip netns exec "$ctl" bash -c '
		for ip in "${@:4}"; do
			ssh -F none -i "$1/id_ed25519" -o UserKnownHostsFile="$1/known_hosts" -o BatchMode=yes \
				-o HostKeyAlgorithms=ssh-ed25519 root@"$ip" "cat $2 2>/dev/null; true" >/dev/null &
		done
		wait' _ "$lab" "$files" - "${ips[@]}"
	t=$((($(date +%s%N) - t0) / 1000000))
	times+=("$t")
	echo "run $r: ${#ips[@]} nodes in $t ms"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median:", a[int((NR+1)/2)], "ms"}'
