// Package testproc holds the one set of helpers shared by tests that
// start processes or servers: building a program once per test process
// (Binary, Build), a free loopback port, a buffer that a child process
// (or a logger) writes while the test reads it, and golden-file
// comparison (Golden).
package testproc

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// FreePort returns a loopback port on network ("tcp" or "udp") that was
// free when asked. Tests never bind fixed ports: several suites run at
// once on one machine.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Output collects what is written to it while a test reads it; it is
// safe for concurrent use, unlike bytes.Buffer.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
