package etc

import (
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
