package manager

import (
	"errors"
	"fmt"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// KeyringOptions adjust NewKeyring for the offline tools.
type KeyringOptions struct {
	// Primary, when not nil, replaces [health_manager] heartbeat_key (the
	// tools' --key). heartbeat_key_previous and max_heartbeat_bytes still
	// apply, so a tool opens what serve opens.
	Primary *string
	// AllowEmpty accepts an empty primary key. The empty string is a valid
	// HMAC key, which decode and encode accept when it is set explicitly;
	// anything that applies heartbeats to the database refuses it.
	AllowEmpty bool
}

// ErrNoKey is returned by NewKeyring when no usable primary key is set.
var ErrNoKey = errors.New("[health_manager] heartbeat_key is not set")

// NewKeyring builds the heartbeat keyring from [health_manager]: the
// primary heartbeat_key, which seals, then every heartbeat_key_previous,
// accepted while keys rotate, with max_heartbeat_bytes as the inflated
// size limit. serve, replay, decode, encode and loadgen all build theirs
// here, so the tools accept exactly what the daemon accepts.
//
// An unset or empty key is refused: Octavia's amphorae sign with the
// literal string "None" when theirs is unset, so an empty key here is
// always a mistake (unless AllowEmpty and set explicitly).
func NewKeyring(cfg *octaviaconf.Config, opts KeyringOptions) (*heartbeat.Keyring, error) {
	hm := &cfg.HealthManager
	primary := hm.HeartbeatKey
	set := hm.HeartbeatKeySet
	if opts.Primary != nil {
		primary, set = *opts.Primary, true
	}
	if !set || (primary == "" && !opts.AllowEmpty) {
		return nil, ErrNoKey
	}
	keys := append([]string{primary}, hm.HeartbeatKeyPrevious...)
	return heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: keys, MaxInflatedBytes: hm.MaxHeartbeatBytes,
		Strict: hm.StrictHeartbeats})
}

// newDaemonKeyring is the daemon's keyring, refusing a missing key with
// the reason.
func newDaemonKeyring(cfg *octaviaconf.Config) (*heartbeat.Keyring, error) {
	kr, err := NewKeyring(cfg, KeyringOptions{})
	if errors.Is(err, ErrNoKey) {
		return nil, fmt.Errorf("%w: refusing to start "+
			"(amphorae whose key is unset sign with the literal string \"None\"; set the same key on both sides)", err)
	}
	return kr, err
}
