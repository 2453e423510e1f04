package modules

import (
	"context"
	"fmt"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// dirSpec is a directory that must exist with an owner and group. Redis and
// Sentinel rewrite their config files through a temporary file in the same
// directory: if the service user cannot write there, Sentinel cannot save
// its myid, and every restart leaves a phantom Sentinel behind (003 only
// chowns the files).
type dirSpec struct {
	Path  string `json:"path"`
	Owner string `json:"owner"`
	Group string `json:"group"`
}

type dirModule struct{}

func init() { register("dir", dirModule{}) }

func (dirModule) Probe(r *Resource) (Probe, error) {
	var s dirSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Dirs: []string{s.Path}}}, nil
}

func (dirModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	var s dirSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	want := s.Owner + ":" + s.Group
	var have string
	if d := f.Node.Dirs[s.Path]; d != nil {
		have = d.Owner + ":" + d.Group
	}
	if have == want {
		return nil, nil
	}
	cmd := fmt.Sprintf("mkdir -p %[1]s && chown %[2]s %[1]s", Quote(s.Path), Quote(want))
	c := &Change{Action: Update, Summary: fmt.Sprintf("directory %s owned by %s", s.Path, want), Commands: []string{cmd}, Live: true}
	if have == "" {
		c.Action = Create
	} else {
		c.Summary += " (now " + have + ")"
	}
	c.apply = func(ctx context.Context, h host.Host) error {
		_, err := run(ctx, h, cmd, nil, secret.Secret{})
		return err
	}
	return c, nil
}
