package modules

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// userSpec is a local account with a fixed uid, so that files it owns mean
// the same user on every node (and on shared storage). hastack creates it
// and keeps its login group, groups, home and shell; it never renumbers
// an account or takes a uid that another name holds: those are errors in
// the plan, for a person to sort out.
type userSpec struct {
	Name  string `json:"name"`
	UID   *int   `json:"uid"`
	Group string `json:"group"` // the login (first) group, by name
	// Groups, when given, are exactly the supplementary groups (an empty
	// list: none); left out, they are left as they are.
	Groups *[]string `json:"groups,omitempty"`
	Home   string    `json:"home,omitempty"`  // created when the account is
	Shell  string    `json:"shell,omitempty"` // e.g. /usr/sbin/nologin
	System bool      `json:"system,omitempty"`
}

// groupSpec is a local group with a fixed gid. Its members are the users'
// business (userSpec.Groups).
type groupSpec struct {
	Name   string `json:"name"`
	GID    *int   `json:"gid"`
	System bool   `json:"system,omitempty"`
}

// accountName is what useradd accepts by default on Debian (NAME_REGEX),
// at most 32 characters: a name can never be read as an option or as sh.
var accountName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// passwdPath is an absolute path that fits in a passwd field.
func passwdPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsAny(p, ":\n\x00")
}

func checkID(id string, n *int, field string) error {
	if n == nil {
		return fmt.Errorf("%s: %s is required: hastack fixes ids so that they match on every node", id, field)
	}
	if *n < 0 || *n > 65533 {
		return fmt.Errorf("%s: %s %d is out of range (0 to 65533)", id, field, *n)
	}
	return nil
}

func decodeUser(r *Resource) (userSpec, error) {
	var s userSpec
	if err := decodeSpec(r, &s); err != nil {
		return s, err
	}
	names := []string{s.Name, s.Group}
	if s.Groups != nil {
		names = append(names, *s.Groups...)
	}
	for _, n := range names {
		if !accountName.MatchString(n) {
			return s, fmt.Errorf("%s: %q is not a user or group name (a-z, 0-9, _ and -, starting with a letter or _, at most 32)", r.ID, n)
		}
	}
	if err := checkID(r.ID, s.UID, "uid"); err != nil {
		return s, err
	}
	for _, p := range []string{s.Home, s.Shell} {
		if p != "" && !passwdPath(p) {
			return s, fmt.Errorf("%s: %q is not an absolute path without ':'", r.ID, p)
		}
	}
	return s, nil
}

func decodeGroup(r *Resource) (groupSpec, error) {
	var s groupSpec
	if err := decodeSpec(r, &s); err != nil {
		return s, err
	}
	if !accountName.MatchString(s.Name) {
		return s, fmt.Errorf("%s: %q is not a group name (a-z, 0-9, _ and -, starting with a letter or _, at most 32)", r.ID, s.Name)
	}
	return s, checkID(r.ID, s.GID, "gid")
}

type userModule struct{}
type groupModule struct{}

func init() {
	register("user", userModule{})
	register("group", groupModule{})
}

// Both read /etc/passwd and /etc/group, which the fact script's tar
// always holds: no command of their own.
func (userModule) Probe(r *Resource) (Probe, error) {
	_, err := decodeUser(r)
	return Probe{}, err
}

func (groupModule) Probe(r *Resource) (Probe, error) {
	_, err := decodeGroup(r)
	return Probe{}, err
}

// account is a line of /etc/passwd or /etc/group.
type account struct {
	name    string
	id, gid int      // gid: passwd only
	home    string   // passwd only
	shell   string   // passwd only
	members []string // group only
}

// accounts reads name:x:id:... lines by name; the first of a name counts,
// as for the system.
func accounts(nf *NodeFacts, path string) (map[string]account, error) {
	f := nf.Files[path]
	if f == nil {
		return nil, fmt.Errorf("%s was not read", path)
	}
	out := map[string]account{}
	for _, l := range strings.Split(string(f.Data), "\n") {
		fs := strings.Split(l, ":")
		if len(fs) < 4 {
			continue
		}
		id, err := strconv.Atoi(fs[2])
		if _, dup := out[fs[0]]; err != nil || dup {
			continue
		}
		a := account{name: fs[0], id: id}
		if len(fs) >= 7 { // passwd: name:x:uid:gid:gecos:home:shell
			a.gid, _ = strconv.Atoi(fs[3])
			a.home, a.shell = fs[5], fs[6]
		} else if fs[3] != "" { // group: name:x:gid:members
			a.members = strings.Split(fs[3], ",")
		}
		out[fs[0]] = a
	}
	return out, nil
}

