package cli

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// countingBackend counts keyring reads.
type countingBackend struct {
	keystore.Backend
	reads atomic.Int32
}

func (b *countingBackend) Get(svc, user string) (string, error) {
	b.reads.Add(1)
	return b.Backend.Get(svc, user)
}

// TestMissingBundleHint: a certificate that is not where it was looked for is reported with
// where it is (the state file's tenant, the default service, the fake's service), or with
// where else was looked; never with more than two extra keyring reads.
func TestMissingBundleHint(t *testing.T) {
	const (
		stateTenant = "11111111-1111-4111-8111-111111111111"
		typoTenant  = "11111111-1111-4111-8111-111111111112"
		custom      = "entraclaw-team-cert"
	)
	bundle, err := certs.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := state.Parse([]byte(`{"TENANT_ID": "` + stateTenant + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		held        keystore.Place // where the keyring holds a bundle
		service     string         // asked for
		tenant      string         // asked for
		want        string
		wantProbes  int32
		wantMigrate bool
	}{
		{"tenant override", keystore.Place{Service: custom, Tenant: stateTenant}, custom, typoTenant,
			"this keyring holds one for tenant " + stateTenant + " (TENANT_ID in /repo/.entraclaw-state.json): check -tenant-id / ENTRACLAW_TENANT_ID, which asked for " + typoTenant, 1, false},
		{"leftover service", keystore.Place{Service: keystore.DefaultService, Tenant: stateTenant}, custom, stateTenant,
			"the default service entraclaw-provisioner-cert holds one for tenant " + stateTenant + ": -keyring-service / ENTRACLAW_KEYRING_SERVICE asked for " + custom, 1, false},
		{"forgotten env", keystore.Place{Service: FakeKeyringService, Tenant: stateTenant}, keystore.DefaultService, stateTenant,
			"service entraclaw-fake-cert (the fake's) holds one for tenant " + stateTenant + ": did you forget `. DIR/env`", 1, false},
		{"nowhere", keystore.Place{Service: "elsewhere-cert", Tenant: stateTenant}, custom, typoTenant,
			"none under service " + custom + ", tenant " + stateTenant + " or service entraclaw-provisioner-cert, tenant " + typoTenant + " either: run `entraclaw-migrate`", 2, true},
		{"nowhere, default service", keystore.Place{Service: "elsewhere-cert", Tenant: stateTenant}, keystore.DefaultService, stateTenant,
			"none under service entraclaw-fake-cert, tenant " + stateTenant + " either: run `entraclaw-migrate`", 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := keystore.NewMemoryBackend()
			if err := keystore.New(tc.held.Service, keystore.WithBackend(mem)).PutBundle(tc.held.Tenant, bundle.PEM()); err != nil {
				t.Fatal(err)
			}
			backend := &countingBackend{Backend: mem}
			e := &Env{
				Common:    &Common{KeyringService: tc.service},
				StatePath: "/repo/.entraclaw-state.json",
				State:     doc,
				Tenant:    tc.tenant,
				Store:     keystore.New(tc.service, keystore.WithBackend(backend), keystore.WithOS("linux")),
			}
			_, err := e.LoadBundle(time.Now())
			code, msg, hint := Classify(err)
			if code != ExitNotSetUp || !strings.Contains(msg, `service="`+tc.service+`", account=`+tc.tenant) {
				t.Errorf("exit %d, message %q: want 3, naming what was looked up", code, msg)
			}
			if !strings.Contains(hint, tc.want) || strings.ContainsAny(hint, "\r\n") {
				t.Errorf("hint %q\nwant one line containing %q", hint, tc.want)
			}
			if strings.Contains(hint, "entraclaw-migrate") != tc.wantMigrate {
				t.Errorf("hint %q: suggests entraclaw-migrate = %v, want %v", hint, !tc.wantMigrate, tc.wantMigrate)
			}
			if probes := backend.reads.Load() - 1; probes != tc.wantProbes {
				t.Errorf("%d keyring reads after the first, want %d", probes, tc.wantProbes)
			}
		})
	}
}
