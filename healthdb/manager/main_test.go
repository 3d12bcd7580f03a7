package manager_test

import (
	"os"
	"testing"

	"github.com/octavia-vpp/health/test/mysqltest"
	"github.com/octavia-vpp/health/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(mysqltest.Wrap(func() int { return pgtest.Run(m) })) }
