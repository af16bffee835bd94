package entratest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// fakeAzCmd is the fake Azure CLI as a Windows batch file (bin/az.cmd): on Windows azidentity
// runs `cmd.exe /c "az account get-access-token …"`, which cannot run the sh script. It answers
// `az account get-access-token` and `az account show` for every operator kind, picked by
// ENTRACLAW_FAKE_AZ_ACCOUNT (default admin; anything else is logged out). The tokens are
// base64url and dots and the JSON holds no batch metacharacters, so echo prints them as they are.
func fakeAzCmd(srv *Server, tenantID string) (string, error) {
	var b strings.Builder
	b.WriteString("@echo off\r\n")
	fmt.Fprintf(&b, "rem Fake Azure CLI for the entraclaw fake Entra ID (tenant %s).\r\n", tenantID)
	b.WriteString("set \"account=%ENTRACLAW_FAKE_AZ_ACCOUNT%\"\r\nif \"%account%\"==\"\" set \"account=admin\"\r\n")
	kinds := make([]string, 0, len(operatorKinds))
	for kind := range operatorKinds {
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		tok, err := srv.OperatorToken(tenantID, kind)
		if err != nil {
			return "", err
		}
		if strings.ContainsAny(tok, "%^&|<>\"!() ") {
			return "", fmt.Errorf("entratest: operator token holds a batch metacharacter")
		}
		fmt.Fprintf(&b, "if \"%%account%%\"==\"%[1]s\" (\r\n  set \"tok=%[2]s\"\r\n  set \"upn=%[1]s@fake.entraclaw.test\"\r\n  goto run\r\n)\r\n", kind, tok)
	}
	b.WriteString("echo ERROR: Please run 'az login' to setup account. 1>&2\r\nexit /b 1\r\n:run\r\n")
	exp := time.Now().Add(12 * time.Hour)
	fmt.Fprintf(&b, "if \"%%1 %%2\"==\"account get-access-token\" (\r\n  echo {\"accessToken\":\"%%tok%%\",\"expiresOn\":\"%s\",\"expires_on\":%d,\"subscription\":\"00000000-0000-0000-0000-000000000000\",\"tenant\":\"%s\",\"tokenType\":\"Bearer\"}\r\n  exit /b 0\r\n)\r\n",
		exp.Local().Format("2006-01-02 15:04:05.000000"), exp.Unix(), tenantID)
	fmt.Fprintf(&b, "if \"%%1 %%2\"==\"account show\" (\r\n  echo {\"name\":\"EntraClaw fake\",\"tenantId\":\"%s\",\"user\":{\"name\":\"%%upn%%\",\"type\":\"user\"}}\r\n  exit /b 0\r\n)\r\n", tenantID)
	b.WriteString("echo fake az: unsupported command: %* 1>&2\r\nexit /b 2\r\n")
	return b.String(), nil
}
