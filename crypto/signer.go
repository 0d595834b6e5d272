package crypto

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/cityhall/registry/registry"
)

// Signer signs an approver's statements: approvals, rejections,
// withdrawals, changes of the approver set and of the recipients. A
// registry key file (SigningKey) signs in process; a key held by ssh-agent
// (AgentSigner), a FIDO2 security key among them, signs in the agent and
// never leaves it.
type Signer interface {
	// PublicKey is the key the signatures verify with.
	PublicKey() *registry.PublicKey
	// SignStatement signs msg for purpose, as registry.PublicKey.Verify
	// checks it.
	SignStatement(purpose string, msg []byte) ([]byte, error)
}

// PublicKey returns k's public key as an approver's key.
func (k *SigningKey) PublicKey() *registry.PublicKey {
	pk, err := registry.ParsePublicKey(registry.FormatPublicKey(k.Public()))
	if err != nil {
		panic(err) // a 32-byte Ed25519 key always parses
	}
	return pk
}

// SignStatement signs msg for purpose (it never fails).
func (k *SigningKey) SignStatement(purpose string, msg []byte) ([]byte, error) {
	return k.Sign(purpose, msg), nil
}

// AgentSigner signs with an Ed25519 or FIDO2 (sk-ssh-ed25519) key held by
// ssh-agent, in OpenSSH's SSHSIG format with the purpose as namespace, as
// `ssh-keygen -Y sign -n PURPOSE` would. A security key asks for a touch
// on every signature.
type AgentSigner struct {
	conn  net.Conn
	agent agent.ExtendedAgent
	key   *agent.Key
	pub   *registry.PublicKey
}

// agentKinds are the key types an approver may hold in the agent.
var agentKinds = []string{registry.KeySSH, registry.KeySSHSK}

// OpenAgentSigner connects to the agent at SSH_AUTH_SOCK and picks the
// key want names: its key id, its public key (text or authorized_keys
// form), or "" for the agent's only Ed25519 or security key. EINVALID,
// with what to do, when there is no agent, no such key, or several to
// choose from.
func OpenAgentSigner(want string) (*AgentSigner, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, registry.Errorf(registry.EINVALID, "No ssh-agent: SSH_AUTH_SOCK is not set (start ssh-agent and ssh-add your key).")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot reach ssh-agent at SSH_AUTH_SOCK: %v.", pathErrReason(err))
	}
	ag := agent.NewClient(conn)
	keys, err := ag.List()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("list the agent's keys: %w", err)
	}
	var found []*AgentSigner
	for _, k := range keys {
		pub, err := registry.ParsePublicKey(k.Type() + " " + agentKeyBase64(k))
		if err != nil {
			continue // RSA, ECDSA: not an approver's kind
		}
		if want == "" || want == pub.ID() || sameKey(want, pub) {
			found = append(found, &AgentSigner{conn: conn, agent: ag, key: k, pub: pub})
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && want == "":
		conn.Close()
		return nil, registry.Errorf(registry.EINVALID, "ssh-agent holds no %s key: ssh-add yours.", strings.Join(agentKinds, " or "))
	case len(found) == 0:
		conn.Close()
		return nil, registry.Errorf(registry.EINVALID, "ssh-agent holds no key %s: ssh-add it, or name another (ssh-agent:KEY-ID).", registry.SafeKeyID(want))
	}
	conn.Close()
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = f.pub.ID()
	}
	return nil, registry.Errorf(registry.EINVALID, "ssh-agent holds %d approver keys (%s): name one as ssh-agent:KEY-ID.", len(found), strings.Join(ids, ", "))
}

// sameKey reports whether want is pub's text or authorized_keys form.
func sameKey(want string, pub *registry.PublicKey) bool {
	k, err := registry.ParsePublicKey(want)
	return err == nil && k.Equal(pub)
}

func agentKeyBase64(k *agent.Key) string {
	return strings.TrimSpace(strings.TrimPrefix(string(ssh.MarshalAuthorizedKey(k)), k.Type()))
}

// PublicKey returns the agent key's public key.
func (s *AgentSigner) PublicKey() *registry.PublicKey { return s.pub }

// SignStatement has the agent sign msg for purpose and returns the SSHSIG
// signature.
func (s *AgentSigner) SignStatement(purpose string, msg []byte) ([]byte, error) {
	const hash = "sha512"
	sig, err := s.agent.Sign(s.key, registry.SSHSigned(purpose, hash, msg))
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "ssh-agent did not sign with key %s (a security key needs a touch): %v.", s.pub.ID(), err)
	}
	blob := registry.SSHSIGBlob(s.pub, purpose, hash, ssh.Marshal(sig))
	if !s.pub.Verify(purpose, msg, blob) {
		return nil, errors.New("ssh-agent returned a signature that does not verify")
	}
	return blob, nil
}

// Close ends the connection to the agent.
func (s *AgentSigner) Close() error { return s.conn.Close() }
