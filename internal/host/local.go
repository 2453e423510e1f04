package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Local returns a Host for this machine. Commands run with the rights of the
// current process (no sudo is added), which is what tests and single-node use
// want.
func Local(name string) Host { return localHost{name: name} }

type localHost struct{ name string }

func (l localHost) Name() string { return l.name }

func (l localHost) Close() error { return nil }

// DialTCP connects from this machine.
func (l localHost) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// Run runs cmd with /bin/sh -c. A non-zero exit is reported in Result.Code;
// errors are reserved for "could not run at all" and cancellation.
func (l localHost) Run(ctx context.Context, cmd string, stdin io.Reader) (Result, error) {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errb
	err := c.Run()
	res := Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: command interrupted: %w", l.name, ctx.Err())
	case errors.As(err, &ee) && ee.Exited():
		res.Code = ee.ExitCode()
	default:
		return res, fmt.Errorf("%s: run command: %w", l.name, err)
	}
	return res, nil
}

// WriteFile writes f atomically. ctx is ignored on purpose: once started, the
// write must finish so an interrupt never leaves a half-written file.
func (l localHost) WriteFile(_ context.Context, f File) error {
	if err := writeAtomic(f); err != nil {
		return fmt.Errorf("%s: write %s: %w", l.name, f.Path, err)
	}
	return nil
}

// TempName is the name of the temporary file used to write path atomically:
// hidden, in the same directory (so the rename stays on one filesystem), and
// recognisable as ours.
func TempName(path string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	dir, base := filepath.Split(path)
	return filepath.Join(dir, "."+base+".hastack-"+hex.EncodeToString(b[:]))
}

func writeAtomic(f File) (err error) {
	tmp := TempName(f.Path)
	// O_EXCL with 0600: never readable by others, even before the chmod.
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fh.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = fh.Write(f.Data); err != nil {
		return err
	}
	if err = fh.Sync(); err != nil {
		return err
	}
	if err = fh.Chmod(f.Mode.Perm()); err != nil {
		return err
	}
	if f.UID >= 0 || f.GID >= 0 {
		if err = fh.Chown(f.UID, f.GID); err != nil { // -1 keeps that id
			return err
		}
	}
	if err = fh.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, f.Path); err != nil {
		return err
	}
	// Sync the directory so the rename itself survives a crash.
	if d, derr := os.Open(filepath.Dir(f.Path)); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Start starts cmd with /bin/sh -c, not tied to ctx: see Starter.
func (l localHost) Start(ctx context.Context, cmd string) (Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	c := exec.Command("/bin/sh", "-c", cmd)
	p := &localProcess{cmd: c}
	c.Stderr = &p.stderr
	var err error
	if p.stdin, err = c.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%s: start command: %w", l.name, err)
	}
	if p.stdout, err = c.StdoutPipe(); err != nil {
		return nil, fmt.Errorf("%s: start command: %w", l.name, err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("%s: start command: %w", l.name, err)
	}
	return p, nil
}

var _ Starter = localHost{}

type localProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.Reader
	stderr CappedBuffer

	wait    sync.Once
	res     Result
	waitErr error
}

func (p *localProcess) Stdout() io.Reader     { return p.stdout }
func (p *localProcess) Stdin() io.WriteCloser { return p.stdin }

// Wait may be called more than once; every call gets the same answer.
func (p *localProcess) Wait() (Result, error) {
	p.wait.Do(func() {
		err := p.cmd.Wait()
		p.res = Result{Stderr: p.stderr.Bytes()}
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.Exited():
			p.res.Code = ee.ExitCode()
		default:
			p.waitErr = err
		}
	})
	return p.res, p.waitErr
}

// Close closes stdin and kills the shell. Its children (a lock's cat) see
// their input end and stop too.
func (p *localProcess) Close() error {
	p.stdin.Close()
	p.cmd.Process.Kill()
	go p.Wait() // reap it
	return nil
}

// CappedBuffer keeps the first 4 KiB written to it and drops the rest:
// enough for an error message from a command that runs for long.
type CappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const capBytes = 4 << 10

func (b *CappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := capBytes - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Bytes is a copy of what was kept.
func (b *CappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
