package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"sync"

	"hastack.dev/hastack/modules"
)

// Docroot proves users.docroot is one storage behind the front end: a
// probe file written under it on the first node, read on every other
// node, then removed (the only thing check writes; its name and content
// are random, so no one can plant it). Every step runs as the first
// transfer user with the config's uid and gid, never as root: the docroot
// is the users' to write, a root write there could be led through their
// links, and it shows the user can write where transfers land. nodes are
// the HSTS nodes that answered the front end's check.
func (c *Checker) Docroot(ctx context.Context, nodes []string) Report {
	d, f := c.Cluster.Users.Docroot, c.Cluster.Frontend
	if d == "" || f == nil || len(nodes) == 0 || len(c.Cluster.Users.Transfer) == 0 {
		return nil
	}
	user := c.Cluster.Users.Transfer[0]
	id, ok := f.TransferIDs[user]
	if !ok {
		return nil // vet requires ids for every transfer user with a front end
	}
	var rnd [16]byte
	rand.Read(rnd[:])
	probe := path.Join(d, ".hastack-probe-"+hex.EncodeToString(rnd[:8]))
	token := hex.EncodeToString(rnd[8:])
	// timeout: a reader could meet a FIFO planted under the same name on a
	// node's local directory.
	as := fmt.Sprintf("timeout 5 setpriv --reuid=%d --regid=%d --clear-groups --", id[0], id[1])
	isDir := fmt.Sprintf("[ -d %[1]s ] || { echo '%[1]s is not a directory'; exit 1; }\n", modules.Quote(d))
	who := fmt.Sprintf("%s (uid %d)", user, id[0])

	var r Report
	add := func(node string, ok bool, format string, args ...any) {
		r = append(r, Result{Node: node, Check: "docroot", OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	writer := nodes[0]
	// set -C: the probe is created, never an existing file written.
	write := isDir + fmt.Sprintf("%s sh -c 'set -C && printf \"%%s\\n\" \"$1\" >\"$2\"' sh %s %s 2>&1\n", as, token, modules.Quote(probe))
	if out, err := c.run(ctx, writer, write); err != nil || len(out) > 0 {
		add(writer, false, "%s cannot write a probe under %s: %s", who, d, outcome(out, err))
		return r
	}
	add(writer, true, "%s wrote a probe under %s", who, d)

	read := isDir + fmt.Sprintf("%s cat -- %s 2>&1\n", as, modules.Quote(probe))
	got := make([]string, len(nodes))
	var wg sync.WaitGroup
	for i := 1; i < len(nodes); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.run(ctx, nodes[i], read)
			if err != nil {
				got[i] = err.Error()
			} else {
				got[i] = strings.TrimSpace(string(out))
			}
		}()
	}
	wg.Wait()
	for i := 1; i < len(nodes); i++ {
		if got[i] == token {
			add(nodes[i], true, "reads %s's probe under %s: one storage", writer, d)
		} else {
			add(nodes[i], false, "does not read %s's probe under %s (%s): not the storage %s writes to, a local directory or another mount", writer, d, outcome([]byte(got[i]), nil), writer)
		}
	}
	if out, err := c.run(ctx, writer, fmt.Sprintf("%s rm -f -- %s 2>&1\n", as, modules.Quote(probe))); err != nil || len(out) > 0 {
		add(writer, false, "cannot remove the probe %s: %s", probe, outcome(out, err))
	}
	return r
}

// outcome is a step's error or the first line it printed.
func outcome(out []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	return keyLine(firstLine(string(out)))
}
