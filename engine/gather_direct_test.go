package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// recordingHost runs scripts locally and records them; it can dial, so a
// kind of fact with a direct reader is read beside the script.
type recordingHost struct {
	host.Host
	mu      *sync.Mutex
	scripts *[]string
}

func (h recordingHost) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	b, _ := io.ReadAll(stdin)
	h.mu.Lock()
	*h.scripts = append(*h.scripts, string(b))
	h.mu.Unlock()
	return h.Host.Run(ctx, cmd, bytes.NewReader(b))
}

func (h recordingHost) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return nil, fmt.Errorf("not used")
}

// forwarding says what the test kind's direct reader does: answer, or
// find forwarding refused.
var forwarding = true

func init() {
	modules.RegisterFact("test.direct", modules.FactKind{
		PerKey:  true,
		Command: func(keys []string) string { return "echo from-script-" + keys[0] + "\n" },
		Parse:   func(out []byte) (any, error) { return strings.TrimSpace(string(out)), nil },
		Direct: func(ctx context.Context, d host.Dialer, key string, sec secret.Secret) (any, error) {
			if !forwarding {
				return nil, fmt.Errorf("node x: %w", modules.ErrNoForwarding)
			}
			return "direct-" + key, nil
		},
	})
}

// A kind read directly is left out of the script; when the node refuses
// forwarding, the script reads it after all.
func TestGatherDirectFallsBackToScript(t *testing.T) {
	defer func() { forwarding = true }()
	for _, tc := range []struct {
		forwarding     bool
		want           string
		scripts        int
		sectionInFinal bool
	}{{true, "direct-k1", 1, false}, {false, "from-script-k1", 2, true}} {
		forwarding = tc.forwarding
		var scripts []string
		h := recordingHost{Host: host.Local("local"), mu: &sync.Mutex{}, scripts: &scripts}
		f, err := gatherNode(context.Background(), NodeSpec{Name: "n"}, modules.Needs{Shared: map[string][]string{"test.direct": {"k1"}}}, h, secret.Secret{})
		if err != nil {
			t.Fatalf("forwarding %v: %v", tc.forwarding, err)
		}
		if got := f.Shared.SharedKey("test.direct", "k1"); got != tc.want {
			t.Errorf("forwarding %v: fact %v, want %s", tc.forwarding, got, tc.want)
		}
		if len(scripts) != tc.scripts || strings.Contains(scripts[len(scripts)-1], "@shared:test.direct:k1") != tc.sectionInFinal {
			t.Errorf("forwarding %v: %d scripts, the last asks the kind: %v", tc.forwarding, len(scripts), !tc.sectionInFinal)
		}
	}
}
