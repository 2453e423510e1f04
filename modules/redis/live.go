package redis

import (
	"context"
	"fmt"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// live applies a changed conf line to a running Redis (CONFIG SET) or
// Sentinel (SENTINEL SET / SENTINEL CONFIG SET): conf's `live: "redis"`
// and `live: "sentinel"`.
type live struct{ sentinel bool }

func init() {
	modules.RegisterLive("redis", live{})
	modules.RegisterLive("sentinel", live{sentinel: true})
	modules.RegisterSecretLine(secretLine)
}

// Up reads the facts the driver asked of the server at addr: a Redis's
// INFO, or any primary set's answer of the Sentinel there.
func (l live) Up(nf *modules.NodeFacts, addr string) bool {
	if !l.sentinel {
		return Info(nf, addr).State == "up"
	}
	m, _ := nf.Shared(SentinelFact).(map[string]any)
	for key, v := range m {
		if hp, _, _ := strings.Cut(key, "/"); hp == InfoKey(addr) {
			if sv, _ := v.(SentinelView); sv.State == "up" {
				return true
			}
		}
	}
	return false
}

// Set sends one command on redis-cli's stdin (redism), never on a command
// line: it may carry a password (masterauth, auth-pass, ACL SETUSER).
func (live) Set(ctx context.Context, h host.Host, addr, cmd string, sec secret.Secret) error {
	ip, port, _ := strings.Cut(addr, " ")
	res, err := Run(ctx, h, fmt.Sprintf("redism %s %s %s\n", modules.Quote(ip), modules.Quote(port), modules.Quote(cmd)), sec)
	if err != nil {
		return err
	}
	if out := strings.TrimSpace(string(res.Stdout)); out != "OK" {
		return fmt.Errorf("%s: %s", modules.Mask(cmd, sec), modules.Mask(out, sec))
	}
	return nil
}

// secretLine knows the config lines whose secret their name does not say:
// a Redis ACL user's line (its password's hash, "user default on #..."),
// and HAProxy's health check of a Redis ("tcp-check send AUTH ...").
func secretLine(line string) (string, bool) {
	t := strings.Fields(line)
	switch {
	case len(t) >= 3 && strings.EqualFold(t[0], "user"):
		return t[0] + " " + t[1] + " ", true
	case len(t) >= 3 && t[0] == "tcp-check" && t[1] == "send" && strings.HasPrefix(t[2], "AUTH"):
		return "tcp-check send AUTH ", true
	}
	return "", false
}
