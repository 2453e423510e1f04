package config

import (
	"fmt"

	"cuelang.org/go/cue"
)

// decode fills what every system has from cl.Value, which has passed
// every check: its nodes, its secret and its driver.
func decode(cl *Cluster) error {
	var raw struct {
		Driver string `json:"driver"`
		Nodes  []struct {
			Name string `json:"name"`
			IP   string `json:"ip"`
			SSH  struct {
				Host string `json:"host"`
				Port int    `json:"port"`
				User string `json:"user"`
			} `json:"ssh"`
		} `json:"nodes"`
	}
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
	// Only the generic fields: a driver's own fields may hold anything.
	for _, f := range []string{"driver", "nodes"} {
		v := cl.Value.LookupPath(cue.ParsePath(f))
		if !v.Exists() {
			continue
		}
		var err error
		if f == "driver" {
			raw.Driver, err = v.String()
		} else {
			err = v.Decode(&raw.Nodes)
		}
		if err != nil {
			return fmt.Errorf("decoding %s: %v", f, err)
		}
	}
	cl.Driver = raw.Driver
	if cl.Driver == "" {
		cl.Driver = fieldDrivers[cl.Field]
	}
	nodes := cl.Value.LookupPath(cue.ParsePath("nodes"))
	for i, n := range raw.Nodes {
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
		cl.Nodes = append(cl.Nodes, Node{Name: n.Name, IP: n.IP, SSH: SSH{Host: host, Port: port, User: user,
			PortSet: written(nodes, i, "port"), UserSet: written(nodes, i, "user")}})
	}
	return nil
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
