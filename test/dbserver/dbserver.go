// Package dbserver holds what test/pgtest and test/mysqltest do alike to
// run a throwaway database server process: pick its user and a free port,
// prepare its command, read its log, and stop it.
package dbserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// User returns the credentials to run the server with, or nil to run it
// as ourselves: when we are root, account, or else nobody (database
// servers refuse to run as root).
func User(product, account string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{account, "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, fmt.Errorf("running as root, but neither a %s nor a nobody user exists to run %s as", account, product)
}

// Prepare runs cmd in dir, as cred, with a minimal environment (PATH
// path). If the test binary dies without stopping the server, the server
// gets deathSignal, its signal to shut down, rather than being left
// running.
func Prepare(cmd *exec.Cmd, dir string, cred *syscall.Credential, path string, deathSignal syscall.Signal) {
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + path, "LC_ALL=C", "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: deathSignal}
}

// FreePort finds a free loopback port by binding and releasing it, so
// another process may grab it in between: a server that fails to start
// on it is retried on a new one.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// LogTail is the last 30 lines of the server log at path, for an error
// message; empty if it cannot be read.
func LogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "server log:\n" + strings.Join(lines, "\n")
}

// Shutdown sends the server process its shutdown signal (named
// signalName) and waits for exited to be closed; after grace it kills the
// process.
func Shutdown(p *os.Process, exited <-chan struct{}, sig syscall.Signal, signalName string, grace time.Duration) error {
	_ = p.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
		return fmt.Errorf("server ignored %s for %ds and was killed", signalName, int(grace.Seconds()))
	}
}
