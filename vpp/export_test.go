package vpp

import (
	"context"
	"testing"

	"github.com/octavia-vpp/health/vpp/internal/fakevpp"
)

// FakeForTest exposes the fake-VPP harness to the external test package.
type FakeForTest struct {
	G   *Govpp
	Srv *fakevpp.Server
	e   *fakeEnv
}

// StartFakeForTest starts a fake VPP and a connected Govpp.
func StartFakeForTest(t testing.TB, f fakevpp.Flavor, withStats bool) *FakeForTest {
	e := startFake(t, f, withStats)
	return &FakeForTest{G: e.g, Srv: e.srv, e: e}
}

// ScrapeNow runs one counter scrape.
func (f *FakeForTest) ScrapeNow() { f.e.scrapeNow() }

// Restart stops the fake VPP (socket removed), starts a fresh one and
// waits until the Govpp reconnected and re-pushed.
func (f *FakeForTest) Restart() { f.e.restart() }

// SockPathForTest returns a unix socket path short enough to bind.
func SockPathForTest(t testing.TB) string { return sockPath(t) }

// ScrapeForTest runs one counter scrape on g.
func ScrapeForTest(g *Govpp) error { return g.scrape(context.Background()) }
