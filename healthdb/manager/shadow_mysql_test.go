package manager_test

import (
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/healthdb/mysqlstore"
	"github.com/octavia-vpp/health/internal/mysqlconf"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/mysqltest"
)

// The shadow runs on MariaDB as a user granted SELECT alone, its sessions
// read-only, and compares heartbeats and polls without a read error; the
// database is left as it was.
func TestShadowOnMariaDBAsReadOnlyUser(t *testing.T) {
	dsn := mysqltest.NewDB(t)
	db := seedOneLBMySQL(t, dsn)
	if _, err := db.Exec(`INSERT INTO amphora_health (amphora_id, last_update, busy) VALUES ('amp-2', UTC_TIMESTAMP() - INTERVAL 1 HOUR, 0)`); err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	user := "sh_" + cfg.DBName
	if len(user) > 32 {
		user = user[:32]
	}
	mysqltest.Admin(t, fmt.Sprintf("CREATE USER '%s'@'%%'", user), fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'%%'", cfg.DBName, user))
	t.Cleanup(func() { mysqltest.Admin(t, fmt.Sprintf("DROP USER '%s'@'%%'", user)) })
	u := url.URL{Scheme: "mysql+pymysql", User: url.User(user), Host: cfg.Addr, Path: "/" + cfg.DBName}

	file := filepath.Join(t.TempDir(), "disagreements.jsonl")
	conf := testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = k
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
health_check_interval = 1
shadow = true
shadow_disagreement_file = %s
`, u.String(), file)))
	r := managertest.Start(t, managertest.Options{Files: []string{conf}})
	udp, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(r.ListenAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	kr := sealer(t, "k")
	for i := 1; i <= 3; i++ {
		msg := managertest.TypicalHeartbeat("amp-1", "UP")
		msg.Seq = int64(i)
		if _, err := udp.Write(kr.SealMessage(msg)); err != nil {
			t.Fatal(err)
		}
		testproc.WaitFor(t, "the shadow compares the heartbeat", func() bool {
			return testutilValue(t, r.Manager, "octavia_hm_shadow_heartbeats_compared_total") >= float64(i)
		})
	}
	time.Sleep(2500 * time.Millisecond) // two polls of the stale-amphora rules
	if n := testutilValue(t, r.Manager, "octavia_hm_shadow_read_errors_total"); n != 0 {
		t.Errorf("%v reads failed as a read-only user", n)
	}
	var status string
	var rows, busy int
	if err := db.QueryRow(`SELECT operating_status FROM member WHERE id = 'm-1'`).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(MAX(busy), 0) FROM amphora_health`).Scan(&rows, &busy); err != nil {
		t.Fatal(err)
	}
	if status != "OFFLINE" || rows != 1 || busy != 0 {
		t.Errorf("the database changed: member %s, %d amphora_health rows, busy %d", status, rows, busy)
	}
}

// The shadow's MySQL sessions are read-only even for a user who may
// write: a bug that tried would fail.
func TestShadowMySQLSessionsRefuseWrites(t *testing.T) {
	dsn := mysqltest.NewDB(t)
	seedOneLBMySQL(t, dsn)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mysqlconf.NewReadOnlyConnector(mysqlstore.Config(cfg), func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec(`UPDATE member SET operating_status = 'ONLINE' WHERE id = 'm-1'`); err == nil {
		t.Fatal("a write through a read-only session succeeded")
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM member`).Scan(&n); err != nil || n != 1 {
		t.Errorf("read: %d, %v", n, err)
	}
}
