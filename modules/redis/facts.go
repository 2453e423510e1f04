package redis

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// The kinds of facts this package registers. A key names the server to
// ask: SentinelKey, InfoKey.
const (
	SentinelFact = "redis.sentinel" // what a Sentinel knows of a primary set: SentinelView
	InfoFact     = "redis.info"     // a Redis's INFO replication: RedisView
)

// SentinelAt says which Sentinel to ask about which primary set.
type SentinelAt struct {
	Addr string // "ip port"
	Set  string
}

// SentinelKey is the key of SentinelFact for s: "ip:port/set".
func SentinelKey(s SentinelAt) string {
	ip, port, _ := strings.Cut(s.Addr, " ")
	return ip + ":" + port + "/" + s.Set
}

// InfoKey is the key of InfoFact for the Redis at addr ("ip port"):
// "ip:port".
func InfoKey(addr string) string {
	ip, port, _ := strings.Cut(addr, " ")
	return ip + ":" + port
}

func sentinelOfKey(key string) SentinelAt {
	hp, set, _ := strings.Cut(key, "/")
	return SentinelAt{Addr: addrOfKey(hp), Set: set}
}

func addrOfKey(key string) string {
	i := strings.LastIndex(key, ":")
	if i < 0 {
		return key
	}
	return key[:i] + " " + key[i+1:]
}

// Needs asks a node's facts for the Sentinel s (when not nil) and the Redis
// at redisAddr (when not "").
func Needs(s *SentinelAt, redisAddr string) map[string][]string {
	out := map[string][]string{}
	if s != nil {
		out[SentinelFact] = []string{SentinelKey(*s)}
	}
	if redisAddr != "" {
		out[InfoFact] = []string{InfoKey(redisAddr)}
	}
	return out
}

// Sentinel returns what the Sentinel s said in nf (State "" when it was
// not asked).
func Sentinel(nf *modules.NodeFacts, s SentinelAt) SentinelView {
	v, _ := nf.SharedKey(SentinelFact, SentinelKey(s)).(SentinelView)
	return v
}

// Info returns what the Redis at addr ("ip port") said in nf.
func Info(nf *modules.NodeFacts, addr string) RedisView {
	v, _ := nf.SharedKey(InfoFact, InfoKey(addr)).(RedisView)
	return v
}

// SentinelView is a Sentinel's answer. State is "up", "down",
// "auth-failed" or "error".
type SentinelView struct {
	State     string
	Primary   string   // "ip port", "" when it names none
	Sentinels []string // IPs of the other Sentinels it knows
	Replicas  []string // IPs of the replicas it knows
	// ReplicaHealth is "flags master-link-status" per replica IP: "slave ok"
	// for one Sentinel could promote.
	ReplicaHealth map[string]string
	QuorumOK      bool // SENTINEL CKQUORUM answered OK
}

// RedisView is a Redis's INFO replication.
type RedisView struct {
	State       string // as SentinelView.State
	Role        string // "master" or "slave"
	PrimaryHost string
	PrimaryPort string
	LinkUp      bool
}

// sentinelCommands are what the Sentinel is asked, on one connection;
// PING marks where each answer ends.
func sentinelCommands(set string) [][]string {
	return [][]string{
		{"SENTINEL", "get-master-addr-by-name", set}, {"PING", "@@1"},
		{"SENTINEL", "SENTINELS", set}, {"PING", "@@2"},
		{"SENTINEL", "REPLICAS", set}, {"PING", "@@3"},
		{"SENTINEL", "CKQUORUM", set}}
}

func init() {
	modules.RegisterFact(SentinelFact, modules.FactKind{
		PerKey:  true,
		Prelude: PreludeName,
		Command: func(keys []string) string {
			s := sentinelOfKey(keys[0])
			ip, port, _ := strings.Cut(s.Addr, " ")
			var lines []string
			for _, c := range sentinelCommands(s.Set) {
				lines = append(lines, strings.Join(c, " "))
			}
			return fmt.Sprintf("redism %s %s %s\n", modules.Quote(ip), modules.Quote(port), modules.Quote(strings.Join(lines, "\n")))
		},
		Parse: func(out []byte) (any, error) { return ParseSentinel(string(out)), nil },
		Direct: func(ctx context.Context, d host.Dialer, key string, sec secret.Secret) (any, error) {
			s := sentinelOfKey(key)
			out, err := ask(ctx, d, s.Addr, sec, sentinelCommands(s.Set))
			if err != nil {
				return nil, err
			}
			return ParseSentinel(out), nil
		},
	})
	modules.RegisterFact(InfoFact, modules.FactKind{
		PerKey:  true,
		Prelude: PreludeName,
		Command: func(keys []string) string {
			ip, port, _ := strings.Cut(addrOfKey(keys[0]), " ")
			return fmt.Sprintf("redisq -h %s -p %s INFO replication\n", modules.Quote(ip), modules.Quote(port))
		},
		Parse: func(out []byte) (any, error) { return ParseInfo(string(out)), nil },
		Direct: func(ctx context.Context, d host.Dialer, key string, sec secret.Secret) (any, error) {
			out, err := ask(ctx, d, addrOfKey(key), sec, [][]string{{"INFO", "replication"}})
			if err != nil {
				return nil, err
			}
			return ParseInfo(out), nil
		},
	})
}

