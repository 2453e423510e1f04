package sshconn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"hastack.dev/hastack/internal/host"
)

// sftpServerScript starts the first sftp-server found, with umask 077 so every
// file it creates is 0600 from the first moment (pkg/sftp cannot pass a mode
// when opening a file, and the server default would be 0644 for an instant).
func sftpServerScript(bin string) string {
	paths := "/usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/libexec/sftp-server"
	if bin != "" {
		paths = ShellQuote(bin)
	}
	return `umask 077; for p in ` + paths + `; do if [ -x "$p" ]; then exec "$p"; fi; done; ` +
		`echo "no sftp-server found (tried ` + strings.ReplaceAll(paths, "'", "") + `)" >&2; exit 127`
}

// sftpClient opens the connection's SFTP session on first use. A failure is
// not remembered: the next write tries again.
func (c *Conn) sftpClient() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	select {
	case <-c.done:
		return nil, errors.New("connection closed")
	default:
	}
	if c.sftp != nil {
		return c.sftp, nil
	}
	s, err := c.newSession(context.Background())
	if err != nil {
		return nil, fmt.Errorf("open SSH session for SFTP: %w", err)
	}
	w, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	var stderr strings.Builder
	sub := c.cfg.SFTPServer == SFTPSubsystem
	if sub {
		err = s.RequestSubsystem("sftp")
	} else {
		s.Stderr = &limitedWriter{w: &stderr, n: 512}
		err = s.Start(c.commandLine(sftpServerScript(c.cfg.SFTPServer)))
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("start SFTP: %w", err)
	}
	cl, err := sftp.NewClientPipe(r, w, sftp.UseConcurrentWrites(true))
	if err != nil {
		// Let the session end so its stderr is complete, but do not hang on
		// a server that keeps it open.
		w.Close()
		waited := make(chan struct{})
		go func() { s.Wait(); close(waited) }()
		var msg string
		select {
		case <-waited:
			msg = strings.TrimSpace(stderr.String())
		case <-time.After(2 * time.Second):
		}
		s.Close()
		if msg != "" {
			return nil, fmt.Errorf("start SFTP: %s", msg)
		}
		return nil, fmt.Errorf("start SFTP: %w", err)
	}
	if _, ok := cl.HasExtension("posix-rename@openssh.com"); !ok {
		cl.Close()
		return nil, errors.New("the SFTP server lacks posix-rename@openssh.com, needed to replace files atomically")
	}
	c.sftp, c.sftpSub = cl, sub
	return cl, nil
}

type limitedWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		l.w.WriteString(string(p[:l.n]))
		l.n = 0
	} else {
		l.w.WriteString(string(p))
		l.n -= len(p)
	}
	return len(p), nil
}

// WriteFile replaces f.Path atomically over SFTP: a 0600 temp file in the same
// directory, written, synced (when the server offers fsync@openssh.com),
// moded, owned, then renamed over the target with posix-rename. Once started
// it ignores ctx cancellation (and Close waits for it), and on any error it
// removes the temp file.
func (c *Conn) WriteFile(ctx context.Context, f host.File) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: write %s: %w", c.name, f.Path, context.Cause(ctx))
	}
	if !c.beginWrite() {
		return fmt.Errorf("%s: write %s: connection closed", c.name, f.Path)
	}
	defer c.writes.Done()
	if err := c.writeFile(context.WithoutCancel(ctx), f); err != nil {
		return fmt.Errorf("%s: write %s: %w", c.name, f.Path, err)
	}
	return nil
}

func (c *Conn) writeFile(ctx context.Context, f host.File) (err error) {
	cl, err := c.sftpClient()
	if err != nil {
		return err
	}
	tmp := host.TempName(f.Path)
	var fh *sftp.File
	if c.sftpSub {
		// The subsystem's umask is not ours: create the file 0600 with a
		// shell first, then open it without O_CREATE.
		res, rerr := c.Run(ctx, "umask 077 && set -C && : > "+ShellQuote(tmp), nil)
		if rerr != nil {
			return rerr
		}
		if res.Code != 0 {
			return fmt.Errorf("create temp file: %s", strings.TrimSpace(string(res.Stderr)))
		}
		fh, err = cl.OpenFile(tmp, os.O_WRONLY)
	} else {
		fh, err = cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	}
	if err != nil {
		if c.sftpSub {
			cl.Remove(tmp)
		}
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if err != nil {
			fh.Close()
			cl.Remove(tmp)
		}
	}()
	if _, err = fh.Write(f.Data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if _, ok := cl.HasExtension("fsync@openssh.com"); ok {
		if err = fh.Sync(); err != nil {
			return fmt.Errorf("fsync temp file: %w", err)
		}
	}
	if err = fh.Chmod(f.Mode.Perm()); err != nil {
		return fmt.Errorf("chmod temp file: %w", err)
	}
	if f.UID >= 0 || f.GID >= 0 {
		if err = chown(fh, f.UID, f.GID); err != nil {
			return fmt.Errorf("chown temp file: %w", err)
		}
	}
	if err = fh.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}
	if err = cl.PosixRename(tmp, f.Path); err != nil {
		return fmt.Errorf("rename temp file: %w", err)
	}
	return nil
}

// chown sets the owner; -1 keeps that id (SFTP has no "unchanged" value, so
// the current one is read back first).
func chown(fh *sftp.File, uid, gid int) error {
	if uid < 0 || gid < 0 {
		st, err := fh.Stat()
		if err != nil {
			return err
		}
		fs, ok := st.Sys().(*sftp.FileStat)
		if !ok {
			return errors.New("server did not report the owner")
		}
		if uid < 0 {
			uid = int(fs.UID)
		}
		if gid < 0 {
			gid = int(fs.GID)
		}
	}
	return fh.Chown(uid, gid)
}
