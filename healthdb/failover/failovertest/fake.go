// Package failovertest is a fake Keystone v3, Octavia API and Nova in one
// httptest server, for tests of the failover drivers, the watcher and the
// compute deleter. It needs no network beyond the loopback.
package failovertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials the fake accepts.
const (
	Username = "octavia"
	Password = "s3cret-service-pw"
	Project  = "service"
	Domain   = "Default"
	Region   = "RegionOne"
)

// Fake is the fake cloud. It accepts every amphora and load balancer
// failover (202) unless told otherwise, and every server delete (204)
// except of ids starting with "gone-" (404).
type Fake struct {
	Server *httptest.Server

	mu        sync.Mutex
	tokens    map[string]bool // issued token -> still valid
	issued    int
	issuedIDs []string
	reject    bool
	failovers map[string]int
	deletes   map[string]int
	order     []string
	respond   func(amphoraID string, call int) int

	lbFailovers map[string]int
	respondLB   func(loadBalancerID string, call int) int

	// hangDeletes makes Nova accept server deletes and never answer, until
	// the request is cancelled or the fake closes (released).
	hangDeletes bool
	released    chan struct{}
}

// New starts a fake cloud, closed when the test ends.
func New(t testing.TB) *Fake {
	f := &Fake{tokens: map[string]bool{}, failovers: map[string]int{}, deletes: map[string]int{},
		lbFailovers: map[string]int{}, released: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/auth/tokens", f.issueToken)
	mux.HandleFunc("PUT /lb/v2.0/octavia/amphorae/{id}/failover", f.failover)
	mux.HandleFunc("PUT /lb/v2.0/lbaas/loadbalancers/{id}/failover", f.failoverLB)
	mux.HandleFunc("GET /lb/", f.versions)
	mux.HandleFunc("DELETE /compute/v2.1/servers/{id}", f.deleteServer)
	f.Server = httptest.NewServer(mux)
	// Close waits for the requests under way: let hung ones go first.
	t.Cleanup(func() {
		f.releaseHung()
		f.Server.Close()
	})
	return f
}

func (f *Fake) releaseHung() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.released:
	default:
		close(f.released)
	}
}

// RespondLoadBalancer sets the HTTP status of each load balancer failover
// call; call counts from 1 per load balancer.
func (f *Fake) RespondLoadBalancer(fn func(loadBalancerID string, call int) int) {
	f.mu.Lock()
	f.respondLB = fn
	f.mu.Unlock()
}

// LoadBalancerFailovers returns the number of load balancer failover
// calls per load balancer (with a valid token).
func (f *Fake) LoadBalancerFailovers() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.lbFailovers))
	for k, v := range f.lbFailovers {
		out[k] = v
	}
	return out
}

// HangDeletes makes Nova take server deletes (they are counted) and never
// answer them: a hung Nova. The requests end when the client gives up or
// the fake closes.
func (f *Fake) HangDeletes(on bool) {
	f.mu.Lock()
	f.hangDeletes = on
	f.mu.Unlock()
}

// AuthURL is the Keystone v3 endpoint.
func (f *Fake) AuthURL() string { return f.Server.URL + "/v3" }

// ServiceAuthSection is an octavia.conf [service_auth] section holding
// the credentials the fake accepts, for tests that write config files.
func (f *Fake) ServiceAuthSection() string {
	return fmt.Sprintf("[service_auth]\nauth_url = %s\nusername = %s\npassword = %s\nproject_name = %s\n"+
		"user_domain_name = %s\nproject_domain_name = %s\nregion_name = %s\n",
		f.AuthURL(), Username, Password, Project, Domain, Domain, Region)
}

// Respond sets the HTTP status of each failover call; call counts from 1
// per amphora. It may block (to hold a request open).
func (f *Fake) Respond(fn func(amphoraID string, call int) int) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

// ExpireTokens invalidates every issued token, as Keystone does when they
// expire: the next request is answered 401.
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	for k := range f.tokens {
		f.tokens[k] = false
	}
	f.mu.Unlock()
}

// RejectAuth makes Keystone refuse every authentication (401) while on,
// as it does for wrong credentials.
func (f *Fake) RejectAuth(on bool) {
	f.mu.Lock()
	f.reject = on
	f.mu.Unlock()
}

