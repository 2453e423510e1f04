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
go test -count=1 -timeout 60m ./... 2>&1 | tee /tmp/hastack-test.log
