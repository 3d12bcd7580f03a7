// Package udp is the socket side of the heartbeat protocol: Receiver, the
// health manager's UDP listener that opens datagrams with a
// heartbeat.Keyring, and Sender, the agent's scored round-robin over the
// controllers. The envelope, keyring and message model stay in package
// heartbeat, which opens no socket; see docs/heartbeat.md.
//
// Layering: udp imports heartbeat and internal/boundq, both below it, and
// is imported by the pipeline (cmd/octavia-health-manager) and the agent.
package udp
