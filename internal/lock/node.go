package lock

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/sshconn"
)

// NodeDir is hastack's root-only folder on a node (0700, root's): the lock
// is NodeDir/lock and its holder's details NodeDir/lock.holder.
const NodeDir = "/var/lib/hastack"

// busyCode is flock -E's exit status when another run holds the lock.
const busyCode = 75

// holderTries bounds how often a refused run looks again, 50 ms apart,
// for the details of a holder that has just taken the lock and not yet
// written them (about 2 s).
const holderTries = 40

// heldMark is the line the node prints once the lock is ours and the
// holder file written.
const heldMark = "hastack-lock: held"

// nodeScript readies dir, waits for a "go" line on stdin (so a node can
// get ready before its turn in the lock order), then takes the lock and
// holds it while its stdin stays open; when the lock is busy it prints the
// holder's file and exits busyCode. The holder takes the lock before it
// writes that file, so a busy lock with no file yet is looked at again,
// and taken if it was let go meanwhile. It runs under sudo -n when the login
// user is not root (host.Host.Run's rule), so dir is root's. Values are
// quoted: none becomes a command.
//
// The folder must be a real folder of the user running the script (root),
// or anyone who could write it could plant a symlink for root to follow.
func nodeScript(dir string, h Holder) string {
	return fmt.Sprintf(`umask 077
d=%s
[ -d "$d" ] || mkdir -p "$d" || exit 70
if [ -L "$d" ] || [ ! -O "$d" ]; then
	echo "$d is not root's own folder: refusing to lock there" >&2; exit 70
fi
chmod 700 "$d" || exit 70
command -v flock >/dev/null 2>&1 || { echo "flock(1) is not installed (Debian package util-linux)" >&2; exit 70; }
read -r go || exit 0
i=0
while :; do
	flock -n -E %d "$d/lock" sh -c 'printf "%%s" "$1" >"$2.tmp" && mv -f "$2.tmp" "$2" && echo "$3" && cat >/dev/null; rm -f "$2"' sh %s "$d/lock.holder" %s
	rc=$?
	[ "$rc" = %d ] || exit "$rc"
	# Busy. Its holder writes its details just after it takes the lock:
	# give it a moment (%d tries) rather than name "an unknown run".
	if [ -s "$d/lock.holder" ] || [ "$i" -ge %d ]; then
		head -c 4096 "$d/lock.holder" 2>/dev/null; exit "$rc"
	fi
	i=$((i+1)); sleep 0.05 2>/dev/null || sleep 1
done
`, sshconn.ShellQuote(dir), busyCode, sshconn.ShellQuote(h.encode()), sshconn.ShellQuote(heldMark), busyCode, holderTries, holderTries)
}

// Node is a lock held on one node, for as long as its command runs.
type Node struct {
	name string
	p    host.Process
}

// Ready is a node's lock command started and waiting for its turn: the
// session, sudo and the folder checks are done, the lock is not taken.
type Ready struct {
	h   host.Host
	dir string
	p   host.Process
}

// StartNode starts h's lock command in dir (NodeDir on real nodes) and
// leaves it waiting for Take.
func StartNode(ctx context.Context, h host.Host, dir string, holder Holder) (*Ready, error) {
	st, ok := h.(host.Starter)
	if !ok {
		return nil, fmt.Errorf("%s: this connector cannot hold a lock", h.Name())
	}
	p, err := st.Start(ctx, nodeScript(dir, holder))
	if err != nil {
		return nil, err
	}
	return &Ready{h: h, dir: dir, p: p}, nil
}

// TryNode takes h's lock without waiting: StartNode, then Take.
func TryNode(ctx context.Context, h host.Host, dir string, holder Holder) (*Node, error) {
	r, err := StartNode(ctx, h, dir, holder)
	if err != nil {
		return nil, err
	}
	return r.Take(ctx)
}

// Take tries to take the lock, once: it fails with a *HeldError naming the
// holder when another run holds it. The lock is then held until Release,
// or until the connection ends. A Ready is used up by Take.
func (r *Ready) Take(ctx context.Context) (*Node, error) {
	name, p := r.h.Name(), r.p
	r.p = nil
	if p == nil {
		return nil, fmt.Errorf("%s: the lock command was used already", name)
	}
	io.WriteString(p.Stdin(), "go\n")
	out := bufio.NewReader(io.LimitReader(p.Stdout(), 8<<10))
	line := make(chan string, 1)
	go func() {
		l, _ := out.ReadString('\n')
		line <- l
	}()
	var first string
	select {
	case first = <-line:
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("%s: taking the lock: %w", name, context.Cause(ctx))
	}
	if strings.TrimSuffix(first, "\n") == heldMark {
		return &Node{name: name, p: p}, nil
	}
	// Not ours: the rest of stdout is the holder's file.
	rest, _ := io.ReadAll(out)
	res, err := p.Wait()
	p.Close()
	switch {
	case err != nil:
		return nil, err
	case res.Code == busyCode:
		return nil, &HeldError{Where: "node " + name, Holder: parseHolder(first + string(rest))}
	}
	msg := strings.TrimSpace(Clean(strings.ReplaceAll(string(res.Stderr), "\n", "; ")))
	return nil, fmt.Errorf("%s: cannot take the node lock in %s (exit %d): %s", name, r.dir, res.Code, msg)
}

// Abort ends a lock command that will not be used.
func (r *Ready) Abort() {
	if r != nil && r.p != nil {
		r.p.Close()
		r.p = nil
	}
}

// releaseWait bounds how long Release waits for the node to confirm.
const releaseWait = 5 * time.Second

// Release ends the lock's input: the node removes the holder file and
// flock lets go. It waits a little for that, then closes the session.
func (n *Node) Release() {
	if n == nil || n.p == nil {
		return
	}
	n.p.Stdin().Close()
	done := make(chan struct{})
	go func() {
		n.p.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(releaseWait):
	}
	n.p.Close()
	n.p = nil
}
