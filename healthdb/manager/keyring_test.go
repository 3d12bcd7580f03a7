package manager

import (
	"errors"
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

func TestNewKeyring(t *testing.T) {
	sealed := func(key string) []byte {
		kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
		if err != nil {
			t.Fatal(err)
		}
		return kr.SealMessage(&heartbeat.Message{AmphoraID: "amp", Version: 3, HasVersion: true})
	}
	cfg := octaviaconf.Defaults()
	cfg.HealthManager.HeartbeatKey, cfg.HealthManager.HeartbeatKeySet = "new", true
	cfg.HealthManager.HeartbeatKeyPrevious = []string{"old"}
	override := "flag"
	empty := ""

	tests := []struct {
		name       string
		opts       KeyringOptions
		unset      bool
		opens, not []string
		wantErr    error
	}{
		{name: "config keys", opens: []string{"new", "old"}, not: []string{"flag"}},
		{name: "--key replaces the primary, previous keys still open", opts: KeyringOptions{Primary: &override},
			opens: []string{"flag", "old"}, not: []string{"new"}},
		{name: "unset key refused", unset: true, wantErr: ErrNoKey},
		{name: "empty --key refused", opts: KeyringOptions{Primary: &empty}, wantErr: ErrNoKey},
		{name: "empty --key allowed for the codec tools", opts: KeyringOptions{Primary: &empty, AllowEmpty: true},
			opens: []string{"", "old"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := *cfg
			if tc.unset {
				c.HealthManager.HeartbeatKey, c.HealthManager.HeartbeatKeySet = "", false
			}
			kr, err := NewKeyring(&c, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.opens {
				if _, _, err := kr.Open(sealed(k)); err != nil {
					t.Errorf("signed with %q: %v", k, err)
				}
			}
			for _, k := range tc.not {
				if _, _, err := kr.Open(sealed(k)); err == nil {
					t.Errorf("signed with %q: accepted", k)
				}
			}
		})
	}
}
