package modules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"hastack.dev/hastack/internal/host"
)

// sentinelResetSpec makes a Sentinel forget nodes that left the cluster.
// Sentinel never forgets a Sentinel or replica it once saw; after a node is
// removed or replaced, every remaining Sentinel must be sent SENTINEL RESET,
// one after the other (the Sentinel documentation), or it keeps counting
// the gone node in its majority.
type sentinelResetSpec struct {
	Set      string   `json:"set"`      // primary-set name
	Addr     string   `json:"addr"`     // "ip port" of this node's Sentinel
	Expected []string `json:"expected"` // the cluster's node IPs
}

type sentinelResetModule struct{}

func init() { register("sentinelreset", sentinelResetModule{}) }

func (sentinelResetModule) Probe(r *Resource) (Probe, error) {
	var s sentinelResetSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Sentinel: &SentinelAt{Addr: s.Addr, Set: s.Set}}}, nil
}

func (sentinelResetModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	var s sentinelResetSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, ip := range s.Expected {
		want[ip] = true
	}
	gone := map[string]bool{}
	for _, ip := range append(append([]string{}, f.Node.Sentinel.Sentinels...), f.Node.Sentinel.Replicas...) {
		if !want[ip] {
			gone[ip] = true
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	var ips []string
	for ip := range gone {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	ip, port, _ := strings.Cut(s.Addr, " ")
	cmd := fmt.Sprintf("SENTINEL RESET %s", s.Set)
	c := &Change{Action: Run, Summary: "run " + cmd, Commands: []string{cmd},
		Reason: "this Sentinel still counts " + strings.Join(ips, ", ") + ", which left the cluster"}
	sec := env.Secret
	c.apply = func(ctx context.Context, h host.Host) error {
		res, err := runRedis(ctx, h, fmt.Sprintf("redisq -h %s -p %s SENTINEL RESET %s\n", Quote(ip), Quote(port), Quote(s.Set)), sec)
		if err != nil {
			return err
		}
		if out := strings.TrimSpace(string(res.Stdout)); out != "1" {
			return fmt.Errorf("SENTINEL RESET %s answered %q, want 1", s.Set, mask(out, sec))
		}
		return nil
	}
	return c, nil
}
