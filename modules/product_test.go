package modules_test

import (
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
	_ "hastack.dev/hastack/modules/aspera"
)

func TestLabAsconf(t *testing.T) {
	n := modules.StartNode(t)
	r := modules.ResourceFor(t, "asconf", "asconf:/opt/aspera/etc/aspera.conf", map[string]any{
		"path": "/opt/aspera/etc/aspera.conf",
		"settings": []map[string]string{
			{"key": "db_type", "value": "ha_redis"},
			{"key": "db_host", "value": "10.0.0.1,10.0.0.2,10.0.0.3"},
		},
	})
	c := n.Converge(t, r, nil)
	if len(c.Commands) != 2 || !strings.Contains(c.Commands[0], `asconfigurator -x 'set_server_data;db_type,ha_redis'`) {
		t.Errorf("commands %q", c.Commands)
	}
	conf := n.Exec(t, "cat", "/opt/aspera/etc/aspera.conf")
	for _, want := range []string{"<db_type>ha_redis</db_type>", "<db_host>10.0.0.1,10.0.0.2,10.0.0.3</db_host>", "<absolute>/home</absolute>"} {
		if !strings.Contains(conf, want) {
			t.Errorf("aspera.conf lacks %s:\n%s", want, conf)
		}
	}
}

// asconf refuses to act through a path that is not a regular file
// (asconfigurator runs as root and rewrites the file by its name).
func TestAsconfRefusesIrregular(t *testing.T) {
	p := "/opt/aspera/etc/aspera.conf"
	r := modules.ResourceFor(t, "asconf", "asconf:x", map[string]any{"path": p, "settings": []map[string]string{{"key": "db_type", "value": "ha_redis"}}})
	m, err := modules.Lookup("asconf")
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Diff(r, &modules.Fact{Node: modules.IrregularFacts(p)}, &modules.Env{Secret: secret.New("Passw0rd-x")})
	if want := `"/opt/aspera/etc/aspera.conf" is a FIFO, not a regular file`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Diff = %+v, %v; want an error saying %s", c, err, want)
	}
}

// A secret-named aspera.conf setting (token_encryption_key) changes
// without its value in the plan: not in the summary, not in the commands
// shown; the node still gets the value.
func TestLabAsconfSecretSetting(t *testing.T) {
	n := modules.StartNode(t)
	const key = "s3cr3t-Token-Key-9f2"
	r := modules.ResourceFor(t, "asconf", "asconf:/opt/aspera/etc/aspera.conf", map[string]any{
		"path":     "/opt/aspera/etc/aspera.conf",
		"settings": []map[string]string{{"key": "token_encryption_key", "value": key}, {"key": "db_type", "value": "ha_redis"}},
	})
	c := n.Converge(t, r, nil)
	shown := c.Summary + "\n" + strings.Join(c.Commands, "\n") + "\n" + c.Diff
	if strings.Contains(shown, key) {
		t.Errorf("the plan shows the secret:\n%s", shown)
	}
	if !strings.Contains(c.Summary, "token_encryption_key: "+secret.Shown) || !strings.Contains(c.Summary, "db_type: (unset) → ha_redis") {
		t.Errorf("summary %q", c.Summary)
	}
	if conf := n.Exec(t, "cat", "/opt/aspera/etc/aspera.conf"); !strings.Contains(conf, "<token_encryption_key>"+key+"</token_encryption_key>") {
		t.Errorf("aspera.conf lacks the key:\n%s", conf)
	}
}

// A setting given as a named secret's placeholder is filled on the node,
// and is secret whatever its key says: the plan shows neither value. A
// placeholder of a secret the system lacks is an error, not a literal.
func TestLabAsconfNamedSecret(t *testing.T) {
	n := modules.StartNode(t)
	const key = "named-Token-Key-77c1"
	r := modules.ResourceFor(t, "asconf", "asconf:/opt/aspera/etc/aspera.conf", map[string]any{
		"path":     "/opt/aspera/etc/aspera.conf",
		"settings": []map[string]string{{"key": "server_name", "value": secret.NamedPlaceholder("tokenKey")}},
	})
	env := &modules.Env{Secret: secret.Secret{}.WithNamed("tokenKey", secret.New(key))}
	c := n.Converge(t, r, env)
	shown := c.Summary + "\n" + strings.Join(c.Commands, "\n")
	if strings.Contains(shown, key) || strings.Contains(shown, "@@") || !strings.Contains(c.Summary, "server_name: "+secret.Shown) {
		t.Errorf("the plan shows the secret or its placeholder:\n%s", shown)
	}
	if conf := n.Exec(t, "cat", "/opt/aspera/etc/aspera.conf"); !strings.Contains(conf, "<server_name>"+key+"</server_name>") {
		t.Errorf("aspera.conf lacks the key:\n%s", conf)
	}
	m, _ := modules.Lookup("asconf")
	nf := &modules.NodeFacts{Files: map[string]*modules.FileFact{"/opt/aspera/etc/aspera.conf": {Data: []byte("<server></server>")}}}
	if _, err := m.Diff(r, &modules.Fact{Node: nf}, &modules.Env{}); err == nil || !strings.Contains(err.Error(), "names a secret this system does not have") {
		t.Errorf("missing secret: %v", err)
	}
}

// A set_node_data setting (section "node") lands where Aspera documents
// it, in <default>, not in <server>: the token key as
// <default><authorization><token><encryption_key>, masked in the plan;
// the docroot replaces <default>'s <absolute>. Converge's second plan,
// empty, reads both back from <default>.
func TestLabAsconfNodeSection(t *testing.T) {
	n := modules.StartNode(t)
	const key = "node-Token-Key-31d8"
	spec := map[string]any{
		"path": "/opt/aspera/etc/aspera.conf",
		"settings": []map[string]string{
			{"key": "token_encryption_key", "value": secret.NamedPlaceholder("tokenKey"), "section": "node"},
			{"key": "absolute", "value": "/mnt/shared/docroot", "section": "node"},
		},
	}
	r := modules.ResourceFor(t, "asconf", "asconf:/opt/aspera/etc/aspera.conf", spec)
	env := &modules.Env{Secret: secret.Secret{}.WithNamed("tokenKey", secret.New(key))}
	c := n.Converge(t, r, env)
	shown := c.Summary + "\n" + strings.Join(c.Commands, "\n")
	if strings.Contains(shown, key) || !strings.Contains(c.Summary, "token_encryption_key: "+secret.Shown) ||
		!strings.Contains(shown, `asconfigurator -x 'set_node_data;token_encryption_key,`+secret.Shown+`'`) ||
		!strings.Contains(shown, `asconfigurator -x 'set_node_data;absolute,/mnt/shared/docroot'`) ||
		!strings.Contains(c.Summary, "absolute: /home → /mnt/shared/docroot") {
		t.Errorf("plan:\n%s", shown)
	}
	conf := n.Exec(t, "cat", "/opt/aspera/etc/aspera.conf")
	def := conf[strings.Index(conf, "<default>"):]
	compact := strings.Join(strings.Fields(def), "")
	if !strings.Contains(compact, "<authorization><token><encryption_key>"+key+"</encryption_key></token></authorization>") ||
		!strings.Contains(compact, "<path><absolute>/mnt/shared/docroot</absolute></path>") ||
		strings.Contains(conf, "/home") || strings.Contains(conf, "token_encryption_key") {
		t.Errorf("aspera.conf:\n%s", conf)
	}
}
