package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"hastack.dev/hastack/modules"
)

// Replication runs seed 003 step 13 with a throwaway Node API user: add it
// on node A, see it listed on node B, delete it on node C, see it gone on
// A. With fewer than three nodes the roles wrap around. The user is deleted
// again if a step fails after it was added.
func (c *Checker) Replication(ctx context.Context) Report {
	ns := c.Cluster.Nodes
	a, b, cc := ns[0].Name, ns[1%len(ns)].Name, ns[2%len(ns)].Name
	var rnd [6]byte
	rand.Read(rnd[:])
	user := "hastack-check-" + hex.EncodeToString(rnd[:])
	rand.Read(rnd[:])
	pass := hex.EncodeToString(rnd[:]) // a throwaway user's, not the cluster's
	var r Report
	add := func(node string, ok bool, format string, args ...any) bool {
		r = append(r, Result{Node: node, Check: "replication", OK: ok, Detail: fmt.Sprintf(format, args...)})
		return ok
	}
	c.logf("replication: test user %s: add on %s, list on %s, delete on %s, list on %s", user, a, b, cc, a)
	added := false
	defer func() {
		if added { // a step failed after the add: leave nothing behind
			c.admin(context.WithoutCancel(ctx), a, "-du "+modules.Quote(user))
		}
	}()
	if out, code, err := c.admin(ctx, a, fmt.Sprintf("-au %s -p %s -x root", modules.Quote(user), pass)); err != nil || code != 0 {
		add(a, false, "asnodeadmin -au %s failed (exit %d): %v %s", user, code, err, out)
		return r
	}
	added = true
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

// admin runs asnodeadmin on node and returns its output and exit code.
func (c *Checker) admin(ctx context.Context, node, args string) (string, int, error) {
	h := c.Hosts[node]
	if h == nil {
		return "", -1, fmt.Errorf("no connection to %s", node)
	}
	res, err := h.Run(ctx, "PATH=/opt/aspera/bin:$PATH; asnodeadmin "+args+" </dev/null 2>&1", nil)
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
		time.Sleep(200 * time.Millisecond)
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
