package etc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShadowTeeRecipe applies the iptables and nft lines of
// docs/operations.md ("Duplicating port 5555 in the kernel") as written,
// in a throwaway network namespace, so that the documented rules are ones
// the tools parse and the kernel accepts. It needs root, unshare, iptables
// and nft; without them it says so and skips. No traffic goes through the
// rules.
func TestShadowTeeRecipe(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "### Duplicating port 5555 in the kernel")
	if start < 0 {
		t.Fatal("docs/operations.md has no TEE recipe")
	}
	section := doc[start:]
	if end := strings.Index(section[4:], "\n#"); end >= 0 {
		section = section[:end+4]
	}
	var iptables []string
	var nft []string
	inTable := false
	for _, line := range strings.Split(section, "\n") {
		code, ok := strings.CutPrefix(line, "    ")
		switch {
		case !ok:
			inTable = false
		case strings.HasPrefix(code, "iptables "):
			iptables = append(iptables, code)
		case strings.HasPrefix(code, "table "):
			inTable = true
			nft = append(nft, code)
		case inTable:
			nft = append(nft, code)
		}
	}
	if len(iptables) != 2 || len(nft) == 0 {
		t.Fatalf("found %d iptables lines (want the TEE and the REDIRECT) and %d nft lines in the recipe", len(iptables), len(nft))
	}
	if !strings.Contains(iptables[0], "-j TEE --gateway") || !strings.Contains(strings.Join(nft, "\n"), "dup to") {
		t.Fatalf("the recipe lost its TEE or dup rule: %q %q", iptables, nft)
	}

	if os.Geteuid() != 0 {
		t.Skip("not root: the recipe's rules were not applied")
	}
	for _, tool := range []string{"unshare", "iptables", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the recipe's rules were not applied", tool)
		}
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot make a network namespace (%v): the recipe's rules were not applied", err)
	}
	dir := t.TempDir()
	ruleset := filepath.Join(dir, "tee.nft")
	if err := os.WriteFile(ruleset, []byte(strings.Join(nft, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each rule is added, then checked for (-C), in a namespace of its
	// own that disappears with the shell.
	var script []string
	for _, rule := range iptables {
		script = append(script, "set -e", rule, strings.Replace(rule, " -A ", " -C ", 1))
	}
	script = append(script, "nft -f "+ruleset, "nft list table ip octavia_shadow_tee")
	out, err := exec.Command("unshare", "-n", "sh", "-c", strings.Join(script, "\n")).CombinedOutput()
	if err != nil {
		t.Fatalf("the documented rules were refused: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "dup to") {
		t.Errorf("nft did not list the dup rule:\n%s", out)
	}
}

// TestShadowTeeTraffic sends heartbeats-to-be through the documented
// rules: three network namespaces, an amphora, a controller and a shadow,
// joined by veth pairs; the controller carries the TEE rule (its gateway
// the shadow's address), the shadow the REDIRECT rule. Every datagram the
// amphora sends to the controller's port 5555 must reach the controller's
// socket and, as a copy, the shadow's. Needs root, ip, iptables, python3.
func TestShadowTeeTraffic(t *testing.T) {
	tee, redirect := teeRecipe(t)
	if os.Geteuid() != 0 {
		t.Skip("not root: no traffic sent through the recipe")
	}
	for _, tool := range []string{"ip", "iptables", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: no traffic sent through the recipe", tool)
		}
	}
	p := fmt.Sprintf("tee%d", os.Getpid()%100000)
	ns := func(n string) string { return p + n }
	t.Cleanup(func() {
		for _, n := range []string{"a", "c", "s"} {
			_ = exec.Command("ip", "netns", "del", ns(n)).Run()
		}
	})
	const shadowIP = "10.99.2.2"
	tee = strings.Replace(tee, "192.0.2.30", shadowIP, 1)
	// Each listener reports in one write(2), which a pipe never splits:
	// the two print()s had interleaved ("controllershadow 20\n 20").
	listen := `import os,socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("0.0.0.0",5555));s.settimeout(20)
n=0
try:
  while True: s.recv(100); n+=1; s.settimeout(3)
except socket.timeout: pass
os.write(1,("%s %d\n"%(sys.argv[1],n)).encode())`
	script := strings.Join([]string{
		"set -e",
		fmt.Sprintf("for n in %s %s %s; do ip netns add $n; ip -n $n link set lo up; done", ns("a"), ns("c"), ns("s")),
		// The pairs are made inside the namespaces: nothing is added to
		// the host's own network namespace.
		fmt.Sprintf("ip -n %s link add %sa type veth peer name %sc1 netns %s", ns("a"), p, p, ns("c")),
		fmt.Sprintf("ip -n %s link add %sc2 type veth peer name %ss netns %s", ns("c"), p, p, ns("s")),
		fmt.Sprintf("ip -n %s addr add 10.99.1.2/24 dev %sa; ip -n %s link set %sa up", ns("a"), p, ns("a"), p),
		fmt.Sprintf("ip -n %s addr add 10.99.1.1/24 dev %sc1; ip -n %s link set %sc1 up", ns("c"), p, ns("c"), p),
		fmt.Sprintf("ip -n %s addr add 10.99.2.1/24 dev %sc2; ip -n %s link set %sc2 up", ns("c"), p, ns("c"), p),
		fmt.Sprintf("ip -n %s addr add %s/24 dev %ss; ip -n %s link set %ss up", ns("s"), shadowIP, p, ns("s"), p),
		// The shadow routes back to the amphorae's network, as a host on
		// the management network does; strict reverse-path filtering then
		// accepts the copies.
		fmt.Sprintf("ip -n %s route add 10.99.1.0/24 via 10.99.2.1", ns("s")),
		fmt.Sprintf("ip netns exec %s %s", ns("c"), tee),
		fmt.Sprintf("ip netns exec %s %s", ns("s"), redirect),
		fmt.Sprintf("ip netns exec %s python3 -c '%s' controller & ip netns exec %s python3 -c '%s' shadow &", ns("c"), listen, ns("s"), listen),
		// Python can take seconds to start on a loaded machine: send only
		// once both listeners are bound (port 5555 is 15B3 in /proc/net/udp),
		// or the first datagrams are lost.
		fmt.Sprintf("for i in $(seq 300); do ip netns exec %s grep -q ':15B3 ' /proc/net/udp && ip netns exec %s grep -q ':15B3 ' /proc/net/udp && break; sleep 0.1; done", ns("c"), ns("s")),
		fmt.Sprintf(`ip netns exec %s python3 -c 'import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
for i in range(20): s.sendto(b"hb%%d" %% i, ("10.99.1.1", 5555))'`, ns("a")),
		"wait",
	}, "\n")
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"controller 20", "shadow 20"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("want %q; got:\n%s", want, out)
		}
	}
}

// teeRecipe is the two iptables lines of docs/operations.md's recipe.
func teeRecipe(t *testing.T) (tee, redirect string) {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		code, ok := strings.CutPrefix(line, "    iptables ")
		switch {
		case ok && strings.Contains(code, "-j TEE"):
			tee = "iptables " + code
		case ok && strings.Contains(code, "-j REDIRECT"):
			redirect = "iptables " + code
		}
	}
	if tee == "" || redirect == "" {
		t.Fatal("docs/operations.md lacks the TEE or the REDIRECT line")
	}
	return tee, redirect
}
