package entra

import (
	"errors"
	"strings"
	"testing"
)

func TestResolveCloud(t *testing.T) {
	tests := []struct {
		name, cloud, authority, graph string
		want                          Cloud
		wantErr                       string
	}{
		{name: "default is public", want: Cloud{Name: "public", AuthorityHost: "https://login.microsoftonline.com/", GraphEndpoint: "https://graph.microsoft.com"}},
		{name: "public", cloud: "public", want: Cloud{Name: "public", AuthorityHost: "https://login.microsoftonline.com/", GraphEndpoint: "https://graph.microsoft.com"}},
		{name: "usgov", cloud: "usgov", want: Cloud{Name: "usgov", AuthorityHost: "https://login.microsoftonline.us/", GraphEndpoint: "https://graph.microsoft.us"}},
		{name: "china any case", cloud: "China", want: Cloud{Name: "china", AuthorityHost: "https://login.chinacloudapi.cn/", GraphEndpoint: "https://microsoftgraph.chinacloudapi.cn"}},
		{name: "unknown", cloud: "germany", wantErr: `unknown cloud "germany" for -cloud: valid clouds are public, usgov, china`},
		{
			name: "custom hosts normalised", authority: "https://127.0.0.1:4443", graph: "https://127.0.0.1:4443/",
			want: Cloud{Name: "public", AuthorityHost: "https://127.0.0.1:4443/", GraphEndpoint: "https://127.0.0.1:4443", Custom: true},
		},
		{
			name: "graph override alone is custom", cloud: "usgov", graph: "https://graph.example.test//",
			want: Cloud{Name: "usgov", AuthorityHost: "https://login.microsoftonline.us/", GraphEndpoint: "https://graph.example.test", Custom: true},
		},
		{name: "http authority", authority: "http://127.0.0.1:4443/", wantErr: "-authority-host"},
		{name: "relative graph", graph: "graph.example.test", wantErr: "-graph-endpoint"},
		{name: "graph with query", graph: "https://graph.example.test/?x=1", wantErr: "-graph-endpoint"},
		{name: "authority without host", authority: "https:///tenant", wantErr: "-authority-host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveCloud(tt.cloud, tt.authority, tt.graph)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ResolveCloud error = %v, want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidArgument) {
					t.Errorf("error %v is not ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("ResolveCloud = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCloudEndpoints(t *testing.T) {
	c, err := ResolveCloud("", "", "https://127.0.0.1:4443")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.GraphScope(); got != "https://127.0.0.1:4443/.default" {
		t.Errorf("GraphScope = %q", got)
	}
	if got := c.GraphBaseURL(); got != "https://127.0.0.1:4443/v1.0" {
		t.Errorf("GraphBaseURL = %q", got)
	}
	if got := c.ClientOptions(CredentialOptions{}).Cloud.ActiveDirectoryAuthorityHost; got != "https://login.microsoftonline.com/" {
		t.Errorf("ClientOptions authority = %q", got)
	}
}

func TestValidateTenantID(t *testing.T) {
	valid := []string{"72f988bf-86f1-41af-91ab-2d7cd011db47", "contoso.onmicrosoft.com", "Contoso.com", "xn--bcher-kva.example"}
	invalid := []string{"", "contoso", "72f988bf86f141af91ab2d7cd011db47", "-contoso.com", "contoso..com", "10.0.0.1", "contoso.com/x", "con toso.com", "common/evil"}
	for _, s := range valid {
		if err := ValidateTenantID(s); err != nil {
			t.Errorf("ValidateTenantID(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range invalid {
		err := ValidateTenantID(s)
		if err == nil {
			t.Errorf("ValidateTenantID(%q) = nil, want an error", s)
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ValidateTenantID(%q) = %q: want a one-line ErrInvalidArgument", s, err)
		}
	}
}

func TestValidateClientID(t *testing.T) {
	if err := ValidateClientID("04B07795-8ddb-461a-bbee-02f9e1bf7b46"); err != nil {
		t.Errorf("valid GUID rejected: %v", err)
	}
	for _, s := range []string{"", "contoso.onmicrosoft.com", "04b07795-8ddb-461a-bbee-02f9e1bf7b4", "04b07795-8ddb-461a-bbee-02f9e1bf7b4g", "04b077958-ddb-461a-bbee-02f9e1bf7b46"} {
		if err := ValidateClientID(s); err == nil || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidateClientID(%q) = %v, want an ErrInvalidArgument", s, err)
		}
	}
}
