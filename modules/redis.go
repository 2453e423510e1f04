package modules

import (
	"context"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// RedisPrelude defines redisq, the Redis CLI (asredis, as 003 uses, or
// redis-cli) authenticated with the cluster password, and redism HOST PORT
// CMDS, which sends several newline-separated commands on one connection on
// redis-cli's stdin (use it for any command that carries a password: a
// function's arguments are on no process's command line); during a
// rotation both fall back to the previous password. Scripts that use it are
// sent on stdin (sh -s) after secret.Fill, so no password is ever on a
// command line; SecretVar keeps the shell from parsing it.
var RedisPrelude = SecretVar("HASTACK_PW", secret.Placeholder) + SecretVar("HASTACK_PW_OLD", secret.PreviousPlaceholder) +
	"PATH=" + NodePATH + "\n" + `_cli=$(command -v asredis || command -v redis-cli)
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

// runRedis runs body after RedisPrelude on h.
func runRedis(ctx context.Context, h host.Host, body string, sec secret.Secret) (host.Result, error) {
	return run(ctx, h, "sh -s", secret.Fill([]byte(RedisPrelude+body), sec), sec)
}
