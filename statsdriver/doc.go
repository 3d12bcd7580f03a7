// Package statsdriver holds the listener-statistics drivers, registered by
// their Octavia names (stats_db, stats_logger).
//
// Every authenticated heartbeat goes to the configured drivers
// ([controller_worker] statistics_drivers), independently of the health
// path: also for zombie and unknown amphorae and for late heartbeats, as
// Octavia's update_stats does. FromMessage turns a heartbeat into the
// per-listener records drivers receive; Pipeline opens the configured
// drivers (for serve and replay alike) and calls each in turn, a failing
// one not stopping the others, as Octavia's stevedore manager does.
//
// Drivers are synchronous. In serve, stats_db sits behind an Aggregator,
// which folds heartbeats per listener and amphora and flushes them
// periodically through DB.ApplyFlush, each flush exactly once
// (docs/stats.md, "Exactly once"). replay, which applies one heartbeat at
// a time, opens the same drivers with PipelineConfig.PerHeartbeat: its
// stats_db writes each heartbeat through DB.Update, with Octavia's rule
// for a refused listener.
package statsdriver
