package redis

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
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

func init() { modules.Register("sentinelreset", sentinelResetModule{}) }

func (sentinelResetModule) Probe(r *modules.Resource) (modules.Probe, error) {
	var s sentinelResetSpec
	if err := modules.DecodeSpec(r, &s); err != nil {
		return modules.Probe{}, err
	}
	return modules.Probe{Needs: modules.Needs{Shared: Needs(&SentinelAt{Addr: s.Addr, Set: s.Set}, "")}}, nil
}

func (sentinelResetModule) Diff(r *modules.Resource, f *modules.Fact, env *modules.Env) (*modules.Change, error) {
	var s sentinelResetSpec
	if err := modules.DecodeSpec(r, &s); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, ip := range s.Expected {
		want[ip] = true
	}
	gone := map[string]bool{}
	v := Sentinel(f.Node, SentinelAt{Addr: s.Addr, Set: s.Set})
	for _, ip := range append(append([]string{}, v.Sentinels...), v.Replicas...) {
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
	c := &modules.Change{Action: modules.Run, Summary: "run " + cmd, Commands: []string{cmd},
		Reason: "this Sentinel still counts " + strings.Join(ips, ", ") + ", which left the cluster"}
	sec := env.Secret
	c.SetApply(func(ctx context.Context, h host.Host) error {
		res, err := Run(ctx, h, fmt.Sprintf("redisq -h %s -p %s SENTINEL RESET %s\n", modules.Quote(ip), modules.Quote(port), modules.Quote(s.Set)), sec)
		if err != nil {
			return err
		}
		if out := strings.TrimSpace(string(res.Stdout)); out != "1" {
			return fmt.Errorf("SENTINEL RESET %s answered %q, want 1", s.Set, modules.Mask(out, sec))
		}
		return nil
	})
	return c, nil
}
