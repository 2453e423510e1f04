package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/internal/sshconn"
	"hastack.dev/hastack/internal/sshtest"
	"hastack.dev/hastack/modules"
)

// views reads the Sentinel s and the Redis at addr directly, as a plan's
// gather does (modules.ReadDirect), into a NodeFacts.
type views struct {
	s    *SentinelAt
	addr string
	nf   *modules.NodeFacts
}

func (v *views) ReadRedis(ctx context.Context, d host.Dialer, s *SentinelAt, addr string, sec secret.Secret) error {
	nf, err := modules.ReadDirect(ctx, d, Needs(s, addr), sec)
	v.s, v.addr, v.nf = s, addr, nf
	return err
}

func (v *views) sentinel() SentinelView { return Sentinel(v.nf, *v.s) }
func (v *views) redis() RedisView       { return Info(v.nf, v.addr) }

// fakeRedis answers RESP commands on 127.0.0.1 with answer(cmd, authed
// password) and returns its "ip port".
func fakeRedis(t *testing.T, password string, answer func(cmd []string) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				authed := false
				for {
					v, err := readReply(r)
					if err != nil {
						return
					}
					var cmd []string
					for _, a := range v.([]any) {
						cmd = append(cmd, a.(string))
					}
					switch {
					case cmd[0] == "AUTH" && cmd[1] == password:
						authed = true
						fmt.Fprint(c, "+OK\r\n")
					case cmd[0] == "AUTH":
						fmt.Fprint(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n")
					case !authed:
						fmt.Fprint(c, "-NOAUTH Authentication required.\r\n")
					default:
						fmt.Fprint(c, answer(cmd))
					}
				}
			}()
		}
	}()
	ip, port, _ := net.SplitHostPort(l.Addr().String())
	return ip + " " + port
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// sentinelAnswers plays a Sentinel that names 10.0.0.1 and knows one
// Sentinel and one healthy replica.
func sentinelAnswers(cmd []string) string {
	switch strings.Join(cmd[:2], " ") {
	case "SENTINEL get-master-addr-by-name":
		return "*2\r\n" + bulk("10.0.0.1") + bulk("31415")
	case "SENTINEL SENTINELS":
		return "*1\r\n*4\r\n" + bulk("name") + bulk("abc") + bulk("ip") + bulk("10.0.0.2")
	case "SENTINEL REPLICAS":
		return "*1\r\n*6\r\n" + bulk("ip") + bulk("10.0.0.3") + bulk("flags") + bulk("slave") + bulk("master-link-status") + bulk("ok")
	case "SENTINEL CKQUORUM":
		return "+OK 3 usable Sentinels. Quorum and failover authorization can be reached\r\n"
	}
	if cmd[0] == "PING" {
		return bulk(cmd[1])
	}
	return "-ERR unknown command\r\n"
}

func TestReadRedisDirect(t *testing.T) {
	h := host.Local("local").(host.Dialer)
	addr := fakeRedis(t, "new-pw", sentinelAnswers)
	nf := &views{}
	if err := nf.ReadRedis(context.Background(), h, &SentinelAt{Addr: addr, Set: "myprimary"}, "", secret.New("new-pw")); err != nil {
		t.Fatal(err)
	}
	s := nf.sentinel()
	if s.State != "up" || s.Primary != "10.0.0.1 31415" || !s.QuorumOK ||
		strings.Join(s.Sentinels, ",") != "10.0.0.2" || strings.Join(s.Replicas, ",") != "10.0.0.3" ||
		s.ReplicaHealth["10.0.0.3"] != "slave ok" {
		t.Errorf("got %+v", s)
	}
}

// During a rotation the node may still have the previous password: it is
// tried when the new one is refused, as redisq does.
func TestReadRedisPreviousPassword(t *testing.T) {
	h := host.Local("local").(host.Dialer)
	addr := fakeRedis(t, "old-pw", func(cmd []string) string {
		return bulk("# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:31415\r\nmaster_link_status:up\r\n")
	})
	nf := &views{}
	if err := nf.ReadRedis(context.Background(), h, nil, addr, secret.New("new-pw")); err != nil {
		t.Fatal(err)
	}
	if nf.redis().State != "auth-failed" {
		t.Errorf("without the previous password: state %q, want auth-failed", nf.redis().State)
	}
	sec := secret.New("new-pw").WithPrevious(secret.New("old-pw"))
	if err := nf.ReadRedis(context.Background(), h, nil, addr, sec); err != nil {
		t.Fatal(err)
	}
	r := nf.redis()
	if r.State != "up" || r.Role != "slave" || r.PrimaryHost != "10.0.0.1" || !r.LinkUp {
		t.Errorf("with the previous password: got %+v", r)
	}
}

func TestReadRedisDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ip, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close() // nothing listens there now
	nf := &views{}
	if err := nf.ReadRedis(context.Background(), host.Local("local").(host.Dialer), nil, ip+" "+port, secret.New("pw")); err != nil {
		t.Fatal(err)
	}
	if nf.redis().State != "down" {
		t.Errorf("state %q, want down", nf.redis().State)
	}
}

// Over a real sshd the connection is opened by the node; an sshd that
// forbids forwarding makes ReadRedis say so, for the fact script to ask
// instead. Needs root and openssh-server (CI has both).
func TestReadRedisOverOpenSSH(t *testing.T) {
	addr := fakeRedis(t, "pw", sentinelAnswers)
	for _, tc := range []struct {
		extra string
		want  error
	}{{"", nil}, {"AllowTcpForwarding no\n", modules.ErrNoForwarding}} {
		o := sshtest.StartOpenSSHWith(t, tc.extra)
		c, err := sshconn.Dial(context.Background(), sshconn.Target{Name: "n", Host: o.Host, Port: o.Port, User: "root"},
			sshconn.Config{KnownHosts: []string{o.WriteKnownHosts(t)}, IdentityFiles: []string{o.IdentityFile}})
		if err != nil {
			t.Fatal(err)
		}
		nf := &views{}
		err = nf.ReadRedis(context.Background(), c, &SentinelAt{Addr: addr, Set: "myprimary"}, "", secret.New("pw"))
		c.Close()
		if !errors.Is(err, tc.want) {
			t.Fatalf("%q: error %v, want %v", tc.extra, err, tc.want)
		}
		if tc.want == nil && nf.sentinel().Primary != "10.0.0.1 31415" {
			t.Errorf("over sshd: got %+v", nf.sentinel())
		}
	}
}
