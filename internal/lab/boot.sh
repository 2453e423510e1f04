#!/bin/sh
# boot.sh turns a fresh mount+UTS+PID namespace (inside the node's network
# namespace) into a test node, then becomes its sshd. The lab runs it as
#   ip netns exec NS unshare --mount --uts --pid --fork --mount-proc \
#       --propagation private sh boot.sh
# so this shell is PID 1 of the node and sshd replaces it: when sshd dies,
# everything started on the node dies with it.
#
# Inputs (environment): NODE_NAME, NODE_IP (with /prefix), NODE_DIR (the
# node's directory in the lab dir, prepared by the lab in Go).
set -eu
D="$NODE_DIR"

hostname "$NODE_NAME"

ip link set lo up
ip addr add "$NODE_IP" dev eth0
ip link set eth0 up

# /etc and /var/lib: copy-on-write overlays, so the node sees the host's
# files but its own passwd/group/shadow (placed in the upper dir by the lab),
# /etc/iptables and /var/lib/hastack, and nothing it writes reaches the host.
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$D/etc.upper,workdir=$D/etc.work" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$D/varlib.upper,workdir=$D/varlib.work" /var/lib

# Fresh private directories, as on a newly installed machine.
mount --bind "$D/opt" /opt
mount --bind "$D/root" /root
mount --bind "$D/home" /home
mount --bind "$D/log" /var/log
mount --bind "$D/units" /lib/systemd/system
mount --bind "$D/etc-units" /etc/systemd/system
mount --bind "$D/run" /run
mount --bind "$D/systemctl" /usr/bin/systemctl
# Shared storage (shared.go): the lab dir's shared/, the same directory in
# every node at /mnt/shared, over a node-private /mnt.
mkdir -p "$D/../shared"
mount -t tmpfs -o mode=0755,size=64k lab-mnt /mnt
mkdir /mnt/shared
mount --bind "$D/../shared" /mnt/shared
# Last: it hides the lab dir (under the host's /tmp) from the node.
mount --bind "$D/tmp" /tmp

# As systemd at boot: start the units enabled in multi-user.target.wants
# (none at Up; after Lab.Boot, those a stack enabled), in the background,
# a child of sshd (PID 1), which reaps it.
(
	sleep 0.2
	for f in /etc/systemd/system/multi-user.target.wants/*; do
		[ -e "$f" ] || continue
		systemctl start "${f##*/}" || echo "boot: ${f##*/} failed"
	done
) </dev/null >>/var/log/lab/boot-units.log 2>&1 &

exec /usr/sbin/sshd -D -e -f /run/lab/sshd_config
