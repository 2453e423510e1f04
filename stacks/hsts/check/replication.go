package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/redis"
)

// drillAccount is the system account the drill's Node API user maps to.
// Seed 003 step 13 maps its user to root; the drill's must open nothing
// even for the seconds it lives, or if a killed run left it behind:
// nobody exists on every Linux system and owns nothing.
const drillAccount = "nobody"

// drillPrefix starts the name of every drill user: a user of that name
// that a killed run left behind is removed by the next drill.
const drillPrefix = "hastack-check-"

// cleanupTimeout bounds the removal of the drill user once the drill's own
// context is done (Ctrl-C): long enough for a round trip, short enough not
// to keep a user waiting who pressed it.
const cleanupTimeout = 15 * time.Second

// Replication runs seed 003 step 13 with a throwaway Node API user: add it
// on node A, see it listed on node B, delete it on node C, see it gone on
// A. With fewer than three nodes the roles wrap around. The user is
// removed on every way out once its add was started: a failed step, and a
// cancelled ctx, with a fresh context of its own.
func (c *Checker) Replication(ctx context.Context) Report {
	ns := c.Cluster.Nodes
	a, b, cc := ns[0].Name, ns[1%len(ns)].Name, ns[2%len(ns)].Name
	var rnd [6]byte
	rand.Read(rnd[:])
	user := drillPrefix + hex.EncodeToString(rnd[:])
	rand.Read(rnd[:])
	pass := hex.EncodeToString(rnd[:]) // a throwaway user's, not the cluster's
	var r Report
	add := func(node string, ok bool, format string, args ...any) bool {
		r = append(r, Result{Node: node, Check: "replication", OK: ok, Detail: fmt.Sprintf(format, args...)})
		return ok
	}
	c.logf("replication: test user %s (system user %s): add on %s, list on %s, delete on %s, list on %s", user, drillAccount, a, b, cc, a)
	added := false
	defer func() {
		if added {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if out, code, err := c.admin(cctx, a, "-du "+modules.Quote(user)); err != nil || code != 0 {
				c.logf("replication: removing the test user %s on %s failed (exit %d): %v %s", user, a, code, err, out)
			}
		}
	}()
	// From here the user may exist: an interrupted add may have added it.
	added = true
	if out, code, err := c.addUser(ctx, a, user, pass); err != nil || code != 0 {
		add(a, false, "asnodeadmin -au %s failed (exit %d): %v %s", user, code, err, out)
		return r
	}
	add(a, true, "asnodeadmin -au %s added the user", user)
	// Replication is asynchronous: give it a few seconds.
	if !c.waitListed(ctx, b, user, true, 10*time.Second) {
		add(b, false, "asnodeadmin -l does not list %s, added on %s, after 10 s", user, a)
		return r
	}
	add(b, true, "asnodeadmin -l lists %s, added on %s", user, a)
	if out, code, err := c.admin(ctx, cc, "-du "+modules.Quote(user)); err != nil || code != 0 {
		add(cc, false, "asnodeadmin -du %s failed (exit %d): %v %s", user, code, err, out)
		return r
	}
	added = false
	add(cc, true, "asnodeadmin -du %s deleted the user", user)
	if !c.waitListed(ctx, a, user, false, 10*time.Second) {
		add(a, false, "asnodeadmin -l still lists %s, deleted on %s, after 10 s", user, cc)
		return r
	}
	add(a, true, "asnodeadmin -l no longer lists %s, deleted on %s", user, cc)
	return r
}

// addUser removes the drill users an earlier, killed run left behind, then
// adds user. The password travels in the script, on stdin: it is on no
// command line hastack sends, nor in sudo's log. asnodeadmin itself takes
// it only as -p, so it is in that one process's arguments while it runs:
// a random password of a user mapped to drillAccount, deleted seconds later.
func (c *Checker) addUser(ctx context.Context, node, user, pass string) (string, int, error) {
	script := fmt.Sprintf(`for u in $(asnodeadmin -l </dev/null 2>/dev/null | grep -o '%[1]s[0-9a-f]*'); do
	asnodeadmin -du "$u" </dev/null >/dev/null 2>&1 && echo "removed the test user $u that an earlier run left behind"
done
pw=%[2]s
asnodeadmin -au %[3]s -p "$pw" -x %[4]s </dev/null 2>&1
`, drillPrefix, modules.Quote(pass), modules.Quote(user), drillAccount)
	out, code, err := c.adminScript(ctx, node, script)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "removed the test user ") {
			c.logf("replication: %s: %s", node, l)
		}
	}
	return out, code, err
}

// admin runs asnodeadmin ARGS on node and returns its output and exit code.
func (c *Checker) admin(ctx context.Context, node, args string) (string, int, error) {
	return c.adminScript(ctx, node, "asnodeadmin "+args+" </dev/null 2>&1\n")
}

// adminScript runs script on node, on stdin, with the Aspera tools first on
// the PATH.
func (c *Checker) adminScript(ctx context.Context, node, script string) (string, int, error) {
	h := c.Hosts[node]
	if h == nil {
		return "", -1, fmt.Errorf("no connection to %s", node)
	}
	res, err := h.Run(ctx, "sh -s", strings.NewReader("PATH="+redis.PATH+"\n"+script))
	return strings.TrimSpace(string(res.Stdout)), res.Code, err
}

// waitListed polls asnodeadmin -l on node until user is (or is not) listed.
func (c *Checker) waitListed(ctx context.Context, node, user string, want bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		out, code, err := c.admin(ctx, node, "-l")
		if err == nil && code == 0 && listed(out, user) == want {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// listed tells whether a word of asnodeadmin -l's table is user.
func listed(out, user string) bool {
	for _, w := range strings.FieldsFunc(out, func(r rune) bool { return r == ' ' || r == '|' || r == '\n' || r == '\t' }) {
		if w == user {
			return true
		}
	}
	return false
}
