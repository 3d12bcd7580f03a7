// Package agent is the in-amphora half: it programs VPP's LB plugin from the
// LB description, health-checks members and sends V3 heartbeats.
//
// Pure decision logic sits apart from I/O: Health (HAProxy's rise/fall
// counter and member strings), Intervals and Jitter, MapWeight and PlanPool
// (weights, flush, backup members, marks, pool status), ListenerStateOf,
// Warmup, Delta and Counters (V3 deltas with Octavia's reset rule),
// EffectiveMark and Judge (self-health). The I/O shell is Probe (TCP,
// HTTP, HTTPS, TLS-HELLO, UDP-CONNECT, PING), the counter file, the marks
// Spool, Notify (sd_notify), Agent (run loop, reconcile to vpp.Dataplane,
// heartbeat build and send through udp.Sender) and NewAPI (the local
// HTTP API). The amphora-agent command's actions (run, check-config,
// status, counters, marks, heartbeat --print) are in subpackage agentcli.
// docs/agent.md describes the whole.
package agent