// answerState classifies a redis-cli answer that is not data.
func answerState(s string) string {
	switch {
	case strings.Contains(s, "NOAUTH") || strings.Contains(s, "WRONGPASS") || strings.Contains(s, "AUTH failed"):
		return "auth-failed"
	case strings.TrimSpace(s) == "" || strings.Contains(s, "Could not connect") || strings.Contains(s, "Connection refused"):
		return "down"
	case strings.HasPrefix(strings.TrimSpace(s), "ERR") || strings.Contains(s, "rror"):
		return "error"
	}
	return "up"
}

// ParseSentinel reads the Sentinel's answers to sentinelCommands, as
// redis-cli prints them (the one Sentinel parser).
func ParseSentinel(s string) SentinelView {
	parts := strings.Split(s, "@@")
	v := SentinelView{State: answerState(parts[0])}
	if len(parts) >= 3 && strings.TrimSpace(parts[0]) == "" {
		v.State = "up" // it answered the PINGs: it names no primary
	}
	if v.State != "up" {
		return v
	}
	if len(parts) < 3 {
		return SentinelView{State: "error"}
	}
	v.Primary = MasterAddr(parts[0])
	v.Sentinels = fieldAfter(parts[1], "ip")
	v.Replicas = fieldAfter(parts[2], "ip")
	v.ReplicaHealth = replicaHealth(parts[2])
	if len(parts) >= 4 {
		v.QuorumOK = strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(parts[3], "3")), "OK")
	}
	return v
}

// MasterAddr reads redis-cli's answer to SENTINEL get-master-addr-by-name:
// "ip port", or "" when it names no primary (an empty answer, or anything
// that is not an address and a port).
func MasterAddr(s string) string {
	f := strings.Fields(s)
	if len(f) != 2 || strings.Trim(f[1], "0123456789") != "" {
		return ""
	}
	return f[0] + " " + f[1]
}

// Records reads redis-cli's raw output of flat key/value arrays, one map
// per record; start names the key that begins a new record (SENTINEL
// REPLICAS returns several).
func Records(s, start string) []map[string]string {
	var out []map[string]string
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := 0; i+1 < len(ls); i += 2 {
		k, v := strings.TrimSpace(ls[i]), strings.TrimSpace(ls[i+1])
		if len(out) == 0 || k == start {
			out = append(out, map[string]string{})
		}
		out[len(out)-1][k] = v
	}
	return out
}

// replicaHealth reads SENTINEL REPLICAS (key and value on alternate lines,
// one block per replica).
func replicaHealth(s string) map[string]string {
	out := map[string]string{}
	var ip, flags string
	ls := strings.Split(s, "\n")
	for i := 0; i+1 < len(ls); i++ {
		switch strings.TrimSpace(ls[i]) {
		case "ip":
			ip = strings.TrimSpace(ls[i+1])
		case "flags":
			flags = strings.TrimSpace(ls[i+1])
		case "master-link-status":
			out[ip] = flags + " " + strings.TrimSpace(ls[i+1])
		}
	}
	return out
}

// fieldAfter returns the lines that follow a line equal to key.
func fieldAfter(s, key string) []string {
	var out []string
	ls := strings.Split(s, "\n")
	for i := 0; i+1 < len(ls); i++ {
		if strings.TrimSpace(ls[i]) == key {
			out = append(out, strings.TrimSpace(ls[i+1]))
		}
	}
	sort.Strings(out)
	return out
}

// InfoFields reads INFO's "key:value" lines, of any section.
func InfoFields(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", ""), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// ParseInfo reads INFO replication.
func ParseInfo(s string) RedisView {
	in := InfoFields(s)
	if _, ok := in["role"]; !ok {
		return RedisView{State: answerState(s)}
	}
	return RedisView{State: "up", Role: in["role"], PrimaryHost: in["master_host"], PrimaryPort: in["master_port"], LinkUp: in["master_link_status"] == "up"}
}

// hostPort turns "ip port" into a dial address.
func hostPort(addr string) string {
	ip, port, _ := strings.Cut(addr, " ")
	return net.JoinHostPort(ip, port)
}
