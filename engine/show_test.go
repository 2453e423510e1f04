package engine

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
)

// A saved plan keeps each cluster's header and notes, and the driver's
// live fields stay out of them: read back, the text plan is the one that
// was printed, and the live state apply compares is the same.
func TestPlanFileKeepsHeaders(t *testing.T) {
	p := mixedPlan()
	p.Summary, p.Notes = ": leader n2 (3 answers)", []string{"a note"}
	p.Live = json.RawMessage(`{"leader":"n2"}`)
	pf := NewPlanFile("/cfg", &Session{Plans: []*Plan{p}, Salt: []byte{1}})
	path := filepath.Join(t.TempDir(), "tfplan")
	if err := pf.Save(path); err != nil {
		t.Fatal(err)
	}
	back, ok, err := ReadPlanFile(path)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var want, got bytes.Buffer
	WriteText(&want, []*Plan{p})
	WriteText(&got, back.Clusters)
	if got.String() != want.String() {
		t.Errorf("read back, the text plan is\n%s\nwant\n%s", got.String(), want.String())
	}
	if string(back.Clusters[0].Live) != `{"leader":"n2"}` {
		t.Errorf("live state read back: %s", back.Clusters[0].Live)
	}
}
