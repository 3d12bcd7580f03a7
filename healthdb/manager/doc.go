// Package manager is the health manager's heartbeat pipeline, built from
// a configuration (*octaviaconf.Config): receiver -> bounded health and
// statistics queues -> updater and statistics drivers, the watcher that
// fails stale amphorae over, the clock skew check, SIGHUP reload and the
// readiness endpoint. It also holds the builders the offline commands
// share with the daemon (keyring, database pool, updater, statistics
// drivers), so that replay and decode accept what serve accepts.
//
// cmd/octavia-health-manager only parses flags and wires this package;
// see docs/architecture.md.
package manager
