// Package shadow is shadow mode: the manager runs beside Octavia's own
// health manager, on the same database and heartbeats, writes nothing, and
// reports every decision it would have made differently
// ([health_manager] shadow, docs/shadow.md).
//
// Comparator holds the pure comparison rules (statuses, health,
// failovers, statistics); Shadow feeds it from a read-only database
// (Reader), counts, logs and keeps the disagreements (Log).
package shadow
