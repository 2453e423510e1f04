#!/usr/bin/env bash
# The test command (README, .ci/run): installs the Debian packages the
# tests use, then runs every test. As root the end-to-end tests run on real
# sshd/Redis/Sentinel nodes in network namespaces; without root they are
# skipped, and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
if [ "$(id -u)" = 0 ]; then
	bash tools/deps.sh
fi
go version
go vet ./...
# One package and one test at a time: the end-to-end tests start real
# clusters in namespaces, and on a 2-core machine several at once only make
# each slower and flakier.
go test -count=1 -p 1 -parallel 1 -timeout 60m ./... 2>&1 | tee /tmp/hastack-test.log
