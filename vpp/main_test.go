package vpp

import (
	"io"
	"os"
	"testing"

	"github.com/sirupsen/logrus"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/core"
)

// TestMain quiets govpp's own logrus output (reconnect warnings are
// expected in these tests) unless VPP_TEST_LOG is set.
func TestMain(m *testing.M) {
	if os.Getenv("VPP_TEST_LOG") == "" {
		quiet := logrus.New()
		quiet.SetOutput(io.Discard)
		core.SetLogger(quiet)
		socketclient.SetLogger(quiet)
	}
	os.Exit(m.Run())
}
