// Package agent is the in-amphora half: it programs VPP's LB plugin from the
// LB description, health-checks members and sends V3 heartbeats.
package agent
