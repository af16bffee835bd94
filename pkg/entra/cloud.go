package entra

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// ErrInvalidArgument marks errors caused by a bad flag or argument value
// (an unknown cloud, a malformed tenant or client id, an unknown operator
// credential kind). Callers map errors.Is(err, ErrInvalidArgument) to a usage
// error.
var ErrInvalidArgument = errors.New("invalid argument")

// argumentError is an ErrInvalidArgument with its own one-line message.
type argumentError struct{ msg string }

func (e *argumentError) Error() string        { return e.msg }
func (e *argumentError) Is(target error) bool { return target == ErrInvalidArgument }

func invalidArgument(format string, args ...any) error {
	return &argumentError{msg: fmt.Sprintf(format, args...)}
}

// Cloud names where tokens come from and where Graph lives.
type Cloud struct {
	// Name is the named cloud the endpoints start from: public, usgov or china.
	Name string
	// AuthorityHost is an absolute https URL ending in "/", e.g. https://login.microsoftonline.com/.
	AuthorityHost string
	// GraphEndpoint is an absolute https URL without a trailing slash, e.g. https://graph.microsoft.com.
	GraphEndpoint string
	// Custom is true when either endpoint was overridden. (Instance discovery is off on
	// every cloud, custom or not.)
	Custom bool
	// Transport, when set (WithCAFile), sends the requests of the credentials and Graph
	// clients built for this cloud; a Transport in their options wins.
	Transport policy.Transporter
	// RetryDelay, when set, is the base of azcore's retry backoff (token requests and
	// Graph) for the clients built for this cloud whose options set none. Zero is
	// azcore's default: 800 ms, doubling.
	RetryDelay time.Duration
}

var namedClouds = []Cloud{
	{Name: "public", AuthorityHost: "https://login.microsoftonline.com/", GraphEndpoint: "https://graph.microsoft.com"},
	{Name: "usgov", AuthorityHost: "https://login.microsoftonline.us/", GraphEndpoint: "https://graph.microsoft.us"},
	{Name: "china", AuthorityHost: "https://login.chinacloudapi.cn/", GraphEndpoint: "https://microsoftgraph.chinacloudapi.cn"},
}

// CloudNames lists the names ResolveCloud accepts, in the order they are documented.
func CloudNames() []string {
	names := make([]string, len(namedClouds))
	for i, c := range namedClouds {
		names[i] = c.Name
	}
	return names
}

// ResolveCloud returns the named cloud ("" means public) with the given
// authority host and Graph endpoint overrides applied. Any override makes the
// cloud Custom. Overrides must be absolute https URLs; the authority host is
// normalised to end with "/" and the Graph endpoint to have no trailing slash.
func ResolveCloud(name, authorityHost, graphEndpoint string) (Cloud, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	if key == "" {
		key = "public"
	}
	var c Cloud
	found := false
	for _, nc := range namedClouds {
		if nc.Name == key {
			c, found = nc, true
			break
		}
	}
	if !found {
		return Cloud{}, invalidArgument("unknown cloud %q for -cloud: valid clouds are %s", name, strings.Join(CloudNames(), ", "))
	}
	if authorityHost != "" {
		u, err := parseHTTPSURL("-authority-host", authorityHost)
		if err != nil {
			return Cloud{}, err
		}
		c.AuthorityHost = strings.TrimRight(u, "/") + "/"
		c.Custom = true
	}
	if graphEndpoint != "" {
		u, err := parseHTTPSURL("-graph-endpoint", graphEndpoint)
		if err != nil {
			return Cloud{}, err
		}
		c.GraphEndpoint = strings.TrimRight(u, "/")
		c.Custom = true
	}
	return c, nil
}

