package modules

import (
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"
)

// A file made of a secret of several lines (a private key) changes with no
// diff: the node's old key is as secret as the new one, and a diff would
// show both line by line. A one-line named secret in a config file is
// masked in its diff like the password.
func TestFileNamedSecret(t *testing.T) {
	const (
		newKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nNEWb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u\nNEWZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----"
		oldKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nOLDb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u\nOLDZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n"
		token  = "tok-8d1e55aa90"
	)
	sec := secret.New("cluster-pw-1").WithNamed("hostKey", secret.New(newKey)).WithNamed("tokenKey", secret.New(token))
	nf := &NodeFacts{
		Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0},
		Files: map[string]*FileFact{
			"/etc/k":    {Data: []byte(oldKey), Mode: 0o600, Owner: "root", Group: "root"},
			"/etc/conf": {Data: []byte("token old-token-value\nport 1\n"), Mode: 0o600, Owner: "root", Group: "root"},
		},
	}
	m, _ := Lookup("file")
	diff := func(p, content string) *Change {
		r := resource(t, "file", "file:"+p, map[string]any{"path": p, "content": content, "owner": "root", "group": "root", "mode": "0600"})
		c, err := m.Diff(r, &Fact{Node: nf}, &Env{Secret: sec, Node: "n1"})
		if err != nil || c == nil {
			t.Fatalf("%s: %v %v", p, c, err)
		}
		return c
	}
	c := diff("/etc/k", secret.NamedPlaceholder("hostKey")+"\n")
	shown := c.Summary + c.Diff + strings.Join(c.Commands, "")
	if c.Diff != "" || !strings.Contains(c.Summary, "no diff shown") || strings.Contains(shown, "NEW") || strings.Contains(shown, "OLD") {
		t.Errorf("key file change shows %q / %q", c.Summary, c.Diff)
	}
	if got := string(c.file.Data); got != newKey+"\n" {
		t.Errorf("writes %q", got)
	}
	c = diff("/etc/conf", "token "+secret.NamedPlaceholder("tokenKey")+"\nport 1\n")
	if strings.Contains(c.Diff, token) || strings.Contains(c.Diff, "old-token-value") || !strings.Contains(c.Diff, "+token "+secret.Shown) {
		t.Errorf("config diff:\n%s", c.Diff)
	}
}
