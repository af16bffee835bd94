// Package entra talks to Microsoft Entra ID and Microsoft Graph: it resolves the
// cloud (authority host and Graph endpoint), builds azidentity credentials for
// the provisioner app and for the operator, turns token failures into one-line
// AADSTS errors with a hint, and offers a small Graph v1.0 client on azcore's
// pipeline for the calls the migration makes (applications, password and key
// credentials, service principals and app-role grants).
//
// The certificate, secret and device-code credentials built here set
// azcore.ClientOptions.Cloud explicitly, so the AZURE_AUTHORITY_HOST environment
// variable, which azidentity otherwise honours silently, never changes where
// their tokens come from. (The Azure CLI credential asks az, which follows its
// own `az cloud set` configuration.) AZURE_REGIONAL_AUTHORITY_NAME
// is not covered by that: azidentity still applies it to the certificate and
// secret credentials, so leave it unset (tests must unset both).
package entra
