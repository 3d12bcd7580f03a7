package udp

import (
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
)

func keyring(t testing.TB, keys ...string) *heartbeat.Keyring {
	t.Helper()
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
