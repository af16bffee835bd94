package entratest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
)

// The contract test (issue 22): testdata/contract/*.json state the real shape of every
// answer the client depends on, each with its public source; the fake must give that
// shape. See testdata/contract/README.md.

var updateContractDoc = flag.Bool("update-contract-doc", false, "rewrite the contract table of docs/fake-fidelity.md from testdata/contract")

// contractFixture is one answer's real shape.
type contractFixture struct {
	Name     string         `json:"name"`
	Answer   string         `json:"answer"`
	Route    string         `json:"route"`
	Source   string         `json:"source"`
	Modelled string         `json:"modelled"`
	Decision string         `json:"decision"`
	Knob     string         `json:"knob"`
	Default  string         `json:"default"`
	Expect   contractExpect `json:"expect"`
}

// contractExpect is what the answer must hold; every field is optional but status.
type contractExpect struct {
	Status          int                  `json:"status"`
	Headers         []string             `json:"headers"`
	AbsentHeaders   []string             `json:"absentHeaders"`
	HeaderValues    map[string]string    `json:"headerValues"`
	ContainsHeaders map[string]string    `json:"containsHeaders"`
	Fields          map[string]string    `json:"fields"`
	Values          map[string]any       `json:"values"`
	Prefixes        map[string]string    `json:"prefixes"`
	Contains        map[string]string    `json:"contains"`
	Between         map[string][]float64 `json:"between"`
	Text            string               `json:"text"`
	Empty           bool                 `json:"empty"`
	// TraceIsRequestID: the error's trace_id is the x-ms-request-id header (recordings).
	TraceIsRequestID bool `json:"traceIsRequestID"`
}

var contractModelled = []string{"recorded", "documented", "reported", "unverified", "decided"}

func loadContract(t *testing.T) []contractFixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "contract", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no contract fixtures: %v", err)
	}
	var all []contractFixture
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var list []contractFixture
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&list); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, list...)
	}
	return all
}

func TestContract(t *testing.T) {
	fixtures := loadContract(t)
	seen := map[string]bool{}
	for _, fx := range fixtures {
		if seen[fx.Name] {
			t.Errorf("fixture %s is stated twice", fx.Name)
		}
		seen[fx.Name] = true
		if fx.Source == "" || !slices.Contains(contractModelled, fx.Modelled) || fx.Expect.Status == 0 {
			t.Errorf("fixture %s: needs a source, modelled one of %v, and a status", fx.Name, contractModelled)
		}
		drive, ok := contractDrivers[fx.Name]
		if !ok {
			t.Errorf("fixture %s has no driver in contractDrivers", fx.Name)
			continue
		}
		t.Run(fx.Name, func(t *testing.T) { checkContract(t, fx.Expect, drive(t)) })
	}
	for name := range contractDrivers {
		if !seen[name] {
			t.Errorf("driver %s has no fixture", name)
		}
	}
}

// checkContract compares an answer with the stated shape, point by point.
func checkContract(t *testing.T, want contractExpect, r response) {
	t.Helper()
	if r.status != want.Status {
		t.Fatalf("status %d, want %d; body %s", r.status, want.Status, r.body)
	}
	for _, h := range want.Headers {
		if r.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	for _, h := range want.AbsentHeaders {
		if v := r.header.Get(h); v != "" {
			t.Errorf("header %s: %q; the real service sends none", h, v)
		}
	}
	for h, v := range want.HeaderValues {
		if got := r.header.Get(h); got != v {
			t.Errorf("header %s = %q, want %q", h, got, v)
		}
	}
	for h, v := range want.ContainsHeaders {
		if got := r.header.Get(h); !strings.Contains(got, v) {
			t.Errorf("header %s = %q, want it to contain %q", h, got, v)
		}
	}
	switch {
	case want.Empty:
		if len(r.body) != 0 {
			t.Errorf("body %q, want none", r.body)
		}
		return
	case want.Text != "":
		if string(r.body) != want.Text {
			t.Errorf("body %q, want %q", r.body, want.Text)
		}
		return
	}
	checkContractBody(t, want, r)
}

func checkContractBody(t *testing.T, want contractExpect, r response) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	for name, typ := range want.Fields {
		v, ok := lookupPath(body, name)
		if !ok {
			t.Errorf("no field %s in %s", name, r.body)
		} else if got := jsonType(v); got != typ {
			t.Errorf("field %s is %s, want %s", name, got, typ)
		}
	}
	for name, v := range want.Values {
		got, _ := lookupPath(body, name)
		if fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	for name, p := range want.Prefixes {
		if got, _ := lookupPath(body, name); !strings.HasPrefix(fmt.Sprint(got), p) {
			t.Errorf("%s = %q, want it to start %q", name, got, p)
		}
	}
	for name, p := range want.Contains {
		if got, _ := lookupPath(body, name); !strings.Contains(fmt.Sprint(got), p) {
			t.Errorf("%s = %q, want it to contain %q", name, got, p)
		}
	}
	for name, rng := range want.Between {
		got, _ := lookupPath(body, name)
		if n, ok := got.(float64); !ok || len(rng) != 2 || n < rng[0] || n > rng[1] {
			t.Errorf("%s = %v, want within %v", name, got, rng)
		}
	}
	if want.TraceIsRequestID && body["trace_id"] != r.header.Get("x-ms-request-id") {
		t.Errorf("trace_id %v is not the x-ms-request-id %q", body["trace_id"], r.header.Get("x-ms-request-id"))
	}
}

// lookupPath reads a dotted path ("error.innerError.request-id") of a JSON object.
func lookupPath(body map[string]any, path string) (any, bool) {
	if v, ok := body[path]; ok { // names such as "@odata.context" hold a dot
		return v, true
	}
	head, rest, more := strings.Cut(path, ".")
	v, ok := body[head]
	if !ok || !more {
		return v, ok
	}
	sub, isObj := v.(map[string]any)
	if !isObj {
		return nil, false
	}
	return lookupPath(sub, rest)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	default:
		return "object"
	}
}

