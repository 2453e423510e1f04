package engine

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/lock"
)

// PlanFile is the JSON form of a plan: what `plan -json` prints and
// `plan -out` saves. It is documented in docs/plan.md. No secret is in
// it: diffs show "(sensitive)", fingerprints are keyed with the password.
type PlanFile struct {
	FormatVersion string    `json:"format_version"`
	CreatedAt     time.Time `json:"created_at"`
	ConfigDir     string    `json:"config_dir"` // absolute; apply reloads it
	Clusters      []*Plan   `json:"clusters"`
	Unreached     []string  `json:"unreached,omitempty"` // "cluster/node" left out by -allow-partial
	// FingerprintSalt keys the fingerprints, with the password (scrypt).
	FingerprintSalt string `json:"fingerprint_salt"`
	Summary         Summ   `json:"summary"`
	// Lock is the run that held the cluster's locks while the plan was
	// made (plan -out); apply FILE takes the locks again, as its own run.
	Lock *lock.Holder `json:"lock,omitempty"`
	// Headers are the driver's header line and notes of each cluster, as
	// the text plan printed them, so that `hastack show` prints the saved
	// plan as plan did without the driver or any node. Apply ignores them:
	// the live state a plan was made for is each cluster's own fields.
	Headers []Header `json:"headers,omitempty"`
}

// Header is one cluster's header in a plan file: what follows
// "Cluster NAME" in the text plan (the driver's summary of the live
// state, e.g. which node leads), and the notes under it.
type Header struct {
	Cluster string   `json:"cluster"`
	Summary string   `json:"summary,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Summ is the counts of a plan file.
type Summ struct {
	Nodes         int  `json:"nodes"`
	Create        int  `json:"create"`
	Update        int  `json:"update"`
	Delete        int  `json:"delete"`
	Run           int  `json:"run"`
	Unpredictable int  `json:"unpredictable"`
	Services      int  `json:"service_actions"`
	Changes       bool `json:"changes"`
}

// NewPlanFile wraps a session's plans.
func NewPlanFile(dir string, s *Session) *PlanFile {
	plans := s.Plans
	var c Counts
	for _, p := range plans {
		c.Add(p)
	}
	pf := &PlanFile{FormatVersion: FormatVersion, CreatedAt: time.Now().UTC(), ConfigDir: dir, Clusters: plans, FingerprintSalt: hex.EncodeToString(s.Salt),
		Summary: Summ{c.Nodes, c.Create, c.Update, c.Delete, c.Run, c.Unpredictable, c.Services, !c.Empty()}}
	if len(s.locks) > 0 {
		h := s.locks[0].opts.Holder
		pf.Lock = &h
	}
	for _, p := range plans {
		if p.Summary != "" || len(p.Notes) > 0 {
			pf.Headers = append(pf.Headers, Header{Cluster: p.Cluster, Summary: p.Summary, Notes: p.Notes})
		}
	}
	return pf
}

// Save writes the plan to path, mode 0600 whatever was there before: a new
// file (O_EXCL, 0600 from its creation) in the same folder, synced, then
// renamed over path, so no one ever reads a half-written plan or one with
// an old file's looser mode, and a symlink at path is replaced, not
// followed.
func (pf *PlanFile) Save(path string) (err error) {
	b, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return err
	}
	tmp := host.TempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	if err = f.Chmod(0o600); err != nil { // in case of an odd umask or ACL
		return fmt.Errorf("save the plan: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		d.Sync() // the rename itself survives a crash
		d.Close()
	}
	return nil
}

// ReadPlanFile reads a saved plan; ok is false when path is not one.
func ReadPlanFile(path string) (pf *PlanFile, ok bool, err error) {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() {
		return nil, false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	pf = &PlanFile{}
	if err := json.Unmarshal(b, pf); err != nil || pf.FormatVersion == "" {
		return nil, false, fmt.Errorf("%s is neither a config folder nor a saved plan", path)
	}
	if pf.FormatVersion != FormatVersion {
		return nil, true, fmt.Errorf("%s: plan format %s, this hastack reads %s", path, pf.FormatVersion, FormatVersion)
	}
	if err := pf.validate(); err != nil {
		return nil, true, fmt.Errorf("%s: %v", path, err)
	}
	for _, h := range pf.Headers {
		for _, p := range pf.Clusters {
			if p.Cluster == h.Cluster {
				p.Summary, p.Notes = h.Summary, h.Notes
			}
		}
	}
	return pf, true, nil
}

// validate refuses a saved plan whose parts do not hang together (a
// hand-edited file): shown or applied, it would index what is not there.
func (pf *PlanFile) validate() error {
	for i, p := range pf.Clusters {
		if p == nil {
			return fmt.Errorf("clusters[%d] is empty", i)
		}
		for _, n := range p.Nodes {
			for _, c := range n.Changes {
				if c == nil || c.Change == nil {
					return fmt.Errorf("cluster %s, node %s: an empty change", p.Cluster, n.Name)
				}
				if c.Phase < 0 || c.Phase >= len(p.Phases) {
					return fmt.Errorf("cluster %s, node %s: %s names phase %d of %d", p.Cluster, n.Name, c.ID, c.Phase, len(p.Phases))
				}
			}
		}
	}
	return nil
}

// Stale says why fresh plans differ from a saved one, or "" when they match.
func (pf *PlanFile) Stale(fresh []*Plan) string {
	if len(fresh) != len(pf.Clusters) {
		return "the config's clusters changed"
	}
	for i, p := range fresh {
		old := pf.Clusters[i]
		if p.Cluster != old.Cluster || len(p.Nodes) != len(old.Nodes) {
			return fmt.Sprintf("cluster %s changed", p.Cluster)
		}
		if why := staleLive(p, old.Live); why != "" {
			return fmt.Sprintf("cluster %s: %s", p.Cluster, why)
		}
		for j, n := range p.Nodes {
			if n.Name != old.Nodes[j].Name || n.Fingerprint != old.Nodes[j].Fingerprint {
				return fmt.Sprintf("node %s changed since the plan was made (or the config or password did)", n.Name)
			}
		}
	}
	return ""
}

// staleLive says how the live state a saved plan was made for differs
// from fresh's, or "" when it does not: the driver's say when it has one.
func staleLive(fresh *Plan, saved json.RawMessage) string {
	if sl, ok := fresh.system.(StaleLive); ok {
		return sl.Stale(saved, fresh.Live)
	}
	if !bytes.Equal(bytes.TrimSpace(saved), bytes.TrimSpace(fresh.Live)) {
		return fmt.Sprintf("the live state changed: %s -> %s", saved, fresh.Live)
	}
	return ""
}

// Salt is the saved plan's fingerprint salt.
func (pf *PlanFile) Salt() ([]byte, error) {
	b, err := hex.DecodeString(pf.FingerprintSalt)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("the saved plan has no valid fingerprint_salt")
	}
	return b, nil
}