// holder returns the name that holds id, other than name, if any.
func holder(as map[string]account, id int, name string) string {
	var names []string
	for n, a := range as {
		if a.id == id && n != name {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func (groupModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	s, err := decodeGroup(r)
	if err != nil {
		return nil, err
	}
	groups, err := accounts(f.Node, "/etc/group")
	if err != nil {
		return nil, err
	}
	if g, ok := groups[s.Name]; ok {
		if g.id != *s.GID {
			return nil, fmt.Errorf("group %s has gid %d on the node, the stack fixes %d: hastack does not renumber a group (files keep the old gid); change it by hand", s.Name, g.id, *s.GID)
		}
		return nil, nil
	}
	if other := holder(groups, *s.GID, s.Name); other != "" {
		return nil, fmt.Errorf("gid %d is group %s's on the node: the stack gives it to %s", *s.GID, other, s.Name)
	}
	cmd := fmt.Sprintf("groupadd -g %d", *s.GID)
	if s.System {
		cmd += " -r"
	}
	cmd += " " + s.Name
	env.plan("group", s.Name, *s.GID)
	return commandChange(Create, fmt.Sprintf("create group %s (gid %d)", s.Name, *s.GID), cmd), nil
}

func (userModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	s, err := decodeUser(r)
	if err != nil {
		return nil, err
	}
	users, err := accounts(f.Node, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	groups, err := accounts(f.Node, "/etc/group")
	if err != nil {
		return nil, err
	}
	u, exists := users[s.Name]
	if !exists {
		if other := holder(users, *s.UID, s.Name); other != "" {
			return nil, fmt.Errorf("uid %d is user %s's on the node: the stack gives it to %s", *s.UID, other, s.Name)
		}
		env.plan("user", s.Name, *s.UID)
		return commandChange(Create, fmt.Sprintf("create user %s (uid %d, group %s)", s.Name, *s.UID, s.Group), useradd(s)), nil
	}
	if u.id != *s.UID {
		return nil, fmt.Errorf("user %s has uid %d on the node, the stack fixes %d: hastack does not renumber a user (files keep the old uid); change it by hand", s.Name, u.id, *s.UID)
	}
	var notes, opts []string
	if g, ok := groups[s.Group]; !ok || g.id != u.gid {
		notes = append(notes, "group "+s.Group)
		opts = append(opts, "-g "+s.Group)
	}
	if s.Groups != nil {
		want := slices.Sorted(slices.Values(*s.Groups))
		var have []string
		for n, g := range groups {
			if slices.Contains(g.members, s.Name) {
				have = append(have, n)
			}
		}
		sort.Strings(have)
		if !slices.Equal(want, have) {
			notes = append(notes, fmt.Sprintf("groups %s → %s", listOrNone(have), listOrNone(want)))
			opts = append(opts, "-G "+Quote(strings.Join(want, ",")))
		}
	}
	if s.Home != "" && s.Home != u.home {
		notes = append(notes, fmt.Sprintf("home %s → %s", u.home, s.Home))
		opts = append(opts, "-d "+Quote(s.Home))
	}
	if s.Shell != "" && s.Shell != u.shell {
		notes = append(notes, fmt.Sprintf("shell %s → %s", u.shell, s.Shell))
		opts = append(opts, "-s "+Quote(s.Shell))
	}
	if len(notes) == 0 {
		return nil, nil
	}
	// Not Live: a running process keeps the groups it started with, so a
	// service that watches the user restarts.
	return commandChange(Update, "update user "+s.Name+": "+strings.Join(notes, ", "), "usermod "+strings.Join(opts, " ")+" "+s.Name), nil
}

// useradd creates s's account. A home given is created (with /etc/skel);
// none given, none is made.
func useradd(s userSpec) string {
	opts := []string{fmt.Sprintf("-u %d", *s.UID), "-g " + s.Group}
	if s.Groups != nil && len(*s.Groups) > 0 {
		opts = append(opts, "-G "+Quote(strings.Join(*s.Groups, ",")))
	}
	if s.Home != "" {
		opts = append(opts, "-m -d "+Quote(s.Home))
	} else {
		opts = append(opts, "-M")
	}
	if s.Shell != "" {
		opts = append(opts, "-s "+Quote(s.Shell))
	}
	if s.System {
		opts = append(opts, "-r")
	}
	return "useradd " + strings.Join(opts, " ") + " " + s.Name
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ",")
}

// commandChange is a change that runs one command line, shown as it runs.
func commandChange(act Action, summary, cmd string) *Change {
	return &Change{Action: act, Summary: summary, Commands: []string{cmd},
		apply: func(ctx context.Context, h host.Host) error {
			_, err := run(ctx, h, cmd, nil, secret.Secret{})
			return err
		}}
}