// ---- drivers: each brings the fake to one fixture's answer --------------------------------

type contractDriver func(t *testing.T) response

var contractDrivers = map[string]contractDriver{
	"openid-configuration": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return call(t, srv, "GET", "/"+sc.TenantID+"/v2.0/.well-known/openid-configuration", "", nil)
	},
	"token-certificate": func(t *testing.T) response { return contractCertToken(t, "") },
	"token-cae": func(t *testing.T) response {
		return contractCertToken(t, `{"access_token":{"xms_cc":{"values":["CP1"]}}}`)
	},
	"token-secret": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return postForm(t, srv, sc.TenantID, secretForm(sc.ClientID, sc.ClientSecret))
	},
	"token-bad-secret": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return postForm(t, srv, sc.TenantID, secretForm(sc.ClientID, sc.ClientSecret+"x"))
	},
	"token-key-not-found": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioMigrated)
		return postForm(t, srv, sc.TenantID, assertionForm(sc.ClientID, contractAssertion(t, srv, sc, generateBundle(t), time.Now())))
	},
	"token-assertion-expired": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioMigrated)
		return postForm(t, srv, sc.TenantID, assertionForm(sc.ClientID, contractAssertion(t, srv, sc, sc.Bundle, time.Now().Add(-time.Hour))))
	},
	"token-unknown-app": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return postForm(t, srv, sc.TenantID, secretForm(newGUID(), "whatever"))
	},
	"token-unknown-tenant": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return postForm(t, srv, newGUID(), secretForm(sc.ClientID, sc.ClientSecret))
	},
	"token-bad-scope": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		form := secretForm(sc.ClientID, sc.ClientSecret)
		form.Set("scope", "https://graph.microsoft.com/User.Read")
		return postForm(t, srv, sc.TenantID, form)
	},
	"token-loop": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy, WithTokenLoopLimit(1, time.Minute))
		postForm(t, srv, sc.TenantID, secretForm(sc.ClientID, sc.ClientSecret))
		return postForm(t, srv, sc.TenantID, secretForm(sc.ClientID, sc.ClientSecret))
	},
	"token-throttled": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		srv.ThrottleTokens(1, 0)
		return postForm(t, srv, sc.TenantID, secretForm(sc.ClientID, sc.ClientSecret))
	},
	"token-sp-disabled": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		if err := srv.SetServicePrincipalEnabled(sc.TenantID, sc.ClientID, false); err != nil {
			t.Fatal(err)
		}
		return postForm(t, srv, sc.TenantID, secretForm(sc.ClientID, sc.ClientSecret))
	},
	"devicecode-start": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		return contractPost(t, srv, "/"+sc.TenantID+"/oauth2/v2.0/devicecode",
			url.Values{"client_id": {azureCLIAppID}, "scope": {"https://graph.microsoft.com/.default openid offline_access profile"}})
	},
	"devicecode-pending": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioLegacy)
		start := contractPost(t, srv, "/"+sc.TenantID+"/oauth2/v2.0/devicecode",
			url.Values{"client_id": {azureCLIAppID}, "scope": {"https://graph.microsoft.com/.default"}})
		code, _ := start.json(t)["device_code"].(string)
		return postForm(t, srv, sc.TenantID, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id": {azureCLIAppID}, "device_code": {code}})
	},
	"token-federated-no-match": func(t *testing.T) response {
		srv, sc := contractServer(t, ScenarioMigrated)
		tok, err := fetchGitHubToken(t.Context(), srv)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddFIC(sc.TenantID, sc.ClientID, "other", GitHubIssuer, "repo:other/repo:ref:refs/heads/main", FederationAudience); err != nil {
			t.Fatal(err)
		}
		return postForm(t, srv, sc.TenantID, assertionForm(sc.ClientID, tok))
	},
}

