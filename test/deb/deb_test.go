// Package deb tests the .deb packages make deb builds (etc/deb/).
package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// install is run in a mount namespace of its own: a throwaway root whose
// /usr is an overlay of the machine's (so the maintainer scripts find sh,
// adduser and getent, and writes land in the overlay), whose /etc is a
// copy without any octavia user, and whose dpkg database is empty. The
// packages are installed with dpkg -i, scripts and all, then inspected
// from inside it.
const install = `set -euo pipefail
t=$1; shift
r=$t/root
mkdir -p $r/usr $t/upper $t/work $r/var/lib/dpkg/info $r/var/lib/dpkg/updates $r/var/log $r/tmp $r/dev $r/proc $r/run
mount -t overlay overlay -o lowerdir=/usr,upperdir=$t/upper,workdir=$t/work $r/usr
for l in bin sbin lib lib32 lib64 libx32; do if [ -L /$l ]; then ln -s "$(readlink /$l)" $r/$l; fi; done
cp -a /etc $r/
for f in passwd group shadow gshadow; do if [ -f $r/etc/$f ]; then sed -i '/^octavia:/d' $r/etc/$f; fi; done
touch $r/var/lib/dpkg/status $r/var/lib/dpkg/available
mount --bind /dev $r/dev
mount -t proc proc $r/proc
chmod 1777 $r/tmp
echo "== user before"; chroot $r getent passwd octavia || echo none
echo "== dpkg"; dpkg --root=$r --force-depends -i "$@" 2>&1
echo "== user"; chroot $r getent passwd octavia
echo "== conffiles"; chroot $r dpkg-query -W -f='${Package}:${Conffiles}\n' octavia-health-manager amphora-agent
echo "== modes"; chroot $r stat -c '%n %U:%G %a' /etc/octavia/octavia.conf /etc/octavia/amphora-agent.conf /var/lib/octavia /var/log/octavia
echo "== help"; chroot $r /usr/bin/octavia-health-manager --help | sed -n 1,2p; chroot $r /usr/bin/amphora-agent --help | sed -n 1,2p
if chroot $r systemd-analyze --version >/dev/null 2>&1; then
  echo "== verify"
  chroot $r systemd-analyze verify /usr/lib/systemd/system/octavia-health-manager.service /usr/lib/systemd/system/amphora-agent.service 2>&1 && echo "verify ok"
  sed 's#^ExecStart=.*#ExecStart=/usr/bin/no-such-program#' $r/usr/lib/systemd/system/amphora-agent.service >$r/tmp/broken.service
  chroot $r systemd-analyze verify /tmp/broken.service >/dev/null 2>&1 || echo "broken unit refused"
fi
echo "== end"
`

var packages = []struct {
	name, conf, unit string
}{
	{"octavia-health-manager", "/etc/octavia/octavia.conf", "/usr/lib/systemd/system/octavia-health-manager.service"},
	{"amphora-agent", "/etc/octavia/amphora-agent.conf", "/usr/lib/systemd/system/amphora-agent.service"},
}

func TestPackages(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	build := exec.Command("make", "--no-print-directory", "deb", "DIST="+dist)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	var debs []string
	for _, p := range packages {
		m, _ := filepath.Glob(filepath.Join(dist, p.name+"_*_*.deb"))
		if len(m) != 1 {
			t.Fatalf("make deb made %v for %s", m, p.name)
		}
		debs = append(debs, m[0])
		checkContents(t, p.name, p.conf, p.unit, m[0])
	}

	if os.Geteuid() != 0 {
		t.Skip("not root: no throwaway root to install into")
	}
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("no private mount namespace here (%v)", err)
	}
	hostUser := func() string { b, _ := exec.Command("getent", "passwd", "octavia").Output(); return string(b) }
	hostBefore := hostUser()
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "bash", "-c", install, "install", t.TempDir()}, debs...)...)
	b, err := cmd.CombinedOutput()
	out := string(b)
	t.Logf("install into a throwaway root:\n%s", out)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	section := func(name string) string {
		_, rest, _ := strings.Cut(out, "== "+name+"\n")
		s, _, _ := strings.Cut(rest, "\n== ")
		return s
	}
	if section("user before") != "none" {
		t.Errorf("the throwaway root had an octavia user before the install: %q", section("user before"))
	}
	user := strings.Split(strings.TrimSpace(section("user")), ":")
	if len(user) != 7 || user[0] != "octavia" || user[5] != "/var/lib/octavia" || user[6] != "/usr/sbin/nologin" {
		t.Errorf("postinst made no octavia system user: %q", section("user"))
	}
	for _, p := range packages {
		if !strings.Contains(section("conffiles"), p.name+": "+p.conf+" ") {
			t.Errorf("%s: %s is not a registered conffile: %q", p.name, p.conf, section("conffiles"))
		}
		if !strings.Contains(section("modes"), p.conf+" root:octavia 640") {
			t.Errorf("%s: want root:octavia 640: %q", p.conf, section("modes"))
		}
		if !strings.Contains(section("help"), p.name+" - ") {
			t.Errorf("%s does not run from the installed root: %q", p.name, section("help"))
		}
	}
	for _, d := range []string{"/var/lib/octavia octavia:octavia 750", "/var/log/octavia octavia:octavia 750"} {
		if !strings.Contains(section("modes"), d) {
			t.Errorf("want %s: %q", d, section("modes"))
		}
	}
	if strings.Contains(out, "== verify") {
		if v := section("verify"); !strings.Contains(v, "verify ok") || !strings.Contains(v, "broken unit refused") {
			t.Errorf("systemd-analyze verify: %q", v)
		}
	} else {
		t.Log("no systemd-analyze: the units are not verified")
	}
	if after := hostUser(); after != hostBefore {
		t.Errorf("the install changed the machine's own octavia user: %q, then %q", hostBefore, after)
	}
}

// checkContents reads a package without installing it: its files, its
// conffiles and its postinst.
func checkContents(t *testing.T, name, conf, unit, deb string) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	ctl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e %s: %v\n%s", deb, err, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "usr/bin", name)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: /usr/bin/%s: %v %v", name, name, fi, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, unit))
	if err != nil {
		t.Fatalf("%s: no unit: %v", name, err)
	}
	if !strings.Contains(string(b), "ExecStart=/usr/bin/"+name+" ") || strings.Contains(string(b), "/usr/local/bin") {
		t.Errorf("%s: the unit does not start /usr/bin/%s:\n%s", name, name, b)
	}
	if fi, err := os.Stat(filepath.Join(dir, conf)); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: %s: %v %v", name, conf, fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/man/man8", name+".8.gz")); err != nil {
		t.Errorf("%s: no man page: %v", name, err)
	}
	cf, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if strings.TrimSpace(string(cf)) != conf {
		t.Errorf("%s: conffiles = %q, want %s", name, cf, conf)
	}
	pi, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
	if !strings.Contains(string(pi), "adduser --quiet --system") || !strings.Contains(string(pi), "CONFIG_FILE="+conf) {
		t.Errorf("%s: postinst:\n%s", name, pi)
	}
	ctrl, _ := os.ReadFile(filepath.Join(ctl, "control"))
	if !strings.Contains(string(ctrl), "Package: "+name+"\n") || !strings.Contains(string(ctrl), "Depends: adduser") {
		t.Errorf("%s: control:\n%s", name, ctrl)
	}
}
