package sshtest

import (
	"errors"
	"io"
	"os/exec"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// session serves one session channel: one "exec" or one "sftp" subsystem.
// As under sshd, the command runs in a session of its own (setsid) and a
// "signal" request goes to its process group (as OpenSSH does for non-root
// logins). When the client closes the channel, the first process is killed,
// not its children.
func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	var once sync.Once
	var cmd *exec.Cmd
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Kill()
		}
		mu.Unlock()
	}()
	for r := range reqs {
		switch r.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(r.Payload, &p); err != nil {
				r.Reply(false, nil)
				continue
			}
			started := false
			once.Do(func() {
				mu.Lock()
				cmd = exec.Command("/bin/sh", "-c", p.Command)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
				mu.Unlock()
				started = true
			})
			r.Reply(started, nil)
			if started {
				go runExec(ch, cmd, &mu)
			}
		case "subsystem":
			var p struct{ Name string }
			ok := ssh.Unmarshal(r.Payload, &p) == nil && p.Name == "sftp" && !s.opts.NoSFTP
			started := false
			if ok {
				once.Do(func() { started = true })
			}
			r.Reply(started, nil)
			if started {
				go serveSFTP(ch)
			}
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(r.Payload, &p) == nil {
				mu.Lock()
				if sig, ok := signals[p.Signal]; ok && cmd != nil && cmd.Process != nil {
					syscall.Kill(-cmd.Process.Pid, sig)
				}
				mu.Unlock()
			}
			if r.WantReply {
				r.Reply(false, nil) // OpenSSH never replies either
			}
		default: // env, pty-req...: refused, as a locked-down sshd would
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}
}

// signals are the "signal" request names sshtest delivers.
var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM,
}

// runExec runs cmd with the channel as its stdio and reports the exit status.
func runExec(ch ssh.Channel, cmd *exec.Cmd, mu *sync.Mutex) {
	defer ch.Close()
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	// Our own stdin copy: exec.Cmd would wait for client EOF before Wait
	// returns, even when the command never reads stdin.
	in, err := cmd.StdinPipe()
	if err == nil {
		mu.Lock()
		err = cmd.Start()
		mu.Unlock()
	}
	if err != nil {
		io.WriteString(ch.Stderr(), "sshtest: "+err.Error()+"\n")
		ch.SendRequest("exit-status", false, exitStatus(127))
		return
	}
	go func() {
		io.Copy(in, ch)
		in.Close()
	}()
	code := 0
	var ee *exec.ExitError
	if err := cmd.Wait(); errors.As(err, &ee) {
		code = ee.ExitCode()
		if code < 0 { // killed by a signal
			code = 255
		}
	}
	ch.SendRequest("exit-status", false, exitStatus(code))
}

func serveSFTP(ch ssh.Channel) {
	defer ch.Close()
	srv, err := sftp.NewServer(ch)
	if err != nil {
		return
	}
	srv.Serve()
	srv.Close()
}
