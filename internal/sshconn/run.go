package sshconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/host"
)

// ShellQuote quotes s as one word for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commandLine is what the server's login shell gets: always /bin/sh (the
// login shell may be anything), under "sudo -n" when not root so a missing
// sudo rule fails at once instead of waiting for a password.
func (c *Conn) commandLine(cmd string) string {
	line := "/bin/sh -c " + ShellQuote(cmd)
	if c.sudo {
		line = "sudo -n " + line
	}
	return line
}

// acquire takes a session slot, or fails when ctx ends first.
func (c *Conn) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", c.name, context.Cause(ctx))
	case <-c.done:
		return fmt.Errorf("%s: connection closed", c.name)
	}
}

func (c *Conn) release() { <-c.sem }

// newSession opens a session channel. sshd frees a closed session a moment
// after we see it closed, so under load it may briefly refuse a new one
// ("open failed") although we stay below its MaxSessions: retry a little.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	wait := time.Millisecond
	for try := 0; ; try++ {
		s, err := c.client.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || try == 20 {
			return s, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// interruptible wraps cmd so that stopping it stops its children too. The
// wrapper first reports its pid on stderr (see pidWriter), then runs cmd in
// the background and waits: a shell runs no trap while a foreground command
// runs. A TERM, HUP or INT to the wrapper then kills its process group (cmd
// and every child). cmd's stdin comes through fd 3: a background list's
// stdin would be /dev/null.
func interruptible(cmd string) string {
	return "printf '" + pidPrefix + "%d\\n' $$ >&2\n" +
		"trap 'trap - TERM; kill -TERM 0' TERM HUP INT\n" +
		"exec 3<&0\n{\n" + cmd + "\n} <&3 3<&- &\nwait $!\n"
}

const pidPrefix = "hastack-pid "

// pidWriter passes stderr on without the wrapper's pid line, whose pid it
// keeps. Lines before it (a login shell's noise) pass through; after it, or
// after 4 KiB without it, everything passes unread.
type pidWriter struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte // an incomplete line while looking
	done    bool
	pid     int
}

func (p *pidWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	if p.done {
		p.w.Write(b)
		return n, nil
	}
	p.pending = append(p.pending, b...)
	for !p.done {
		i := bytes.IndexByte(p.pending, '\n')
		if i < 0 {
			if len(p.pending) > 4096 {
				p.done = true
				p.w.Write(p.pending)
				p.pending = nil
			}
			break
		}
		line := p.pending[:i]
		if v, ok := bytes.CutPrefix(line, []byte(pidPrefix)); ok {
			p.pid, _ = strconv.Atoi(string(v))
			p.done = true
		} else {
			p.w.Write(p.pending[:i+1])
		}
		p.pending = p.pending[i+1:]
	}
	if p.done && len(p.pending) > 0 {
		p.w.Write(p.pending)
		p.pending = nil
	}
	return n, nil
}

// flush passes on a last line still held (a command ended without the
// wrapper's line).
func (p *pidWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Write(p.pending)
	p.pending, p.done = nil, true
}

func (p *pidWriter) remotePid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// track records a running command so that Close can stop it; the returned
// func forgets it.
func (c *Conn) track(s *ssh.Session, pw *pidWriter) (untrack func()) {
	c.liveMu.Lock()
	if c.live == nil {
		c.live = map[*ssh.Session]*pidWriter{}
	}
	c.live[s] = pw
	c.liveMu.Unlock()
	return func() {
		c.liveMu.Lock()
		delete(c.live, s)
		c.liveMu.Unlock()
	}
}

// killWait bounds the kill command that stops an interrupted command.
const killWait = 2 * time.Second

// stop ends running commands: a "signal" request (OpenSSH delivers it to
// the process group, but only for logins other than root, which it runs
// without privilege separation) and, since that is refused for root, a
// "kill -TERM" of each wrapper's pid in a new session. Then it closes the
// sessions. It waits for the kill at most killWait, so an interrupt returns
// promptly even when the node does not answer.
func (c *Conn) stop(ss map[*ssh.Session]*pidWriter) {
	var pids []string
	for s, pw := range ss {
		s.Signal(ssh.SIGTERM)
		s.Close()
		if pid := pw.remotePid(); pid > 1 {
			pids = append(pids, strconv.Itoa(pid))
		}
	}
	if len(pids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	k, err := c.newSession(ctx)
	if err != nil {
		return
	}
	defer k.Close()
	done := make(chan struct{})
	go func() {
		k.Run(c.commandLine("kill -TERM " + strings.Join(pids, " ") + " 2>/dev/null"))
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Run runs cmd with root rights in one exec session. A non-zero exit is a
// Result, not an error; errors mean the command could not run or finish
// (connection lost, ctx ended). When ctx ends, the remote command and its
// children get SIGTERM and Run returns (see stop). Errors never quote cmd
// or stdin.
func (c *Conn) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	if err := c.acquire(ctx); err != nil {
		return host.Result{}, err
	}
	defer c.release()
	s, err := c.newSession(ctx)
	if err != nil {
		return host.Result{}, fmt.Errorf("%s: open SSH session: %w", c.name, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	pw := &pidWriter{w: &errb}
	defer c.track(s, pw)()
	s.Stdin, s.Stdout, s.Stderr = stdin, &out, pw
	done := make(chan error, 1)
	go func() { done <- s.Run(c.commandLine(interruptible(cmd))) }()
	select {
	case err = <-done:
		pw.flush()
		select {
		case <-c.done: // Close stopped it: its exit status is ours, not its own
			return host.Result{}, fmt.Errorf("%s: command interrupted: connection closed", c.name)
		default:
		}
	case <-ctx.Done():
		c.stop(map[*ssh.Session]*pidWriter{s: pw})
		return host.Result{}, fmt.Errorf("%s: command interrupted: %w", c.name, context.Cause(ctx))
	}
	res := host.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *ssh.ExitError
	var em *ssh.ExitMissingError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitStatus() // 128+n when killed by signal n
	case errors.As(err, &em):
		return res, fmt.Errorf("%s: command ended without an exit status (connection lost?)", c.name)
	default:
		return res, fmt.Errorf("%s: run command: %w", c.name, err)
	}
	return res, nil
}
