// Package statsdriver holds the listener-statistics drivers, registered by
// their Octavia names (stats_db, stats_logger).
//
// Every authenticated heartbeat goes to the configured drivers
// ([controller_worker] statistics_drivers), independently of the health
// path: also for zombie and unknown amphorae and for late heartbeats, as
// Octavia's update_stats does. FromMessage turns a heartbeat into the
// per-listener records drivers receive; Fanout calls several drivers the
// way Octavia's stevedore manager does.
//
// Drivers are synchronous today. Update takes one message's listeners and
// whether they are deltas, so an aggregating, buffering front (sum deltas
// per listener and amphora, keep the last gauge, flush periodically) can be
// put in front of any Driver without changing it.
package statsdriver
