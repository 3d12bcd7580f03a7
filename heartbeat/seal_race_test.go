//go:build race

package heartbeat

// sealRace: the race detector makes sync.Pool drop items at random, so
// allocation counts are not meaningful.
const sealRace = true
