package manager_test

import (
	"testing"

	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
