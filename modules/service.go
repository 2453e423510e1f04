package modules

import (
	"context"
	"slices"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// serviceSpec is a systemd unit. A resource with StopFirst is the "stop
// before reconfiguring" step of 003: it acts only when a watched resource
// changes. Otherwise the unit is enabled and running, and restarted when a
// watched resource changes (like an Ansible handler, but a restart owed
// survives a failed run: a marker on the node remembers it).
type serviceSpec struct {
	Unit      string `json:"unit"`
	Enabled   bool   `json:"enabled,omitempty"`
	Running   bool   `json:"running,omitempty"`
	StopFirst bool   `json:"stopFirst,omitempty"`
	// Reload: a change that triggers the running unit reloads it
	// (systemctl reload) instead of restarting it: a proxy, say, keeps
	// its listening sockets and its servers' states across a reload.
	Reload bool `json:"reload,omitempty"`
}

type serviceModule struct{}

func init() { register("service", serviceModule{}) }

// PendingDir holds markers of restarts owed on each node.
const PendingDir = "/var/lib/hastack/pending"

func (serviceModule) Probe(r *Resource) (Probe, error) {
	var s serviceSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Units: []string{s.Unit}}}, nil
}

func (serviceModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	var s serviceSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	st := f.Node.Units[s.Unit]
	active := st.Active == "active"
	enabled := st.Enabled == "enabled"
	triggered := len(env.Triggered) > 0
	reason := ""
	if triggered {
		reason = strings.Join(env.Triggered, ", ") + " changed"
	}
	if f.Node.Pending[s.Unit] {
		triggered = true
		reason = "a restart owed by an earlier run"
	}
	u := s.Unit
	if s.StopFirst {
		if !triggered || !active {
			return nil, nil
		}
		env.Stopped[u] = true
		return &Change{Action: Stop, Summary: "stop " + u, Reason: reason,
			Commands: []string{"systemctl stop " + u}, apply: systemctl("stop", u)}, nil
	}
	var cmds []string
	var act Action
	if s.Enabled && !enabled {
		cmds = append(cmds, "systemctl enable "+u)
		act = Enable
	}
	restart := false
	if s.Running {
		switch {
		case !active || env.Stopped[u]:
			cmds = append(cmds, "systemctl start "+u)
			act = Start
		case triggered && s.Reload:
			cmds = append(cmds, "systemctl reload "+u)
			act, restart = Restart, true
		case triggered:
			cmds = append(cmds, "systemctl restart "+u)
			act, restart = Restart, true
		}
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	c := &Change{Action: act, Summary: strings.Join(cmds, "; "), Commands: cmds, Reason: reason}
	if !restart && act != Start {
		c.Reason = ""
	}
	// One exec for the unit's commands and the marker: a fresh node's
	// start phase is mostly these.
	steps := append(slices.Clip(cmds), "rm -f "+PendingDir+"/"+Quote(u))
	c.apply = func(ctx context.Context, h host.Host) error {
		return runSteps(ctx, h, steps, nil, secret.Secret{})
	}
	if !restart {
		// Enabling and starting are safe to do twice (a failed joined
		// run is applied again unit by unit): they join.
		c.join = &joinPart{key: "systemctl enable/start", part: unitStart{u, act == Enable || len(cmds) == 2, act == Start}, run: startUnits}
	}
	return c, nil
}

// unitStart is a service change that enables its unit, starts it, or both.
type unitStart struct {
	unit          string
	enable, start bool
}

// startUnits enables and starts several units with one exec: one systemctl
// enable, one systemctl start (systemd starts them in one transaction, in
// their units' order), and the restart markers they no longer owe.
func startUnits(ctx context.Context, h host.Host, parts []any) error {
	var enable, start, markers []string
	for _, p := range parts {
		u := p.(unitStart)
		if u.enable {
			enable = append(enable, u.unit)
		}
		if u.start {
			start = append(start, u.unit)
		}
		markers = append(markers, PendingDir+"/"+u.unit)
	}
	var steps []string
	if len(enable) > 0 {
		steps = append(steps, "systemctl enable "+quoteAll(enable))
	}
	if len(start) > 0 {
		steps = append(steps, "systemctl start "+quoteAll(start))
	}
	steps = append(steps, "rm -f "+quoteAll(markers))
	return runSteps(ctx, h, steps, nil, secret.Secret{})
}

// MarkPending is the command that records a restart owed to unit, run
// before anything the unit watches is changed.
func MarkPending(units []string) string {
	q := make([]string, len(units))
	for i, u := range units {
		q[i] = PendingDir + "/" + Quote(u)
	}
	return "mkdir -p " + PendingDir + " && touch " + strings.Join(q, " ")
}

func systemctl(verb, unit string) func(context.Context, host.Host) error {
	return func(ctx context.Context, h host.Host) error {
		_, err := run(ctx, h, "systemctl "+verb+" "+Quote(unit), nil, secret.Secret{})
		return err
	}
}
