package hsts

import "cuelang.org/go/cue"

// TransferSecrets names the cluster's secrets of seed 000's identical
// configs (transfer.cue): the transfer SSH host key (frontend.hostKey) and
// the token encryption key (bearerToken.encryptionKey); "" when unset.
func (c *Cluster) TransferSecrets() (hostKey, tokenKey string) {
	if !c.Value.Exists() {
		return "", ""
	}
	str := func(p string) string {
		s, _ := c.Value.LookupPath(cue.ParsePath(p)).String()
		return s
	}
	return str("frontend.hostKey"), str("bearerToken.encryptionKey")
}

// TransferHostKeyFile is where every HSTS node keeps the shared transfer
// host key (#Transfer in transfer.cue).
const TransferHostKeyFile = "/etc/ssh/hastack-transfer/ssh_host_key"
