// Package aspera is the Aspera know-how of hastack's modules: the asconf
// kind (aspera.conf settings, set with asconfigurator). Importing it
// registers it with package modules.
package aspera

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// asconfSpec is a set of aspera.conf settings, changed with asconfigurator
// as 003 step 3 does, and only where the value differs.
type asconfSpec struct {
	Path     string    `json:"path"` // /opt/aspera/etc/aspera.conf
	Settings []setting `json:"settings"`
}

// A setting's section is "server" (the default: set_server_data, the
// <server> element) or "node" (set_node_data: the <default> section, every
// user's settings unless a user or group sets its own).
type setting struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Section string `json:"section"`
}

// nodeElements are the set_node_data parameters asconf knows, with where
// asconfigurator writes each under <default> (Aspera's "User, Group and
// Default Configurations" and "Configuring Token Authorization in
// aspera.conf"): asconf must read the current value to diff it.
var nodeElements = map[string][]string{
	"token_encryption_key": {"authorization", "token", "encryption_key"},
	"absolute":             {"file_system", "access", "paths", "path", "absolute"},
}

type asconfModule struct{}

func init() { modules.Register("asconf", asconfModule{}) }

func (asconfModule) Probe(r *modules.Resource) (modules.Probe, error) {
	var s asconfSpec
	if err := modules.DecodeSpec(r, &s); err != nil {
		return modules.Probe{}, err
	}
	return modules.Probe{Needs: modules.Needs{Files: []string{s.Path}}}, nil
}

var serverSection = regexp.MustCompile(`(?s)<server>(.*?)</server>`)

// serverValue reads <key>value</key> from the <server> section.
func serverValue(conf, key string) (string, bool) {
	m := serverSection.FindStringSubmatch(conf)
	if m == nil {
		return "", false
	}
	v := regexp.MustCompile(`(?s)<` + regexp.QuoteMeta(key) + `>(.*?)</` + regexp.QuoteMeta(key) + `>`).FindStringSubmatch(m[1])
	if v == nil {
		return "", false
	}
	return strings.TrimSpace(v[1]), true
}

var defaultSection = regexp.MustCompile(`(?s)<default>(.*?)</default>`)

// nodeValue reads a set_node_data parameter from <default>: the first
// element of its path, each step inside the one before.
func nodeValue(conf, key string) (string, bool) {
	m := defaultSection.FindStringSubmatch(conf)
	if m == nil {
		return "", false
	}
	in := m[1]
	for _, el := range nodeElements[key] {
		v := regexp.MustCompile(`(?s)<` + regexp.QuoteMeta(el) + `>(.*?)</` + regexp.QuoteMeta(el) + `>`).FindStringSubmatch(in)
		if v == nil {
			return "", false
		}
		in = v[1]
	}
	return strings.TrimSpace(in), true
}

// asconfigurator builds 003's command line; lists are double-quoted.
func asconfigurator(section, key, value string) string {
	v := value
	if strings.Contains(v, ",") {
		v = `"` + v + `"`
	}
	return "asconfigurator -x " + modules.Quote("set_"+section+"_data;"+key+","+v)
}

func (asconfModule) Diff(r *modules.Resource, f *modules.Fact, env *modules.Env) (*modules.Change, error) {
	var s asconfSpec
	if err := modules.DecodeSpec(r, &s); err != nil {
		return nil, err
	}
	// asconfigurator runs as root and rewrites the file by its name.
	if err := modules.NotRegular(f.Node, s.Path); err != nil {
		return nil, err
	}
	conf := f.Node.Files[s.Path]
	if conf == nil {
		return nil, fmt.Errorf("%s is missing: is HSTS installed on this node?", s.Path)
	}
	var cmds, shown, notes []string
	var hide []string // values of secret-named settings, old and new
	for _, st := range s.Settings {
		// A named secret (token_encryption_key: "@@hastack:secret:NAME@@")
		// is filled here, and its setting is secret whatever its key.
		sensitive := modules.SecretName(st.Key)
		if v := string(secret.Fill([]byte(st.Value), env.Secret)); v != st.Value {
			if strings.ContainsAny(v, "\r\n") {
				return nil, fmt.Errorf("%s: the secret for %s holds a line break, which aspera.conf cannot carry", s.Path, st.Key)
			}
			st.Value, sensitive = v, true
		} else if strings.Contains(st.Value, "@@hastack:") {
			return nil, fmt.Errorf("%s: %s names a secret this system does not have (add it under secrets)", s.Path, st.Key)
		}
		var have string
		var ok bool
		switch st.Section {
		case "", "server":
			st.Section = "server"
			have, ok = serverValue(string(conf.Data), st.Key)
		case "node":
			if nodeElements[st.Key] == nil {
				return nil, fmt.Errorf("%s: asconf does not know where set_node_data writes %s", s.Path, st.Key)
			}
			have, ok = nodeValue(string(conf.Data), st.Key)
		default:
			return nil, fmt.Errorf("%s: %s: section %q is not \"server\" or \"node\"", s.Path, st.Key, st.Section)
		}
		if ok && have == st.Value {
			continue
		}
		cmd := asconfigurator(st.Section, st.Key, st.Value)
		cmds = append(cmds, cmd)
		if sensitive {
			// token_encryption_key and the like: the plan says that it
			// changes, never what to.
			notes = append(notes, st.Key+": "+secret.Shown+" changes")
			shown = append(shown, asconfigurator(st.Section, st.Key, secret.Shown))
			hide = append(hide, st.Value)
			if ok && have != "" {
				hide = append(hide, have)
			}
			continue
		}
		if !ok {
			have = "(unset)"
		}
		notes = append(notes, fmt.Sprintf("%s: %s → %s", st.Key, have, st.Value))
		shown = append(shown, cmd)
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	c := &modules.Change{Action: modules.Update, Summary: "set " + strings.Join(notes, "; "), Commands: shown}
	c.SetApply(func(ctx context.Context, h host.Host) error {
		// The commands travel on stdin: a secret value is in no SSH exec
		// request (asconfigurator itself takes it as an argument, on the
		// node only, as 003 does).
		script := "PATH=/opt/aspera/bin:$PATH\nset -e\n" + strings.Join(cmds, "\n") + "\n"
		if _, err := modules.Exec(ctx, h, "sh -s", []byte(script), secret.Secret{}); err != nil {
			msg := err.Error()
			for _, v := range hide {
				if v != "" {
					msg = strings.ReplaceAll(msg, v, secret.Shown)
				}
			}
			return errors.New(msg)
		}
		return nil
	})
	return c, nil
}
