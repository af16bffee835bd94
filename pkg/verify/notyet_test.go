package verify

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// Issue 17 §4: while Entra ID does not accept the keyring certificate (AADSTS700027, as
// right after an upload), Graph cannot be read with it. The checks that need Graph are
// "not yet checked", not failed; the token check is the one that fails, and says why.
func TestRunCertNotAcceptedYet(t *testing.T) {
	f := newFixture(t)
	fresh := generate(t, time.Now())
	if err := f.store.PutBundle(f.sc.TenantID, fresh.PEM()); err != nil {
		t.Fatal(err)
	}
	f.editState(t, func(d *state.Doc) { d.Set(state.KeyThumbprint, certs.Thumbprint(fresh.Cert)) })

	rep := f.run(t)
	expectVerdicts(t, rep, NameSecretPurged)
	for _, name := range []string{NameNoPasswords, NameKeyringCert} {
		r := result(t, rep, name)
		if !r.NotChecked || r.CouldNotRun || !strings.Contains(r.Detail, "not yet checked") || !strings.Contains(r.Detail, "(the certificate is not accepted yet: AADSTS700027)") {
			t.Errorf("%s = %+v: want not yet checked, naming AADSTS700027", name, r)
		}
	}
	if r := result(t, rep, NameKeyringCert); !strings.Contains(r.Detail, "thumbprint "+certs.Thumbprint(fresh.Cert)+" matches the state file") {
		t.Errorf("keyring-cert does not say what it did check: %q", r.Detail)
	}
	if r := result(t, rep, NameToken); r.NotChecked || r.CouldNotRun || !strings.Contains(r.Detail, "AADSTS700027") {
		t.Errorf("token = %+v: want the failure being waited for", r)
	}
	if got := rep.NotChecked(); !slices.Equal(got, []string{NameNoPasswords, NameKeyringCert}) {
		t.Errorf("NotChecked() = %v", got)
	}
	// It never gets better: exit 4 for the token, the others named as not checked, and a
	// hint that says to wait first.
	var fe *FailedError
	if err := rep.Err(); !errors.As(err, &fe) || fe.ExitCode() != 4 || !slices.Equal(fe.Failed, []string{NameToken}) ||
		err.Error() != "1 of 4 checks failed: token; not yet checked: no-passwords, keyring-cert" || !strings.Contains(fe.Hint(), "-wait") {
		t.Errorf("Err() = %v (hint %q)", err, fe.Hint())
	}

	// Read by the operator, Graph answers: the app checks run and find the problem.
	cred, err := entra.NewCertificateCredential(f.cfg.Cloud, f.sc.TenantID, f.sc.ClientID, f.sc.Bundle, f.deps.Credential)
	if err != nil {
		t.Fatal(err)
	}
	f.deps.GraphCredential = cred
	rep = f.run(t)
	expectVerdicts(t, rep, NameSecretPurged, NameNoPasswords)
	if r := result(t, rep, NameKeyringCert); r.NotChecked || !strings.Contains(r.Detail, "is not registered on the app") {
		t.Errorf("keyring-cert read by the operator = %+v", r)
	}

	// Only the checks that wait: exit 1, not 4.
	f.deps.GraphCredential = nil
	f.cfg.Checks = []string{NameNoPasswords}
	var nr *NotRunError
	if err := f.run(t).Err(); !errors.As(err, &nr) || !strings.Contains(err.Error(), "not yet checked: no-passwords") {
		t.Errorf("no-passwords alone: Err() = %v", err)
	}
}

// Issue 17 §2: a certificate on the app that bears this machine's name but that no
// keyring item of this machine holds (its key is gone) is named, with the command that
// removes it; a rotation's pending certificate (<tenant>.next) is not a stray.
func TestRunStrayCertificate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cred, err := entra.NewCertificateCredential(f.cfg.Cloud, f.sc.TenantID, f.sc.ClientID, f.sc.Bundle, f.deps.Credential)
	if err != nil {
		t.Fatal(err)
	}
	g, err := entra.NewGraph(f.cfg.Cloud, cred, f.deps.Graph)
	if err != nil {
		t.Fatal(err)
	}
	app, err := g.GetApplicationByAppID(ctx, f.sc.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	stray, next, elsewhere := generate(t, time.Now()), generate(t, time.Now()), generate(t, time.Now())
	keys := append(app.KeyCredentials,
		entra.NewKeyCredential(stray.Cert, entra.MachineKeyName()),
		entra.NewKeyCredential(next.Cert, entra.MachineKeyName()),
		entra.NewKeyCredential(elsewhere.Cert, "CN=entraclaw-provisioner (another-host)"))
	if err := g.SetKeyCredentials(ctx, app.ID, keys); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutBundle(f.sc.TenantID+keystore.NextAccountSuffix, next.PEM()); err != nil {
		t.Fatal(err)
	}

	rep := f.run(t)
	expectVerdicts(t, rep, DefaultChecks(nil, false)...)
	r := result(t, rep, NameKeyringCert)
	if len(r.Strays) != 1 || r.Strays[0].Thumbprint != certs.Thumbprint(stray.Cert) || r.Strays[0].KeyID == "" ||
		!strings.HasPrefix(r.Strays[0].Expires, stray.Cert.NotAfter.UTC().Format(time.DateOnly)) {
		t.Fatalf("strays %+v, want only %s", r.Strays, certs.Thumbprint(stray.Cert))
	}
	if len(r.Warnings) != 1 || len(rep.Warnings) != 1 {
		t.Fatalf("warnings %q", rep.Warnings)
	}
	for _, want := range []string{
		"stray certificate " + certs.Thumbprint(stray.Cert) + " on the app (keyId " + r.Strays[0].KeyID + ", expires " + stray.Cert.NotAfter.UTC().Format(time.DateOnly) + ")",
		entra.MachineKeyName(),
		"`az ad app credential delete --id " + f.sc.ClientID + " --key-id " + r.Strays[0].KeyID + " --cert`",
	} {
		if !strings.Contains(r.Warnings[0], want) {
			t.Errorf("warning lacks %q:\n%s", want, r.Warnings[0])
		}
	}

	// The rotation's pending item gone too: both of this machine's extra certificates are strays.
	if err := f.store.DeleteBundle(f.sc.TenantID + keystore.NextAccountSuffix); err != nil {
		t.Fatal(err)
	}
	if r := result(t, f.run(t), NameKeyringCert); len(r.Strays) != 2 {
		t.Errorf("without <tenant>.next: strays %+v, want 2", r.Strays)
	}
}
