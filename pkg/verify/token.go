package verify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// RequiredRoles is RoleRule(sp, nil).Required: the base roles plus every Agent ID role
// Graph publishes enabled and for applications. A nil sp gives the base roles.
func RequiredRoles(sp *entra.ServicePrincipal) []string { return RoleRule(sp, nil).Required }

// Roles is what the token check expects of the provisioner's roles.
type Roles struct {
	// Required must all be in the token: sorted, without duplicates.
	Required []string
	// Undeclared are Agent ID roles Graph publishes (enabled, for applications) that the
	// app does not declare: Microsoft keeps adding them, so they are a warning, not a
	// failure. Sorted.
	Undeclared []string
}

// RoleRule decides which Graph app roles the provisioner must hold (issue 9 item 4):
//
//   - the base roles (entra.BaseProvisionerRoles), always;
//   - every Agent ID role (entra.IsAgentIDRole) the app declares in requiredResourceAccess
//     for Microsoft Graph — declaring a role is asking for it, so a declared role that is
//     not in the token means consent is missing or has not propagated;
//   - roles Graph marks disabled (isEnabled false) or not allowed for applications
//     (allowedMemberTypes without "Application") are never required.
//
// Agent ID roles Graph publishes that the app does not declare are Undeclared: the
// operator is warned and told the admin command that adds and consents them. With app nil
// (not readable) every published Agent ID role is required, as before.
func RoleRule(sp *entra.ServicePrincipal, app *entra.Application) Roles {
	required := slices.Clone(entra.BaseProvisionerRoles)
	var undeclared []string
	declared := map[string]bool{}
	if app != nil {
		for _, rra := range app.RequiredResourceAccess {
			if !strings.EqualFold(rra.ResourceAppID, entra.GraphAppID) {
				continue
			}
			for _, ra := range rra.ResourceAccess {
				if strings.EqualFold(ra.Type, entra.ResourceAccessRole) {
					declared[strings.ToLower(ra.ID)] = true
				}
			}
		}
	}
	roles, _ := entra.ProvisionerRoles(sp) // base roles Graph does not publish stay required
	for _, r := range roles {
		switch {
		case slices.Contains(entra.BaseProvisionerRoles, r.Value):
		case app == nil || declared[strings.ToLower(r.ID)]:
			required = append(required, r.Value)
		default:
			undeclared = append(undeclared, r.Value)
		}
	}
	slices.Sort(required)
	slices.Sort(undeclared)
	return Roles{Required: slices.Compact(required), Undeclared: slices.Compact(undeclared)}
}

// undeclaredRolesWarning names new Graph permissions and the command that adds them.
func undeclaredRolesWarning(values []string) string {
	return fmt.Sprintf("Microsoft Graph publishes %d Agent ID application permission(s) the provisioner app does not declare: %s; "+
		"they are not required, and an administrator (Privileged Role Administrator or Global Administrator) adds and consents them with `entraclaw-migrate -operator-auth azcli`",
		len(values), strings.Join(values, ", "))
}

// Expectations are what a provisioner token must carry.
type Expectations struct {
	// GraphEndpoint is the cloud's Graph resource, e.g. https://graph.microsoft.com; the
	// aud claim may be it, it with a trailing slash, or Graph's appId.
	GraphEndpoint string
	Tenant        string
	Client        string
	// Roles are the required role values; nil skips the roles check.
	Roles []string
	// Now is the time exp is compared with; zero means time.Now().
	Now time.Time
}

// CheckToken checks a raw access token against expect and returns the "token" result.
// The detail never contains the token.
func CheckToken(raw string, expect Expectations) Result {
	d, err := entra.DecodeJWT(raw)
	if err != nil {
		return fail(NameToken, err.Error())
	}
	return checkClaims(d, expect)
}

// checkClaims compares the decoded claims with expect; Detail lists every mismatch.
func checkClaims(d *entra.Decoded, expect Expectations) Result {
	now := expect.Now
	if now.IsZero() {
		now = time.Now()
	}
	var problems []string

	aud, err := d.Audience()
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case len(aud) == 0:
		problems = append(problems, "no aud claim")
	case !slices.ContainsFunc(aud, func(a string) bool { return isGraphAudience(a, expect.GraphEndpoint) }):
		problems = append(problems, fmt.Sprintf("aud is %s, want %s", strings.Join(aud, ","), expect.GraphEndpoint))
	}
	if got := d.AppID(); !strings.EqualFold(got, expect.Client) {
		problems = append(problems, fmt.Sprintf("appid is %s, want %s", orNone(got), expect.Client))
	}
	// tid is always a GUID; a tenant given as a domain name cannot be compared with it.
	tenantIsGUID := entra.ValidateClientID(expect.Tenant) == nil
	if got := d.TenantID(); tenantIsGUID && !strings.EqualFold(got, expect.Tenant) || got == "" {
		problems = append(problems, fmt.Sprintf("tid is %s, want %s", orNone(got), expect.Tenant))
	}
	if got := d.AppIDACR(); got != "2" {
		problems = append(problems, fmt.Sprintf("appidacr is %s, want 2 (certificate)", describeACR(got)))
	}
	exp, hasExp, err := d.ExpiresAt()
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case !hasExp:
		problems = append(problems, "no exp claim")
	case !exp.After(now):
		problems = append(problems, "expired at "+exp.UTC().Format(time.RFC3339))
	}
	roles := d.Roles()
	if expect.Roles != nil {
		var missing []string
		for _, want := range expect.Roles {
			if !slices.Contains(roles, want) {
				missing = append(missing, want)
			}
		}
		switch {
		case roles == nil:
			problems = append(problems, fmt.Sprintf("no roles claim: none of the %d required application permissions is granted (or consent has not propagated yet)", len(expect.Roles)))
		case len(missing) > 0:
			problems = append(problems, fmt.Sprintf("missing %d of %d required roles: %s", len(missing), len(expect.Roles), strings.Join(missing, ", ")))
		}
	}
	if len(problems) > 0 {
		return fail(NameToken, strings.Join(problems, "; "))
	}
	detail := fmt.Sprintf("aud %s, appid and tid match, appidacr 2 (certificate), %d roles", strings.Join(aud, ","), len(roles))
	if expect.Roles != nil {
		detail = fmt.Sprintf("aud %s, appid and tid match, appidacr 2 (certificate), all %d required roles", strings.Join(aud, ","), len(expect.Roles))
	}
	return pass(NameToken, detail+", expires "+exp.UTC().Format(time.RFC3339))
}

// isGraphAudience reports whether aud names Graph: its endpoint (with or without a
// trailing slash) or its appId.
func isGraphAudience(aud, graphEndpoint string) bool {
	if strings.EqualFold(aud, entra.GraphAppID) {
		return true
	}
	return graphEndpoint != "" && strings.EqualFold(strings.TrimRight(aud, "/"), strings.TrimRight(graphEndpoint, "/"))
}

func describeACR(acr string) string {
	switch acr {
	case "0":
		return "0 (public client)"
	case "1":
		return "1 (client secret)"
	case "2":
		return "2 (certificate)"
	}
	return orNone(acr)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
