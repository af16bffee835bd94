package entratest_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"

	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
)

// A migrated provisioner gets a Graph token with its certificate through azidentity.
func Example() {
	srv, err := entratest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	sc, err := srv.Seed(entratest.ScenarioMigrated)
	if err != nil {
		log.Fatal(err)
	}

	cred, err := azidentity.NewClientCertificateCredential(sc.TenantID, sc.ClientID,
		[]*x509.Certificate{sc.Bundle.Cert}, sc.Bundle.Key,
		&azidentity.ClientCertificateCredentialOptions{
			ClientOptions: azcore.ClientOptions{
				Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.AuthorityHost()},
				Transport: srv.Client(),
			},
			DisableInstanceDiscovery: true, // a custom authority host must not trigger discovery
		})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{srv.GraphEndpoint() + "/.default"}})
	if err != nil {
		log.Fatal(err)
	}

	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok.Token, claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println("appidacr:", claims["appidacr"], "roles:", len(claims["roles"].([]any)))
	fmt.Println("token requests:", srv.TokenRequests())
	// Output:
	// appidacr: 2 roles: 25
	// token requests: 1
}
