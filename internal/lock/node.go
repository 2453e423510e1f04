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

// heldMark is the line the node prints once the lock is ours and the
// holder file written.
const heldMark = "hastack-lock: held"

// nodeScript takes the lock in dir and holds it while its stdin is open;
// when the lock is busy it prints the holder's file and exits busyCode. It
// runs under sudo -n when the login user is not root (host.Host.Run's
// rule), so dir is root's. Values are quoted: none becomes a command.
//
// The folder must be a real folder of the user running the script (root),
// or anyone who could write it could plant a symlink for root to follow.
func nodeScript(dir string, h Holder) string {
	return fmt.Sprintf(`umask 077
d=%s
mkdir -p "$d" || exit 70
if [ -L "$d" ] || [ "$(stat -c %%u "$d")" != "$(id -u)" ]; then
	echo "$d is not root's own folder: refusing to lock there" >&2; exit 70
fi
chmod 700 "$d" || exit 70
command -v flock >/dev/null 2>&1 || { echo "flock(1) is not installed (Debian package util-linux)" >&2; exit 70; }
flock -n -E %d "$d/lock" sh -c 'printf "%%s" "$1" >"$2.tmp" && mv -f "$2.tmp" "$2" && echo "$3" && cat >/dev/null; rm -f "$2"' sh %s "$d/lock.holder" %s
rc=$?
if [ "$rc" = %d ]; then head -c 4096 "$d/lock.holder" 2>/dev/null; fi
exit "$rc"
`, sshconn.ShellQuote(dir), busyCode, sshconn.ShellQuote(h.encode()), sshconn.ShellQuote(heldMark), busyCode)
}

// Node is a lock held on one node, for as long as its command runs.
type Node struct {
	name string
	p    host.Process
}

// TryNode takes h's lock in dir (NodeDir on real nodes) without waiting.
// It fails with a *HeldError naming the holder when another run holds it.
// The lock is held until Release, or until the connection ends.
func TryNode(ctx context.Context, h host.Host, dir string, holder Holder) (*Node, error) {
	st, ok := h.(host.Starter)
	if !ok {
		return nil, fmt.Errorf("%s: this connector cannot hold a lock", h.Name())
	}
	p, err := st.Start(ctx, nodeScript(dir, holder))
	if err != nil {
		return nil, err
	}
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
		return nil, fmt.Errorf("%s: taking the lock: %w", h.Name(), context.Cause(ctx))
	}
	if strings.TrimSuffix(first, "\n") == heldMark {
		return &Node{name: h.Name(), p: p}, nil
	}
	// Not ours: the rest of stdout is the holder's file.
	rest, _ := io.ReadAll(out)
	res, err := p.Wait()
	p.Close()
	switch {
	case err != nil:
		return nil, err
	case res.Code == busyCode:
		return nil, &HeldError{Where: "node " + h.Name(), Holder: parseHolder(first + string(rest))}
	}
	msg := strings.TrimSpace(Clean(strings.ReplaceAll(string(res.Stderr), "\n", "; ")))
	return nil, fmt.Errorf("%s: cannot take the node lock in %s (exit %d): %s", h.Name(), dir, res.Code, msg)
}

// releaseWait bounds how long Release waits for the node to confirm.
const releaseWait = 5 * time.Second

// Release ends the lock's input: the node removes the holder file and
// flock lets go. It waits a little for that, then closes the session.
func (n *Node) Release() {
	if n == nil || n.p == nil {
		return
	}
	n.p.CloseStdin()
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