// Tokens returns every token issued so far.
func (f *Fake) Tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issuedIDs...)
}

// TokensIssued counts successful authentications.
func (f *Fake) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued
}

// Failovers returns the number of failover calls per amphora (with a valid
// token).
func (f *Fake) Failovers() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.failovers))
	for k, v := range f.failovers {
		out[k] = v
	}
	return out
}

// Deletes returns the number of server deletes per compute id.
func (f *Fake) Deletes() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.deletes))
	for k, v := range f.deletes {
		out[k] = v
	}
	return out
}

func (f *Fake) issueToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Auth struct {
			Identity struct {
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name string `json:"name"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u := req.Auth.Identity.Password.User
	f.mu.Lock()
	reject := f.reject
	f.mu.Unlock()
	if reject || u.Name != Username || u.Password != Password || u.Domain.Name != Domain || req.Auth.Scope.Project.Name != Project {
		http.Error(w, `{"error": {"code": 401, "message": "The request you have made requires authentication."}}`, http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.issued++
	// Long and distinctive, like a real one, so that a test can look for
	// it in logs.
	token := fmt.Sprintf("gAAAAABfake-keystone-token-%04d", f.issued)
	f.tokens[token] = true
	f.issuedIDs = append(f.issuedIDs, token)
	f.mu.Unlock()
	endpoint := func(path string) []map[string]string {
		return []map[string]string{{"id": path, "interface": "public", "region": Region, "region_id": Region, "url": f.Server.URL + path}}
	}
	body := map[string]any{"token": map[string]any{
		"methods":    []string{"password"},
		"expires_at": time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		"user":       map[string]any{"id": "u-1", "name": Username, "domain": map[string]string{"id": "default", "name": Domain}},
		"project":    map[string]any{"id": "p-1", "name": Project, "domain": map[string]string{"id": "default", "name": Domain}},
		"catalog": []map[string]any{
			{"type": "load-balancer", "name": "octavia", "id": "lb", "endpoints": endpoint("/lb")},
			{"type": "compute", "name": "nova", "id": "compute", "endpoints": endpoint("/compute/v2.1")},
		},
	}}
	w.Header().Set("X-Subject-Token", token)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(body)
}

// versions is Octavia's unversioned root, which clients read to find the
// API version the catalog URL serves.
func (f *Fake) versions(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/lb/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"versions": [{"id": "v2.0", "status": "CURRENT", "updated": "2023-01-01T00:00:00Z", "links": [{"href": "%s/lb/v2", "rel": "self"}]}]}`, f.Server.URL)
}

func (f *Fake) authorized(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	ok := f.tokens[r.Header.Get("X-Auth-Token")]
	f.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		http.Error(w, `{"error": {"code": 401, "message": "token expired"}}`, http.StatusUnauthorized)
	}
	return ok
}

func (f *Fake) failover(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	id := r.PathValue("id")
	f.mu.Lock()
	f.failovers[id]++
	call := f.failovers[id]
	f.order = append(f.order, id)
	respond := f.respond
	f.mu.Unlock()
	replyFailover(w, respond, id, call)
}

func (f *Fake) failoverLB(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	id := r.PathValue("id")
	f.mu.Lock()
	f.lbFailovers[id]++
	call := f.lbFailovers[id]
	respond := f.respondLB
	f.mu.Unlock()
	replyFailover(w, respond, id, call)
}

// replyFailover answers a failover request with the status respond picks
// (202 Accepted when it is nil), and Octavia's fault body for an error.
func replyFailover(w http.ResponseWriter, respond func(id string, call int) int, id string, call int) {
	code := http.StatusAccepted
	if respond != nil {
		code = respond(id, call)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code >= 300 {
		fmt.Fprintf(w, `{"faultcode": "Client", "faultstring": %q}`, strings.ToLower(http.StatusText(code)))
	}
}

func (f *Fake) deleteServer(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	id := r.PathValue("id")
	f.mu.Lock()
	f.deletes[id]++
	hang := f.hangDeletes
	f.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-f.released:
		}
		return
	}
	if strings.HasPrefix(id, "gone-") {
		w.Header().Set("Content-Type", "application/json")
		http.Error(w, `{"itemNotFound": {"code": 404, "message": "Instance could not be found."}}`, http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
