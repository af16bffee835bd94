package entra

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// FederatedIdentityCredential is a federated identity credential (FIC) on an application:
// Entra ID accepts an external token as the app's client assertion when its iss, sub and
// aud equal one FIC's issuer, subject and (only) audience, exactly.
type FederatedIdentityCredential struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Audiences   []string `json:"audiences"`
	Description string   `json:"description,omitempty"`
}

// Audience is the FIC's one audience ("" when it has none).
func (f FederatedIdentityCredential) Audience() string {
	if len(f.Audiences) == 0 {
		return ""
	}
	return f.Audiences[0]
}

// ListFederatedCredentials returns the application's FICs.
func (g *Graph) ListFederatedCredentials(ctx context.Context, objectID string) ([]FederatedIdentityCredential, error) {
	return list[FederatedIdentityCredential](ctx, g, call{method: http.MethodGet, path: objectPath("applications", objectID, "federatedIdentityCredentials"), lagIDs: []string{objectID}})
}

// CreateFederatedCredential adds a FIC to the application. Not retried after an
// ambiguous failure (a second create of the name would be refused); the caller lists
// the FICs to find out.
func (g *Graph) CreateFederatedCredential(ctx context.Context, objectID string, f FederatedIdentityCredential) (*FederatedIdentityCredential, error) {
	f.ID = ""
	var out FederatedIdentityCredential
	err := g.do(ctx, call{method: http.MethodPost, path: objectPath("applications", objectID, "federatedIdentityCredentials"),
		body: f, out: &out, lagIDs: []string{objectID}, notIdempotent: true})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateFederatedCredential changes the issuer, subject and audience of the FIC with id
// (its name cannot change).
func (g *Graph) UpdateFederatedCredential(ctx context.Context, objectID, id string, f FederatedIdentityCredential) error {
	body := map[string]any{"issuer": f.Issuer, "subject": f.Subject, "audiences": f.Audiences}
	return g.do(ctx, call{method: http.MethodPatch, path: objectPath("applications", objectID, "federatedIdentityCredentials", url.PathEscape(id)),
		body: body, lagIDs: []string{objectID}})
}

// DeleteFederatedCredential removes the FIC with id.
func (g *Graph) DeleteFederatedCredential(ctx context.Context, objectID, id string) error {
	return g.do(ctx, call{method: http.MethodDelete, path: objectPath("applications", objectID, "federatedIdentityCredentials", url.PathEscape(id)), lagIDs: []string{objectID}})
}

// ListFederatedCredentialsByAppID returns the FICs of the application with this appId
// (client id) through Graph's alternate key, in one request; IsNotFound when there is no
// such application.
func (g *Graph) ListFederatedCredentialsByAppID(ctx context.Context, appID string) ([]FederatedIdentityCredential, error) {
	return list[FederatedIdentityCredential](ctx, g, call{method: http.MethodGet,
		path: "/applications(appId='" + url.PathEscape(strings.ReplaceAll(appID, "'", "''")) + "')/federatedIdentityCredentials"})
}
