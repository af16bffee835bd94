package entratest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ---- fake az ad app credential reset ----------------------------------------------------

// azCredentialWarning is what az prints on stderr after `az ad app credential reset`.
const azCredentialWarning = "WARNING: The output includes credentials that you must protect. Be sure that you do not include these credentials in your code or check the credentials into your source control. For more information, see https://aka.ms/azadsp-cli"

// serveAzCredentialReset backs the fake az's `az ad app credential reset --id ID --append
// [--display-name N] [--years N | --end-date D] [--query PROP] [-o json|tsv]`. It does what az
// does (graph-api-facts §1.9): find the app by appId, else by object id, then POST addPassword
// with the operator's token, so directory roles, ownership and the -block-add-pw policy apply
// as they do to Graph. The answer is az's: {"appId","password","tenant"}, or the one property
// --query names. Without --append az first removes every client secret; the fake refuses that.
func (s *Server) serveAzCredentialReset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "ERROR: use POST", http.StatusMethodNotAllowed)
		return
	}
	k := s.currentKnobs()
	now := k.clock()
	c, ge := s.authenticate(r, now)
	if ge != nil {
		http.Error(w, "ERROR: "+ge.message, http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	if q.Get("append") == "" {
		http.Error(w, "ERROR: fake az: only --append is supported (without it az deletes every client secret on the app first)", http.StatusBadRequest)
		return
	}
	end, err := azEndDate(now, q.Get("years"), q.Get("end-date"))
	if err != nil {
		http.Error(w, "ERROR: "+err.Error(), http.StatusBadRequest)
		return
	}
	id := q.Get("id")
	appID := s.azResolveApp(c.tenantID, id, now)
	if appID == "" {
		http.Error(w, fmt.Sprintf("ERROR: Resource '%s' does not exist or one of its queried reference-property objects are not present.", id), http.StatusNotFound)
		return
	}
	cred := map[string]any{"endDateTime": end.UTC().Format(time.RFC3339)}
	if n := q.Get("display-name"); n != "" {
		cred["displayName"] = n
	}
	body, _ := json.Marshal(map[string]any{"passwordCredential": cred})
	res := s.serveLocked(&graphCall{r: r, path: graphPath{collection: "applications", single: true, byAppID: true, appID: appID, action: "addPassword"},
		body: body, now: now, knobs: k, caller: c}, graphHandlers[RouteAddPassword])
	if res.err != nil {
		http.Error(w, "ERROR: "+res.err.message, res.err.status)
		return
	}
	secret := ""
	for _, f := range res.body.(object) {
		if f.name == "secretText" {
			secret, _ = f.value.(string)
		}
	}
	out := object{{"appId", appID}, {"password", secret}, {"tenant", c.tenantID}}
	writeAzOutput(w, out, q.Get("query"), q.Get("output"))
}

// azResolveApp returns the appId of the application id names (an appId or an object id) in
// the tenant, as az resolves --id; "" when there is none.
func (s *Server) azResolveApp(tenantID, id string, now time.Time) string {
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	t := s.dir.tenant(tenantID)
	if t == nil || id == "" {
		return ""
	}
	a := t.appByAppID(id)
	if a == nil {
		a = t.appByObjectID(id)
	}
	if a == nil || !visible(a.visibleAt, now) {
		return ""
	}
	return a.appID
}

// azEndDate is the end of a new secret as az computes it: --end-date, else now + --years
// (default 1); both is a usage error.
func azEndDate(now time.Time, years, endDate string) (time.Time, error) {
	switch {
	case years != "" && endDate != "":
		return time.Time{}, fmt.Errorf("usage error: --years | --end-date")
	case endDate != "":
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, endDate); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("argument --end-date: invalid date %q (e.g. 2299-12-31 or 2020-12-31T11:59:59+00:00)", endDate)
	case years != "":
		n, err := strconv.Atoi(years)
		if err != nil || n < 1 {
			return time.Time{}, fmt.Errorf("argument --years: invalid int value: %q", years)
		}
		return now.AddDate(n, 0, 0), nil
	}
	return now.AddDate(1, 0, 0), nil
}

// writeAzOutput prints v as az does: the top-level property query names (when given), then
// -o json (2-space indent, the default) or -o tsv (a string bare, an object's values
// tab-separated).
func writeAzOutput(w http.ResponseWriter, v object, query, output string) {
	var val any = v
	if query != "" {
		val = nil
		for _, f := range v {
			if f.name == query {
				val = f.value
			}
		}
	}
	var out bytes.Buffer
	switch {
	case output == "tsv":
		out.WriteString(azTSV(val))
	case output == "" || output == "json":
		raw, err := json.Marshal(val)
		if err == nil {
			err = json.Indent(&out, raw, "", "  ")
		}
		if err != nil {
			http.Error(w, "ERROR: "+err.Error(), http.StatusInternalServerError)
			return
		}
	default:
		http.Error(w, fmt.Sprintf("ERROR: fake az: -o %s is not supported (json, tsv)", output), http.StatusBadRequest)
		return
	}
	out.WriteByte('\n')
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(out.Bytes())
}

// azTSV is one value as az -o tsv prints it.
func azTSV(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case object:
		vals := make([]string, len(v))
		for i, f := range v {
			vals[i] = azTSV(f.value)
		}
		return strings.Join(vals, "\t")
	default:
		raw, _ := json.Marshal(v)
		return string(raw)
	}
}
