package config

import (
	"errors"
	"fmt"
	"slices"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/internal/secret"
)

// decode fills what every system has from cl.Value, which has passed
// every check: its nodes, its secret and its driver.
func decode(cl *Cluster) error {
	// secret is decoded apart so that a decode error can never quote it.
	if sv := cl.Value.LookupPath(cue.ParsePath("secret")); sv.Exists() {
		src, err := sourceOf(sv)
		if err != nil {
			return err
		}
		cl.Secret = src
	}
	if pv := cl.Value.LookupPath(cue.ParsePath("previousSecret")); pv.Exists() {
		prev, err := sourceOf(pv)
		if err != nil {
			return err
		}
		cl.PreviousSecret = &prev
	}
	if nv := cl.Value.LookupPath(cue.ParsePath("secrets")); nv.Exists() {
		it, err := nv.Fields()
		if err != nil {
			return errors.New(namedMsg)
		}
		for it.Next() {
			src, err := sourceOf(it.Value())
			if err != nil {
				return err
			}
			if cl.Secrets == nil {
				cl.Secrets = map[string]secret.Source{}
			}
			cl.Secrets[it.Selector().Unquoted()] = src
		}
	}
	// Only the generic fields: a driver's own fields may hold anything.
	cl.Driver = ""
	if dv := cl.Value.LookupPath(cue.ParsePath("driver")); dv.Exists() {
		d, err := dv.String()
		if err != nil {
			return fmt.Errorf("decoding driver: %v", err)
		}
		cl.Driver = d
	}
	if cl.Driver == "" {
		cl.Driver = fieldDrivers[cl.Field]
	}
	if nv := cl.Value.LookupPath(cue.ParsePath("nodes")); nv.Exists() {
		ns, err := DecodeNodes(nv)
		if err != nil {
			return fmt.Errorf("decoding nodes: %v", err)
		}
		cl.Nodes = append(cl.Nodes, ns...)
	}
	return nil
}

// DecodeNodes decodes a list of nodes ({name, ip, ssh}): a system's nodes,
// or the ones a driver adds (load balancers, name servers). SSH defaults to
// port 22 as root at the node's IP.
func DecodeNodes(list cue.Value) ([]Node, error) {
	var raw []struct {
		Name string `json:"name"`
		IP   string `json:"ip"`
		SSH  struct {
			Host string `json:"host"`
			Port int    `json:"port"`
			User string `json:"user"`
		} `json:"ssh"`
	}
	if err := list.Decode(&raw); err != nil {
		return nil, err
	}
	var ns []Node
	for i, n := range raw {
		port := n.SSH.Port
		if port == 0 {
			port = 22
		}
		user := n.SSH.User
		if user == "" {
			user = "root"
		}
		host := n.SSH.Host
		if host == "" {
			host = n.IP
		}
		ns = append(ns, Node{Name: n.Name, IP: n.IP, SSH: SSH{Host: host, Port: port, User: user,
			PortSet: written(list, i, "port"), UserSet: written(list, i, "user")}})
	}
	return ns, nil
}

// AddNodes appends the nodes cl does not have yet: a driver decodes a
// system more than once, and adds its extra nodes each time.
func (cl *Cluster) AddNodes(ns []Node) {
	for _, n := range ns {
		if !slices.ContainsFunc(cl.Nodes, func(m Node) bool { return m.Name == n.Name }) {
			cl.Nodes = append(cl.Nodes, n)
		}
	}
}

// written says whether node i's ssh.field is in the CUE rather than a
// schema default: a field still holding its default has one.
func written(nodes cue.Value, i int, field string) bool {
	v := nodes.LookupPath(cue.MakePath(cue.Index(i), cue.Str("ssh"), cue.Str(field)))
	if !v.Exists() {
		return false
	}
	_, isDefault := v.Default()
	return !isDefault
}
