package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/host"
)

var _ host.Starter = (*Conn)(nil)

// Start runs cmd with root rights (sudo -n when not root, as Run) in an exec
// session of its own on this connection, and returns while it runs: the
// node lock is such a command, held for as long as its stdin stays open. The
// session keeps one of the connection's session slots until it ends, so
// the run never opens more sessions than sshd allows. ctx bounds opening
// the session only.
func (c *Conn) Start(ctx context.Context, cmd string) (host.Process, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	p := &sshProcess{name: c.name, release: c.release}
	ok := false
	defer func() {
		if !ok {
			p.free()
		}
	}()
	s, err := c.newSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: open SSH session: %w", c.name, err)
	}
	p.s = s
	if p.stdin, err = s.StdinPipe(); err == nil {
		p.stdout, err = s.StdoutPipe()
	}
	if err == nil {
		s.Stderr = &p.stderr
		err = s.Start(c.commandLine(cmd))
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: start command: %w", c.name, err)
	}
	ok = true
	return p, nil
}

// sshProcess is a command started on an exec session.
type sshProcess struct {
	name    string
	s       *ssh.Session
	stdin   io.WriteCloser
	stdout  io.Reader
	stderr  host.CappedBuffer
	release func() // gives the session slot back

	freed   sync.Once
	wait    sync.Once
	res     host.Result
	waitErr error
}

func (p *sshProcess) free() { p.freed.Do(p.release) }

func (p *sshProcess) Stdout() io.Reader     { return p.stdout }
func (p *sshProcess) Stdin() io.WriteCloser { return p.stdin }

// Wait waits for the command's exit status; every call gets the same answer.
func (p *sshProcess) Wait() (host.Result, error) {
	p.wait.Do(func() {
		defer p.free()
		err := p.s.Wait()
		p.res = host.Result{Stderr: p.stderr.Bytes()}
		var ee *ssh.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.res.Code = ee.ExitStatus()
		default:
			p.waitErr = fmt.Errorf("%s: command ended without an exit status (connection lost?)", p.name)
		}
	})
	return p.res, p.waitErr
}

// Close closes the channel: sshd closes the command's stdin, so a lock's
// cat ends and the lock is released, as when the connection drops.
func (p *sshProcess) Close() error {
	err := p.s.Close()
	p.free()
	return err
}
