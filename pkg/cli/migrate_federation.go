package cli

import (
	"flag"
	"strings"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// federationFlags are migrate's flags for workload identity federation.
type federationFlags struct {
	federate, unfederate      stringList
	issuer, subject, audience string
	allowPattern              bool
}

func registerFederationFlags(fs *flag.FlagSet) *federationFlags {
	f := &federationFlags{}
	fs.Var(&f.federate, "federate", "put a federated credential on the app so a CI job or pod signs in with its own OIDC token (repeatable): `spec` github:ORG/REPO:environment:NAME, github:ORG/REPO:ref:refs/heads/BRANCH, github:ORG/REPO:ref:refs/tags/TAG or k8s:ISSUER:NAMESPACE:SERVICEACCOUNT (command line only)")
	fs.Var(&f.unfederate, "unfederate", "take the federated credential `name` off the app (repeatable; command line only)")
	fs.StringVar(&f.issuer, "federate-issuer", "", "with -federate-subject: a federated credential for any OIDC `issuer` (https, no trailing slash; command line only)")
	fs.StringVar(&f.subject, "federate-subject", "", "with -federate-issuer: the exact `subject` (command line only)")
	fs.StringVar(&f.audience, "federate-audience", entra.FederatedAudience, "with -federate-issuer: the `audience` (command line only)")
	fs.BoolVar(&f.allowPattern, "allow-subject-pattern", false, "allow a subject with * or ? (command line only)")
	return f
}

// parse checks the federation flags and returns the credentials to add.
func (f *federationFlags) parse(operatorAuth string) ([]*provision.Federation, error) {
	var out []*provision.Federation
	for _, spec := range f.federate {
		fed, err := provision.ParseFederation(spec, f.allowPattern)
		if err != nil {
			return nil, UsageError("%v", err)
		}
		out = append(out, fed)
	}
	switch {
	case f.issuer != "" && f.subject != "":
		fed, err := provision.NewFederation("-federate-issuer "+f.issuer, "oidc", f.issuer, f.subject, f.audience, f.allowPattern)
		if err != nil {
			return nil, UsageError("%v", err)
		}
		out = append(out, fed)
	case f.issuer != "" || f.subject != "":
		return nil, UsageError("-federate-issuer and -federate-subject go together")
	}
	if len(out)+len(f.unfederate) > 0 && operatorAuth == entra.OperatorProvisioner {
		return nil, UsageError("-federate and -unfederate are refused with -operator-auth provisioner: the provisioner must not widen who may sign in as it")
	}
	return out, nil
}