// parseHTTPSURL checks that raw is an absolute https URL with a host and no
// query, fragment or user info, and returns it trimmed of spaces.
func parseHTTPSURL(flagName, raw string) (string, error) {
	s := strings.TrimSpace(raw)
	u, err := url.Parse(s)
	if err != nil {
		return "", invalidArgument("%s %q is not a valid URL", flagName, raw)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return "", invalidArgument("%s %q must be an absolute https:// URL", flagName, raw)
	case u.Host == "" || u.Hostname() == "":
		return "", invalidArgument("%s %q has no host", flagName, raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", invalidArgument("%s %q must not carry user info, a query or a fragment", flagName, raw)
	}
	return s, nil
}

// GraphScope is the client-credentials scope for Graph: GraphEndpoint + "/.default".
func (c Cloud) GraphScope() string { return c.GraphEndpoint + "/.default" }

// GraphBaseURL is the root of Graph v1.0: GraphEndpoint + "/v1.0".
func (c Cloud) GraphBaseURL() string { return c.GraphEndpoint + "/v1.0" }

// String describes the cloud for messages, e.g. "public" or
// "public (custom: https://127.0.0.1:4443/, https://127.0.0.1:4443)".
func (c Cloud) String() string {
	if !c.Custom {
		return c.Name
	}
	return fmt.Sprintf("%s (custom: %s, %s)", c.Name, c.AuthorityHost, c.GraphEndpoint)
}

// ClientOptions returns azcore client options that pin the authority host to
// this cloud (so AZURE_AUTHORITY_HOST cannot redirect token requests) and carry
// the transport and retry settings of o. Response bodies are capped at
// MaxTokenResponseBytes.
func (c Cloud) ClientOptions(o CredentialOptions) azcore.ClientOptions {
	retry := o.Retry
	if retry.RetryDelay == 0 {
		retry.RetryDelay = c.RetryDelay
	}
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost},
		Transport: CapResponses(c.transport(o.Transport), MaxTokenResponseBytes),
		Retry:     retry,
	}
}

// transport is t, else the cloud's own transport (nil: azcore's default client).
func (c Cloud) transport(t policy.Transporter) policy.Transporter {
	if t != nil {
		return t
	}
	return c.Transport
}

// ValidateTenantID accepts a tenant GUID or a domain name such as
// contoso.onmicrosoft.com.
func ValidateTenantID(s string) error {
	if s == "" {
		return invalidArgument("tenant id is empty: want a GUID or a domain name such as contoso.onmicrosoft.com")
	}
	if isGUID(s) || isDomainName(s) {
		return nil
	}
	return invalidArgument("invalid tenant id %q: want a GUID or a domain name such as contoso.onmicrosoft.com", clip(s, 80))
}

// ValidateClientID accepts an application (client) id, which is a GUID.
func ValidateClientID(s string) error {
	if s == "" {
		return invalidArgument("client id is empty: want the application (client) id, a GUID")
	}
	if isGUID(s) {
		return nil
	}
	return invalidArgument("invalid client id %q: want the application (client) id, a GUID like 00000000-0000-0000-0000-000000000000", clip(s, 80))
}

// isGUID reports whether s has the 8-4-4-4-12 hexadecimal GUID form.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch i {
		case 8, 13, 18, 23:
			if ch != '-' {
				return false
			}
		default:
			if !isHexDigit(ch) {
				return false
			}
		}
	}
	return true
}

func isHexDigit(ch byte) bool {
	return '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F'
}

// isDomainName reports whether s is a DNS name of at least two labels made of
// letters, digits and inner hyphens, whose top-level label is not all digits
// (so an IP address is not a domain name).
func isDomainName(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			ch := l[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	for i := 0; i < len(tld); i++ {
		if tld[i] < '0' || tld[i] > '9' {
			return true
		}
	}
	return false
}

// clip shortens s to at most n bytes for use in a one-line message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// knownHosts are the Microsoft cloud hosts of the named clouds' authorities and Graph
// endpoints (including US Government DoD Graph).
var knownHosts = map[string]bool{
	"login.microsoftonline.com":       true,
	"login.microsoftonline.us":        true,
	"login.chinacloudapi.cn":          true,
	"graph.microsoft.com":             true,
	"graph.microsoft.us":              true,
	"dod-graph.microsoft.us":          true,
	"microsoftgraph.chinacloudapi.cn": true,
}

// IsKnownHost reports whether the URL raw points at a known Microsoft cloud host on the
// default https port.
func IsKnownHost(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if p := u.Port(); p != "" && p != "443" {
		return false
	}
	return knownHosts[strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))]
}

// UnknownHosts returns the host[:port] of the authority host and of the Graph endpoint
// when they are not known Microsoft cloud hosts ("" for each that is known).
func (c Cloud) UnknownHosts() (authority, graph string) {
	host := func(raw string) string {
		if IsKnownHost(raw) {
			return ""
		}
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			return u.Host
		}
		return raw
	}
	return host(c.AuthorityHost), host(c.GraphEndpoint)
}
