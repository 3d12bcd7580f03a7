// Package statsdriver holds the listener-statistics drivers, registered by
// their Octavia names (stats_db, stats_logger) plus prometheus.
package statsdriver
