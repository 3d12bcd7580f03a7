// Package healthdb holds the Octavia status procedure as a pure function
// (amphora topology + heartbeat -> decision) and the PostgreSQL store and
// stale-amphora watcher built around it.
package healthdb
