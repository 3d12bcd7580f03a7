//go:build browser

package browser

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/octavia-vpp/health/internal/testproc"
)

// webDriver is a W3C WebDriver session on a chromedriver this test started:
// plain JSON over HTTP, no client library.
type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:port
	session string
}

// chromiumFlags are the flags the issue asks for, plus a fixed window.
func chromiumFlags(userDataDir string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
		"--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--window-size=1400,1300", "--user-data-dir=" + userDataDir}
}

// startWebDriver starts chromedriver on a free loopback port and opens a
// headless Chromium session; both stop when the test ends.
func startWebDriver(t *testing.T) *webDriver {
	t.Helper()
	driver, err := exec.LookPath("chromedriver")
	if err != nil {
		t.Fatal("chromedriver not found: run test/browser/install-deps.sh (make browser does)")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: run test/browser/install-deps.sh (make browser does)")
	}
	port := testproc.FreePort(t, "tcp")
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	logFile, err := os.Create(t.TempDir() + "/chromedriver.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	wd := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		if err := wd.call("GET", "/status", nil, &status); err == nil && status.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chromedriver did not become ready in 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args":   chromiumFlags(t.TempDir()),
		},
	}}}
	if err := wd.call("POST", "/session", caps, &created); err != nil {
		logs, _ := os.ReadFile(logFile.Name())
		t.Fatalf("new session: %v\nchromedriver log:\n%s", err, logs)
	}
	wd.session = "/session/" + created.SessionID
	t.Cleanup(func() { _ = wd.call("DELETE", wd.session, nil, nil) })
	return wd
}

// call sends one WebDriver command and decodes its "value" into out.
func (wd *webDriver) call(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, wd.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var envelope struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, envelope.Value)
	}
	if out != nil {
		return json.Unmarshal(envelope.Value, out)
	}
	return nil
}

func (wd *webDriver) must(method, path string, body, out any) {
	wd.t.Helper()
	if err := wd.call(method, wd.session+path, body, out); err != nil {
		wd.t.Fatal(err)
	}
}

func (wd *webDriver) navigate(url string) {
	wd.must("POST", "/url", map[string]string{"url": url}, nil)
}

// script runs JavaScript in the page and decodes what it returns.
func (wd *webDriver) script(js string, out any, args ...any) {
	wd.t.Helper()
	if args == nil {
		args = []any{}
	}
	wd.must("POST", "/execute/sync", map[string]any{"script": js, "args": args}, out)
}

// text is the visible text of the first element matching a CSS selector.
func (wd *webDriver) text(selector string) string {
	wd.t.Helper()
	var s string
	wd.script(`const e = document.querySelector(arguments[0]); return e ? e.innerText : "<missing " + arguments[0] + ">";`, &s, selector)
	return s
}

// typeInto sends keystrokes to the first element matching selector.
func (wd *webDriver) typeInto(selector, keys string) {
	wd.t.Helper()
	var el map[string]string
	wd.must("POST", "/element", map[string]string{"using": "css selector", "value": selector}, &el)
	for _, id := range el { // the key is the W3C element identifier
		wd.must("POST", "/element/"+id+"/value", map[string]string{"text": keys}, nil)
	}
}

// screenshot saves the viewport as a PNG.
func (wd *webDriver) screenshot(path string) {
	wd.t.Helper()
	var b64 string
	wd.must("GET", "/screenshot", nil, &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		wd.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		wd.t.Fatal(err)
	}
}

// waitFor polls cond (which may use wd) until it holds.
func (wd *webDriver) waitFor(what string, cond func() bool) {
	wd.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			wd.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
