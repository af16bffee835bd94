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
// Like bin/az it answers `az ad app show` and `az ad app credential reset --append` through the
// fake's /_fake/az routes, with curl.exe (Windows 10 1803 and later; Wine has none) and the CA in
// ENTRACLAW_CA_FILE, else caFile.
func fakeAzCmd(srv *Server, tenantID, caFile string) (string, error) {
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
	b.WriteString(strings.ReplaceAll(fmt.Sprintf(azCmdAdSection, caFile, srv.URL, azCredentialWarning), "\n", "\r\n"))
	exp := time.Now().Add(12 * time.Hour)
	fmt.Fprintf(&b, "if \"%%1 %%2\"==\"account get-access-token\" (\r\n  echo {\"accessToken\":\"%%tok%%\",\"expiresOn\":\"%s\",\"expires_on\":%d,\"subscription\":\"00000000-0000-0000-0000-000000000000\",\"tenant\":\"%s\",\"tokenType\":\"Bearer\"}\r\n  exit /b 0\r\n)\r\n",
		exp.Local().Format("2006-01-02 15:04:05.000000"), exp.Unix(), tenantID)
	fmt.Fprintf(&b, "if \"%%1 %%2\"==\"account show\" (\r\n  echo {\"name\":\"EntraClaw fake\",\"tenantId\":\"%s\",\"user\":{\"name\":\"%%upn%%\",\"type\":\"user\"}}\r\n  exit /b 0\r\n)\r\n", tenantID)
	b.WriteString("echo fake az: unsupported command: %* 1>&2\r\nexit /b 2\r\n")
	return b.String(), nil
}

// azCmdAdSection is az.cmd's `az ad app show` and `az ad app credential reset`: the arguments
// become curl.exe --data-urlencode pairs for the fake's /_fake/az routes; the answer goes to
// stdout, an error to stderr (exit 1), a usage error exits 2. %[1]s is the CA file, %[2]s the
// fake's URL, %[3]s az's credential warning.
const azCmdAdSection = `if /i "%%~1 %%~2 %%~3"=="ad app show" (set "route=ad/app/show" & set "method=GET" & shift & shift & shift & goto ad)
if /i "%%~1 %%~2 %%~3 %%~4"=="ad app credential reset" (set "route=ad/app/credential/reset" & set "method=POST" & shift & shift & shift & shift & goto ad)
goto account
:ad
set "args="
set "id="
set "append="
:adarg
if "%%~1"=="" goto adcall
if "%%~1"=="--append" (set "append=true" & set "args=%%args%% --data-urlencode append=true" & shift & goto adarg)
if "%%~1"=="--id" set "id=%%~2"
set "name=%%~1"
if "%%~1"=="-o" set "name=--output"
if "%%~1"=="--credential-description" set "name=--display-name"
if "%%name%%"=="--id" goto adpair
if "%%name%%"=="--display-name" goto adpair
if "%%name%%"=="--query" goto adpair
if "%%name%%"=="--years" goto adpair
if "%%name%%"=="--end-date" goto adpair
if "%%name%%"=="--output" goto adpair
echo fake az: unsupported argument: %%1 1>&2
exit /b 2
:adpair
set "args=%%args%% --data-urlencode "%%name:~2%%=%%~2""
shift
shift
goto adarg
:adcall
if not defined id (echo ERROR: the following arguments are required: --id 1>&2 & exit /b 2)
if "%%method%%"=="POST" if not defined append goto noappend
set "ca=%[1]s"
if defined ENTRACLAW_CA_FILE set "ca=%%ENTRACLAW_CA_FILE%%"
set "out=%%TEMP%%\entraclaw-fake-az-%%RANDOM%%.txt"
curl.exe -s --fail-with-body --cacert "%%ca%%" -H "Authorization: Bearer %%tok%%" -G -X %%method%% "%[2]s/_fake/az/%%route%%" %%args%% -o "%%out%%"
if errorlevel 1 (
  if exist "%%out%%" (type "%%out%%" 1>&2 & del "%%out%%") else (echo fake az: curl.exe is missing or cannot reach the fake at %[2]s 1>&2)
  exit /b 1
)
type "%%out%%"
del "%%out%%"
if "%%method%%"=="POST" echo %[3]s 1>&2
exit /b 0
:noappend
echo ERROR: fake az: only --append is supported (without it az deletes every client secret on the app first) 1>&2
exit /b 2
:account
`
