// Package octaviaconf reads an operator's existing octavia.conf (oslo.config
// INI syntax) into typed structs that keep Octavia 11's option names and
// defaults.
package octaviaconf

import (
	"fmt"

	"gopkg.in/ini.v1"
)

// Config is the subset of octavia.conf the health manager reads.
type Config struct {
	HealthManager HealthManager
}

// HealthManager holds the [health_manager] section.
type HealthManager struct {
	// HeartbeatKey is [health_manager] heartbeat_key; no default.
	HeartbeatKey string
	// HeartbeatKeySet tells an empty key apart from an unset one.
	HeartbeatKeySet bool
}

// Load reads the files in order; a later file overrides options set by an
// earlier one, as with oslo's repeated --config-file.
func Load(files ...string) (*Config, error) {
	cfg := &Config{}
	if len(files) == 0 {
		return cfg, nil
	}
	sources := make([]any, 0, len(files)-1)
	for _, f := range files[1:] {
		sources = append(sources, f)
	}
	file, err := ini.LoadSources(ini.LoadOptions{AllowPythonMultilineValues: true}, files[0], sources...)
	if err != nil {
		return nil, fmt.Errorf("read config files %v: %w", files, err)
	}
	hm := file.Section("health_manager")
	if hm.HasKey("heartbeat_key") {
		cfg.HealthManager.HeartbeatKey = hm.Key("heartbeat_key").String()
		cfg.HealthManager.HeartbeatKeySet = true
	}
	return cfg, nil
}
