package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// NameFederated is the check that the app's federated identity credentials are exactly
// the ones entraclaw-migrate -federate recorded: a FIC added behind the tool's back lets
// some external identity sign in as the provisioner, as a client secret would.
const NameFederated = "federated-credentials"

// DefaultChecks are the checks Run performs when none are selected: the runbook's four,
// and federated-credentials when the state file records federated credentials. With a
// federated credential (a CI job: no keyring, perhaps no state file) the checks are
// no-passwords, federated-credentials and token.
func DefaultChecks(doc *state.Doc, federated bool) []string {
	if federated {
		return []string{NameNoPasswords, NameFederated, NameToken}
	}
	if len(recordedFICs(doc)) > 0 {
		return []string{NameSecretPurged, NameNoPasswords, NameFederated, NameKeyringCert, NameToken}
	}
	return []string{NameSecretPurged, NameNoPasswords, NameKeyringCert, NameToken}
}

// recordedFICs are the FIC names PROVISIONER_FEDERATED_CREDENTIALS records.
func recordedFICs(doc *state.Doc) []string { return doc.FederatedCredentials() }

// federatedCredentials: the app's FICs are the recorded ones, no more, no fewer.
func (r *run) federatedCredentials(ctx context.Context) Result {
	fics, err := r.federatedIdentityCredentials(ctx)
	switch {
	case r.notYet(err) != "":
		return notYetChecked(NameFederated, "not yet checked ("+r.notYet(err)+")")
	case entra.IsNotFound(err):
		return fail(NameFederated, r.appMissing())
	case err != nil:
		return couldNotRun(NameFederated, "could not read the app's federated credentials: "+describe(err))
	}
	recorded := recordedFICs(r.doc)
	var unknown, missing []string
	for _, f := range fics {
		if !slices.Contains(recorded, f.Name) {
			unknown = append(unknown, describeFIC(f))
		}
	}
	for _, name := range recorded {
		if !slices.ContainsFunc(fics, func(f entra.FederatedIdentityCredential) bool { return f.Name == name }) {
			missing = append(missing, name)
		}
	}
	var problems []string
	if len(unknown) > 0 {
		problems = append(problems, fmt.Sprintf("%d federated credential(s) not added by entraclaw: %s; remove them (`entraclaw-migrate -unfederate NAME`) unless you know them", len(unknown), strings.Join(unknown, ", ")))
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("recorded federated credential(s) missing from the app: %s; `entraclaw-migrate -federate …` puts them back", strings.Join(missing, ", ")))
	}
	if len(problems) > 0 {
		return fail(NameFederated, strings.Join(problems, "; "))
	}
	names := make([]string, len(fics))
	for i, f := range fics {
		names[i] = describeFIC(f)
	}
	if len(names) == 0 {
		return pass(NameFederated, "the app has no federated credentials")
	}
	return pass(NameFederated, fmt.Sprintf("the app's %d federated credential(s) are the recorded ones: %s", len(names), strings.Join(names, ", ")))
}

// unrecordedFICs is no-passwords' part of the rule when federated-credentials does not
// run (nothing recorded): any FIC on the app is one entraclaw did not add.
func (r *run) unrecordedFICs(ctx context.Context) (string, error) {
	fics, err := r.federatedIdentityCredentials(ctx)
	if err != nil || len(fics) == 0 {
		return "", err
	}
	found := make([]string, len(fics))
	for i, f := range fics {
		found[i] = describeFIC(f)
	}
	return fmt.Sprintf("%d federated credential(s) that entraclaw did not add: %s (each lets an external identity sign in as the provisioner); remove them unless you know them", len(fics), strings.Join(found, ", ")), nil
}

func describeFIC(f entra.FederatedIdentityCredential) string {
	return fmt.Sprintf("%s (issuer %s, subject %s)", f.Name, f.Issuer, f.Subject)
}

// federatedIdentityCredentials lists the app's FICs once.
func (r *run) federatedIdentityCredentials(ctx context.Context) ([]entra.FederatedIdentityCredential, error) {
	if !r.ficsRead {
		r.readGraph(ctx, !r.appRead, r.readsTogether && !r.graphSPRead)
	}
	return r.fics, r.ficsErr
}
