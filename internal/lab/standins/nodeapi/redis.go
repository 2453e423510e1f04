package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// conf is what the Node API reads of aspera.conf's <server> section.
type conf struct {
	dbType, dbHost, dbPort, primarySet string
	httpPort, httpsPort                string
}

// readConf reads the last value of each element in <server>, one-line
// elements only (as asconfigurator writes them).
func readConf(path string) (conf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return conf{}, err
	}
	c := conf{primarySet: "myprimary", httpPort: "9091", httpsPort: "9092"}
	s := string(b)
	if i := strings.Index(s, "<server>"); i >= 0 {
		s = s[i:]
		if j := strings.Index(s, "</server>"); j >= 0 {
			s = s[:j]
		}
	} else {
		s = ""
	}
	for _, line := range strings.Split(s, "\n") {
		for key, dst := range map[string]*string{
			"db_type": &c.dbType, "db_host": &c.dbHost, "db_port": &c.dbPort,
			"db_primaryset": &c.primarySet, "http_port": &c.httpPort, "https_port": &c.httpsPort,
		} {
			open, end := "<"+key+">", "</"+key+">"
			if i := strings.Index(line, open); i >= 0 {
				if j := strings.Index(line[i:], end); j >= 0 {
					*dst = strings.TrimSpace(line[i+len(open) : i+j])
				}
			}
		}
	}
	return c, nil
}

// redisPassword is the password askmscli stored for this process's user
// (~/.aspera/local_keystore, 003 step 10), or for root the root keystore.
// No password: a non-clustered install's Redis without requirepass.
func redisPassword() string {
	home := os.Getenv("HOME")
	if u, err := user.Current(); err == nil {
		home = u.HomeDir
	}
	if b, err := os.ReadFile(filepath.Join(home, ".aspera", "local_keystore")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "redis-password="); ok {
				return v
			}
		}
	}
	if os.Geteuid() == 0 {
		if b, err := os.ReadFile("/opt/aspera/etc/askms/redis-password"); err == nil {
			return string(b)
		}
	}
	return ""
}

// rconn is one Redis (or Sentinel) connection speaking RESP.
type rconn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRedis(addr, password string) (*rconn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	rc := &rconn{c: c, r: bufio.NewReader(c)}
	if password != "" {
		if _, err := rc.do("AUTH", password); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return rc, nil
}

func (rc *rconn) Close() { rc.c.Close() }

// errNil is Redis's nil reply.
var errNil = errors.New("nil")

// do sends one command and returns its reply: a string (simple, bulk or
// integer), []any (array), or an error (an error reply, errNil).
func (rc *rconn) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := rc.c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return rc.read()
}

func (rc *rconn) read() (any, error) {
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, errNil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, errNil
		}
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			v, err := rc.read()
			if err != nil && err != errNil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// database opens the Redis that holds the cluster's state, found the way
// aspera.conf says (the same rules as the asnodeadmin stand-in):
//   - db_type ha_redis (003): the primary the first answering Sentinel of
//     db_host/db_port names for db_primaryset;
//   - else db_host:db_port as written (002: the node's local HAProxy);
//   - else the non-clustered local Redis, 127.0.0.1:31415.
//
// It is found again for every request, so a Redis failover needs no
// restart, as with Hiredis behind Sentinel or HAProxy.
func database(c conf, password string) (*rconn, string, error) {
	hosts := splitList(c.dbHost)
	ports := splitList(c.dbPort)
	port := func(i int) string {
		switch {
		case i < len(ports):
			return ports[i]
		case len(ports) > 0:
			return ports[0]
		}
		return "31415"
	}
	if c.dbType == "ha_redis" {
		if len(hosts) == 0 {
			return nil, "", errors.New("db_type ha_redis but no db_host in aspera.conf")
		}
		var errs []string
		for i, h := range hosts {
			s, err := dialRedis(net.JoinHostPort(h, port(i)), password)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			v, err := s.do("SENTINEL", "get-master-addr-by-name", c.primarySet)
			s.Close()
			a, ok := v.([]any)
			if err != nil || !ok || len(a) != 2 {
				errs = append(errs, fmt.Sprintf("Sentinel %s:%s: no primary (%v)", h, port(i), err))
				continue
			}
			addr := net.JoinHostPort(fmt.Sprint(a[0]), fmt.Sprint(a[1]))
			r, err := dialRedis(addr, password)
			if err != nil {
				return nil, "", fmt.Errorf("primary %s: %w", addr, err)
			}
			return r, addr, nil
		}
		return nil, "", fmt.Errorf("no Sentinel of db_host (%s) names primary set %s: %s", c.dbHost, c.primarySet, strings.Join(errs, "; "))
	}
	addr := "127.0.0.1:31415"
	if len(hosts) > 0 {
		addr = net.JoinHostPort(hosts[0], port(0))
	}
	r, err := dialRedis(addr, password)
	return r, addr, err
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(strings.Trim(s, `"`), ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
