package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// plainNode is one node of a plain stack: where hastack reaches it.
type plainNode struct{ Name, IP string }

// writePlainStack writes <dir>/bench.cue: a stack written in CUE only, as
// a user would (docs/stacks.md), with no driver: on every node a dir, three
// files (one of them a systemd unit) and the unit's service, restarted when
// its unit file or config changes. The unit runs sleep: the lab's
// systemctl stand-in starts its ExecStart= in the background.
func writePlainStack(dir string, nodes []plainNode) error {
	var b strings.Builder
	b.WriteString(`package bench

import "hastack.dev/schema/stack"

_hosts: [
`)
	for _, n := range nodes {
		fmt.Fprintf(&b, "\t{name: %q, ip: %q},\n", n.Name, n.IP)
	}
	b.WriteString(`]

stacks: plain: stack.#Stack & {
	greeting: "hello from hastack"

	nodes: [for h in _hosts {
		name: h.name
		ip:   h.ip
		resources: [
			{id: "dir:/etc/benchd", kind: "dir", phase: 0, spec: {path: "/etc/benchd", owner: "root", group: "root", mode: "0755"}},
			{id: "file:/etc/benchd/benchd.conf", kind: "file", phase: 1, spec: {
				path: "/etc/benchd/benchd.conf", owner: "root", group: "root", mode: "0644"
				content: "name \(h.name)\nlisten \(h.ip):7070\ngreeting \(greeting)\n"
			}},
			{id: "file:/etc/benchd/motd", kind: "file", phase: 1, spec: {
				path: "/etc/benchd/motd", owner: "root", group: "root", mode: "0644"
				content: "\(greeting), \(h.name)\n"
			}},
			{id: "file:/etc/systemd/system/benchd.service", kind: "file", phase: 1, spec: {
				path: "/etc/systemd/system/benchd.service", owner: "root", group: "root", mode: "0644"
				content: """
					[Unit]
					Description=hastack bench daemon

					[Service]
					ExecStart=/bin/sleep infinity

					[Install]
					WantedBy=multi-user.target

					"""
			}},
			{id: "service:benchd", kind: "service", phase: 2,
				watch: ["file:/etc/systemd/system/benchd.service", "file:/etc/benchd/benchd.conf"]
				spec: {unit: "benchd", enabled: true, running: true}},
		]
	}]
	phases: [{name: "dirs"}, {name: "files"}, {name: "service"}]
}
`)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.cue"), []byte(b.String()), 0o644)
}
