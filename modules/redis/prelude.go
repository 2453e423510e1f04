// Package redis is the Redis and Sentinel know-how of hastack's modules:
// the redis-cli prelude, the facts a node's Sentinel and Redis give (read
// by the fact script or, over a forwarded connection, by the RESP reader),
// the live set of a changed config line, and the sentinelreset kind.
// Importing it registers them with package modules.
package redis

import (
	"context"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// PATH is the PATH Prelude sets: the Aspera tools (asredis) first, then
// the system's.
const PATH = "/opt/aspera/bin:" + modules.NodePATH

// PreludeName is the name Prelude is registered under: a command's
// `prelude: "redis"`.
const PreludeName = "redis"

// Prelude defines redisq, the Redis CLI (asredis, as 003 uses, or
// redis-cli) authenticated with the cluster password, and redism HOST PORT
// CMDS, which sends several newline-separated commands on one connection on
// redis-cli's stdin (use it for any command that carries a password: a
// function's arguments are on no process's command line); during a
// rotation both fall back to the previous password. Scripts that use it are
// sent on stdin (sh -s) after secret.Fill, so no password is ever on a
// command line; SecretVar keeps the shell from parsing it. It is the one
// Redis CLI prelude: the fact script's, commands', the rollout's and
// check's.
var Prelude = modules.SecretVar("HASTACK_PW", secret.Placeholder) + modules.SecretVar("HASTACK_PW_OLD", secret.PreviousPlaceholder) +
	"PATH=" + PATH + "\n" + `_cli=$(command -v asredis || command -v redis-cli)
redisq() {
	_out=$(REDISCLI_AUTH="$HASTACK_PW" timeout 5 "$_cli" --no-auth-warning "$@" 2>&1 </dev/null)
	case "$_out" in *NOAUTH*|*WRONGPASS*|*"AUTH failed"*)
		[ -n "$HASTACK_PW_OLD" ] && _out=$(REDISCLI_AUTH="$HASTACK_PW_OLD" timeout 5 "$_cli" --no-auth-warning "$@" 2>&1 </dev/null) ;;
	esac
	printf '%s\n' "$_out"
}
redism() {
	_out=$(printf '%s\n' "$3" | REDISCLI_AUTH="$HASTACK_PW" timeout 5 "$_cli" --no-auth-warning -h "$1" -p "$2" 2>&1)
	case "$_out" in *NOAUTH*|*WRONGPASS*|*"AUTH failed"*)
		[ -n "$HASTACK_PW_OLD" ] && _out=$(printf '%s\n' "$3" | REDISCLI_AUTH="$HASTACK_PW_OLD" timeout 5 "$_cli" --no-auth-warning -h "$1" -p "$2" 2>&1) ;;
	esac
	printf '%s\n' "$_out"
}
`

func init() { modules.RegisterPrelude(PreludeName, Prelude) }

// Run runs body after Prelude on h, the password filled in.
func Run(ctx context.Context, h host.Host, body string, sec secret.Secret) (host.Result, error) {
	return modules.Exec(ctx, h, "sh -s", secret.Fill([]byte(Prelude+body), sec), sec)
}
