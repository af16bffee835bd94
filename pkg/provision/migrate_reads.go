package provision

import (
	"context"
	"sync"

	"github.com/entraclaw/entraclaw-cli/pkg/entra"
)

// prefetched holds the Graph reads the steps need, made concurrently in the
// preflight when the client id is known in advance (the state file or -client-id):
// the app with every property, its service principal and Microsoft Graph's. A
// re-run that changes nothing then costs two round trips of Graph reads (these
// three, then the app's role assignments) instead of five in a row.
type prefetched struct {
	client      string
	app         *entra.Application
	appErr      error
	clientSP    *entra.ServicePrincipal
	clientSPErr error
	graphSP     *entra.ServicePrincipal
	graphSPErr  error
}

func (m *migration) prefetch(ctx context.Context, client string) *prefetched {
	p := &prefetched{client: client}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		p.app, p.appErr = m.graph.GetApplicationByAppID(ctx, client)
	}()
	go func() {
		defer wg.Done()
		p.clientSP, p.clientSPErr = m.graph.FindServicePrincipal(ctx, client)
	}()
	go func() {
		defer wg.Done()
		p.graphSP, p.graphSPErr = m.graph.FindServicePrincipal(ctx, entra.GraphAppID)
	}()
	wg.Wait()
	return p
}

// servicePrincipal returns the service principal of appID: the prefetched one when
// it was read for that app, else a fresh read.
func (m *migration) servicePrincipal(ctx context.Context, appID string) (*entra.ServicePrincipal, error) {
	if p := m.pre; p != nil {
		switch {
		case appID == entra.GraphAppID && p.graphSPErr == nil && p.graphSP != nil:
			return p.graphSP, nil
		case appID == p.client && p.clientSPErr == nil && p.clientSP != nil:
			return p.clientSP, nil
		}
	}
	return m.graph.FindServicePrincipal(ctx, appID)
}

// freshApp returns the app as it is now for the password and certificate steps:
// the preflight's full read while this run has not written the app object (moments
// ago; a backup, a grant or a keyring item leave the app as it was), else a new read.
func (m *migration) freshApp(ctx context.Context) (*entra.Application, error) {
	if p := m.pre; p != nil && p.app != nil && p.app.ID == m.app.ID && !m.appWritten && !m.appCreated {
		return p.app, nil
	}
	return m.graph.GetApplication(ctx, m.app.ID)
}