func init() {
	for name, d := range graphContractDrivers {
		contractDrivers[name] = d
	}
}

// contractServer is a fresh fake seeded with scenario.
func contractServer(t *testing.T, scenario string, opts ...Option) (*Server, *Scenario) {
	t.Helper()
	srv := newServer(t, opts...)
	return srv, seed(t, srv, scenario)
}

func secretForm(clientID, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {"https://graph.microsoft.com/.default"}}
}

// contractAssertion is MSAL's client assertion (PS256, x5t#S256) signed by b, issued at iat.
func contractAssertion(t *testing.T, srv *Server, sc *Scenario, b *certs.Bundle, iat time.Time) string {
	t.Helper()
	sum := sha256.Sum256(b.Cert.Raw)
	header := map[string]any{"x5t#S256": base64.StdEncoding.EncodeToString(sum[:])}
	claims := jwt.MapClaims{"aud": srv.tokenEndpoint(sc.TenantID), "iss": sc.ClientID, "sub": sc.ClientID, "jti": newGUID(),
		"nbf": iat.Unix(), "exp": iat.Add(10 * time.Minute).Unix()}
	return assertion(t, b.Key, jwt.SigningMethodPS256, header, claims)
}

// contractCertToken asks for a token with the migrated app's certificate and claims.
func contractCertToken(t *testing.T, claims string) response {
	srv, sc := contractServer(t, ScenarioMigrated)
	form := assertionForm(sc.ClientID, contractAssertion(t, srv, sc, sc.Bundle, time.Now()))
	if claims != "" {
		form.Set("claims", claims)
	}
	return postForm(t, srv, sc.TenantID, form)
}

// contractPost posts a form to path.
func contractPost(t *testing.T, srv *Server, path string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doContract(t, srv, req)
}

func doContract(t *testing.T, srv *Server, req *http.Request) response {
	t.Helper()
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// ---- docs/fake-fidelity.md is generated from the fixtures ---------------------------------

const (
	contractDocPath  = "../../docs/fake-fidelity.md"
	contractDocBegin = "<!-- contract:begin: generated from pkg/entratest/testdata/contract by TestContractDoc; do not edit -->"
	contractDocEnd   = "<!-- contract:end -->"
)

// contractTable is the markdown table of the fixtures.
func contractTable(fixtures []contractFixture) string {
	var b strings.Builder
	b.WriteString("| Answer | Route | HTTP | Modelled | Knob (default) | Source |\n|---|---|---|---|---|---|\n")
	for _, fx := range fixtures {
		knob := "always"
		if fx.Knob != "" {
			knob = "`" + fx.Knob + "` (" + fx.Default + ")"
		}
		modelled := fx.Modelled
		if fx.Decision != "" {
			modelled += ": " + fx.Decision
		}
		fmt.Fprintf(&b, "| %s | `%s` | %d | %s | %s | %s |\n", mdCell(fx.Answer), fx.Route, fx.Expect.Status,
			mdCell(modelled), knob, mdCell(fx.Source))
	}
	return b.String()
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// TestContractDoc: the contract table of docs/fake-fidelity.md is the one the fixtures
// give, so the doc cannot drift from what the test checks.
func TestContractDoc(t *testing.T) {
	data, err := os.ReadFile(contractDocPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	head, rest, ok1 := strings.Cut(doc, contractDocBegin)
	_, tail, ok2 := strings.Cut(rest, contractDocEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s has no %q … %q section", contractDocPath, contractDocBegin, contractDocEnd)
	}
	want := head + contractDocBegin + "\n" + contractTable(loadContract(t)) + contractDocEnd + tail
	if want == doc {
		return
	}
	if *updateContractDoc {
		if err := os.WriteFile(contractDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the contract table of %s differs from testdata/contract: run go test ./pkg/entratest -run TestContractDoc -update-contract-doc", contractDocPath)
}
