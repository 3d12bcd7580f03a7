package loadgen

import "github.com/octavia-vpp/health/heartbeat"

// AmphoraID is the id Seed gives amphora a (0-based).
func AmphoraID(a int) string { return amphoraID(a) }

// ListenerID is the id Seed gives amphora a's listener l.
func ListenerID(a, l int) string { return listenerID(a, l) }

// Message is amphora a's V3 heartbeat as Run sends it, every member UP.
// Every listener reports the same statistics deltas in every heartbeat, so
// a test can compute the listener_statistics sums a number of heartbeats
// must give.
func (c *Config) Message(a int, seq int64) *heartbeat.Message { return c.message(a, seq, false) }
