package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/state"
)

// Workload identity federation lets a CI job or a pod get the provisioner's token with
// its own OIDC token: no secret, no certificate. `-federate SPEC` puts a federated
// identity credential (FIC) on the app for it, `-unfederate NAME` takes one off. The
// provisioner holds 25 application roles, so what may present itself as the app is kept
// narrow: no pull_request subjects (anyone who can open a pull request would get the
// roles), no subject patterns unless -allow-subject-pattern, an https issuer without a
// trailing slash (matching is exact), and at most Graph's 20 FICs per app.

// GitHubIssuer is the issuer of GitHub Actions' OIDC tokens.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// maxFICs is Graph's limit of federated identity credentials per application.
const maxFICs = 20

// maxFICNameLength is Graph's limit on a FIC's name.
const maxFICNameLength = 120

// Federation is one FIC this run should put on the app.
type Federation struct {
	Spec string // what the operator typed, for messages
	entra.FederatedIdentityCredential
}

// ParseFederation turns a -federate SPEC into the FIC it stands for:
//
//	github:ORG/REPO:environment:NAME      subject repo:ORG/REPO:environment:NAME
//	github:ORG/REPO:ref:refs/heads/BRANCH subject repo:ORG/REPO:ref:refs/heads/BRANCH
//	github:ORG/REPO:ref:refs/tags/TAG     subject repo:ORG/REPO:ref:refs/tags/TAG
//	k8s:ISSUER:NAMESPACE:SERVICEACCOUNT   subject system:serviceaccount:NAMESPACE:SERVICEACCOUNT
//
// The name is deterministic (a re-run finds it), the audience api://AzureADTokenExchange.
func ParseFederation(spec string, allowPattern bool) (*Federation, error) {
	kind, rest, ok := strings.Cut(spec, ":")
	var issuer, subject string
	switch {
	case ok && kind == "github":
		repo, ctx, ok := strings.Cut(rest, ":")
		if !ok || !regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`).MatchString(repo) {
			return nil, fmt.Errorf("-federate %s: want github:ORG/REPO:environment:NAME or github:ORG/REPO:ref:refs/heads/BRANCH (or refs/tags/TAG)", spec)
		}
		switch {
		case ctx == "pull_request":
			return nil, fmt.Errorf("-federate %s: refused: a pull_request subject lets anyone who can open a pull request get the provisioner's 25 roles; federate an environment or a protected branch", spec)
		case strings.HasPrefix(ctx, "environment:") && len(ctx) > len("environment:"),
			strings.HasPrefix(ctx, "ref:refs/heads/") && len(ctx) > len("ref:refs/heads/"),
			strings.HasPrefix(ctx, "ref:refs/tags/") && len(ctx) > len("ref:refs/tags/"):
		default:
			return nil, fmt.Errorf("-federate %s: the part after the repository must be environment:NAME, ref:refs/heads/BRANCH or ref:refs/tags/TAG", spec)
		}
		issuer, subject = GitHubIssuer, "repo:"+repo+":"+ctx
	case ok && kind == "k8s":
		parts := strings.Split(rest, ":")
		if len(parts) < 3 {
			return nil, fmt.Errorf("-federate %s: want k8s:ISSUER:NAMESPACE:SERVICEACCOUNT", spec)
		}
		ns, sa := parts[len(parts)-2], parts[len(parts)-1]
		issuer, subject = strings.Join(parts[:len(parts)-2], ":"), "system:serviceaccount:"+ns+":"+sa
		if ns == "" || sa == "" {
			return nil, fmt.Errorf("-federate %s: the namespace and the service account must not be empty", spec)
		}
	default:
		return nil, fmt.Errorf("-federate %s: unknown kind: use github:…, k8s:…, or -federate-issuer with -federate-subject", spec)
	}
	return NewFederation(spec, kind, issuer, subject, entra.FederatedAudience, allowPattern)
}

// NewFederation checks a FIC and names it: "entraclaw-<kind>-<subject>", made
// URL-friendly, with a hash of issuer and subject when it would be longer than 120.
func NewFederation(spec, kind, issuer, subject, audience string, allowPattern bool) (*Federation, error) {
	u, err := url.Parse(issuer)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("federated issuer %q must be an https URL", issuer)
	case strings.HasSuffix(issuer, "/") && kind != "k8s":
		// Matching is exact and these issuers name themselves without the slash. A
		// Kubernetes issuer is taken as given: AKS's really ends in "/", and so does the
		// iss of its tokens.
		return nil, fmt.Errorf("federated issuer %q ends in \"/\": Entra ID matches the issuer exactly, and tokens name it without the slash", issuer)
	case subject == "" || len(subject) > 600 || len(issuer) > 600:
		return nil, fmt.Errorf("federated subject must be 1 to 600 characters, and the issuer at most 600")
	case strings.HasSuffix(subject, ":pull_request"):
		return nil, fmt.Errorf("federated subject %q refused: a pull_request subject lets anyone who can open a pull request get the provisioner's roles", subject)
	case strings.ContainsAny(subject, "*?") && !allowPattern:
		return nil, fmt.Errorf("federated subject %q looks like a pattern: refused unless -allow-subject-pattern", subject)
	case audience == "":
		audience = entra.FederatedAudience
	}
	name := "entraclaw-" + kind + "-" + regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(strings.TrimPrefix(subject, "repo:"), "-")
	if len(name) > maxFICNameLength {
		sum := sha256.Sum256([]byte(issuer + "\n" + subject))
		name = name[:maxFICNameLength-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return &Federation{Spec: spec, FederatedIdentityCredential: entra.FederatedIdentityCredential{
		Name: name, Issuer: issuer, Subject: subject, Audiences: []string{audience},
		Description: "added by entraclaw-migrate -federate " + spec,
	}}, nil
}

// ---- the step ----

// ensureFederation puts the -federate FICs on the app and takes the -unfederate ones off,
// then records the names entraclaw manages in the state file. A FIC already there with
// the same issuer, subject and audience is left alone: a re-run writes nothing.
func (m *migration) ensureFederation(ctx context.Context) error {
	if len(m.cfg.Federate) == 0 && len(m.cfg.Unfederate) == 0 {
		return nil
	}
	if m.cfg.OperatorAuth == OperatorProvisioner {
		return &Error{code: exitUsage, hint: "use -operator-auth azcli (an administrator) to change who may sign in as the provisioner",
			msg: "-federate and -unfederate are refused when signed in as the provisioner itself: it must not widen who may act as it"}
	}
	if m.app == nil {
		return m.change("add federated credential(s) to the app once it exists", nil)
	}
	have, err := m.graph.ListFederatedCredentials(ctx, m.app.ID)
	if err != nil {
		return graphFailure(err, hintCreateAdmin, "list the provisioner app's federated credentials")
	}
	byName := map[string]entra.FederatedIdentityCredential{}
	for _, f := range have {
		byName[f.Name] = f
	}
	adding := 0
	for _, f := range m.cfg.Federate {
		if _, ok := byName[f.Name]; !ok {
			adding++
		}
	}
	if len(have)+adding > maxFICs {
		return failf("remove one with -unfederate NAME (or `az ad app federated-credential delete`)",
			"the app holds %d federated credential(s); adding %d would pass Graph's limit of %d; nothing was changed", len(have), adding, maxFICs)
	}
	recorded := m.stateFederations
	managed := slices.Clone(recorded)
	for _, f := range m.cfg.Federate {
		if err := m.putFederation(ctx, f, byName); err != nil {
			return err
		}
		managed = appendUnique(managed, f.Name)
	}
	for _, name := range m.cfg.Unfederate {
		cur, ok := byName[name]
		if ok {
			if err := m.change(fmt.Sprintf("remove federated credential %s (issuer %s, subject %s) from the app", name, cur.Issuer, cur.Subject), func() error {
				if err := m.graph.DeleteFederatedCredential(ctx, m.app.ID, cur.ID); err != nil && !entra.IsNotFound(err) {
					return graphFailure(err, hintCreateAdmin, "remove federated credential %s", name)
				}
				m.say("Removed federated credential %s from the app.", name)
				return nil
			}); err != nil {
				return err
			}
		} else {
			m.say("Federated credential %s is not on the app.", name)
		}
		managed = slices.DeleteFunc(managed, func(n string) bool { return n == name })
	}
	slices.Sort(managed)
	if slices.Equal(managed, recorded) {
		return nil
	}
	return m.change("record the federated credentials in the state file", func() error {
		_, err := m.setState(state.KeyFederatedCredentials, strings.Join(managed, ","))
		return err
	})
}

// putFederation adds f, or updates the FIC of that name when its issuer, subject or
// audience differ; one that equals f is left alone.
func (m *migration) putFederation(ctx context.Context, f *Federation, byName map[string]entra.FederatedIdentityCredential) error {
	cur, ok := byName[f.Name]
	switch {
	case ok && cur.Issuer == f.Issuer && cur.Subject == f.Subject && slices.Equal(cur.Audiences, f.Audiences):
		m.say("Federated credential %s is on the app (issuer %s, subject %s).", f.Name, f.Issuer, f.Subject)
		return nil
	case ok:
		return m.change(fmt.Sprintf("update federated credential %s to issuer %s, subject %s", f.Name, f.Issuer, f.Subject), func() error {
			if err := m.graph.UpdateFederatedCredential(ctx, m.app.ID, cur.ID, f.FederatedIdentityCredential); err != nil {
				return graphFailure(err, hintCreateAdmin, "update federated credential %s", f.Name)
			}
			return nil
		})
	}
	return m.change(fmt.Sprintf("add federated credential %s to the app (issuer %s, subject %s, audience %s)", f.Name, f.Issuer, f.Subject, f.Audience()), func() error {
		if _, err := m.graph.CreateFederatedCredential(ctx, m.app.ID, f.FederatedIdentityCredential); err != nil {
			return graphFailure(err, hintCreateAdmin, "add federated credential %s", f.Name)
		}
		m.say("Added federated credential %s: tokens with issuer %s and subject %s may now sign in as the provisioner (it takes a few minutes to reach the token service).", f.Name, f.Issuer, f.Subject)
		return nil
	})
}
