package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"hastack.dev/hastack/internal/cli"
	"hastack.dev/hastack/internal/lab"
)

func init() {
	cli.Register(&cli.Command{
		Name:  "lab",
		Short: "start, list, use and stop local test nodes (needs root)",
		Run:   runLab,
	})
}

func labUsage(env *cli.Env) {
	fmt.Fprint(env.Stderr, `usage:
  hastack lab up [-n 3] [-name lab]              start N nodes (sshd in namespaces)
  hastack lab down [-name lab]                   stop them and remove everything
  hastack lab ls                                 list labs (/tmp/hastack-lab-NAME)
  hastack lab exec [-name lab] NODE -- CMD...    run a command on a node
The lab's dir, namespaces and addresses all follow from its name.
`)
}

func runLab(env *cli.Env, args []string) int {
	if len(args) == 0 {
		labUsage(env)
		return cli.ExitUsage
	}
	fs := flag.NewFlagSet("lab "+args[0], flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { labUsage(env); fs.PrintDefaults() }
	name := fs.String("name", "lab", "lab name (1-12 of a-z, 0-9, -)")
	nodes := fs.Int("n", 3, "number of nodes (up)")
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		labUsage(env)
		return cli.ExitOK
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cli.ExitOK
		}
		return cli.ExitUsage
	}
	if err := lab.ValidName(*name); err != nil && args[0] != "ls" {
		fmt.Fprintf(env.Stderr, "hastack lab %s: %v\n", args[0], err)
		return cli.ExitUsage
	}
	switch args[0] {
	case "up":
		return labUp(env, *name, *nodes)
	case "down":
		// Clean also handles a lab that crashed before saving lab.json.
		if err := lab.Clean(*name); err != nil {
			fmt.Fprintf(env.Stderr, "hastack lab down: %v\n", err)
			return cli.ExitFailure
		}
		fmt.Fprintf(env.Stdout, "lab %s stopped\n", *name)
		return cli.ExitOK
	case "ls":
		return labLs(env)
	case "exec":
		return labExec(env, *name, fs.Args())
	}
	fmt.Fprintf(env.Stderr, "hastack lab: unknown subcommand %q\n", args[0])
	labUsage(env)
	return cli.ExitUsage
}

func labUp(env *cli.Env, name string, nodes int) int {
	if err := lab.Available(); err != nil {
		fmt.Fprintf(env.Stderr, "hastack lab up: %v\n", err)
		return cli.ExitFailure
	}
	ctx, stop := cli.OnInterrupt(env, "lab up", "stopping and removing what was started",
		"namespaces or processes of the lab may be left. Remove them with hastack lab down -name "+name+".")
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, Nodes: nodes})
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack lab up: %v\n", err)
		return cli.ExitFailure
	}
	cfg := filepath.Join(l.Dir, "config")
	if err := l.WriteConfig(cfg, ""); err != nil {
		fmt.Fprintf(env.Stderr, "hastack lab up: %v\n", err)
		return cli.ExitFailure
	}
	w := env.Stdout
	fmt.Fprintf(w, "lab %s is up: %d nodes\n\n", l.Name, len(l.Nodes))
	for _, n := range l.Nodes {
		fmt.Fprintf(w, "  %-8s %-15s netns %s\n", n.Name, n.IP, n.Netns)
	}
	fmt.Fprintf(w, "\nlab dir:      %s\nconfig:       %s/cluster.cue\nknown_hosts:  %s\nidentity:     %s\ncontroller:   netns %s (%s)\n",
		l.Dir, cfg, l.KnownHosts, l.Identity, l.Controller, l.ControllerIP)
	fmt.Fprintf(w, `
Use it (the nodes are reachable only through the controller namespace):
  export HASTACK_LAB=%[7]s HASTACK_REDIS_PASSWORD=<a password of 8+ characters>
  hastack plan %[4]s        # HASTACK_LAB routes SSH through the lab
  hastack apply %[4]s
  hastack check %[4]s
or, from inside the controller namespace:
  ip netns exec %[1]s hastack plan -known-hosts %[2]s -i %[3]s %[4]s
  ip netns exec %[1]s ssh -o UserKnownHostsFile=%[2]s -i %[3]s root@%[5]s
  hastack lab exec -name %[6]s node1 -- systemctl status asperaredisd
Stop it: hastack lab down -name %[6]s
`, l.Controller, l.KnownHosts, l.Identity, cfg, l.Nodes[0].IP, l.Name, l.Dir)
	return cli.ExitOK
}

func labLs(env *cli.Env) int {
	dirs, _ := filepath.Glob(lab.DirOf("*"))
	for _, d := range dirs {
		l, err := lab.Load(d)
		if err != nil {
			// Anyone can make a /tmp/hastack-lab-X: say why it is not listed.
			fmt.Fprintf(env.Stderr, "hastack lab ls: %v\n", err)
			continue
		}
		var names []string
		for _, n := range l.Nodes {
			names = append(names, n.Name+"="+n.IP)
		}
		fmt.Fprintf(env.Stdout, "%-12s %s  %s\n", l.Name, l.Dir, strings.Join(names, " "))
	}
	return cli.ExitOK
}

func labExec(env *cli.Env, name string, args []string) int {
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1], args[2:]...)
	}
	if len(args) < 2 {
		fmt.Fprintln(env.Stderr, "usage: hastack lab exec [-name lab] NODE -- CMD...")
		return cli.ExitUsage
	}
	l, err := lab.Open(name)
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack lab exec: %v\n", err)
		return cli.ExitFailure
	}
	out, err := l.Exec(context.Background(), args[0], args[1:]...)
	env.Stdout.Write(out)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack lab exec: %v\n", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}
