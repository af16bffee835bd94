package entra

import (
	"slices"
	"testing"
)

// TestProvisionerRoles: the one rule migrate grants by and verify checks by. Base roles
// first, then the grantable Agent ID roles in Graph's order, each once; disabled and
// user-only roles never; a base role Graph does not publish is named.
func TestProvisionerRoles(t *testing.T) {
	app := []string{"Application"}
	sp := &ServicePrincipal{AppRoles: []AppRole{
		{ID: "9", Value: "AgentIdentity.Create.All", IsEnabled: true, AllowedMemberTypes: app},
		{ID: "8", Value: "AgentIdUser.ReadWrite.All", IsEnabled: false, AllowedMemberTypes: app},
		{ID: "7", Value: "AgentIdentity.Read.All", IsEnabled: true, AllowedMemberTypes: []string{"User"}},
		{ID: "6", Value: "Mail.Send", IsEnabled: true, AllowedMemberTypes: app},
		{ID: "9", Value: "AgentIdentity.Create.All", IsEnabled: true, AllowedMemberTypes: app},
		{ID: "5", Value: "AgentIdUser.ReadWrite.IdentityParentedBy", IsEnabled: true},
	}}
	for i, v := range BaseProvisionerRoles[1:] {
		sp.AppRoles = append(sp.AppRoles, AppRole{ID: string(rune('a' + i)), Value: v, IsEnabled: true, AllowedMemberTypes: app})
	}
	roles, missing := ProvisionerRoles(sp)
	var values []string
	for _, r := range roles {
		values = append(values, r.Value)
	}
	want := append(slices.Clone(BaseProvisionerRoles[1:]), "AgentIdentity.Create.All", "AgentIdUser.ReadWrite.IdentityParentedBy")
	if !slices.Equal(values, want) {
		t.Errorf("roles = %v; want %v", values, want)
	}
	if !slices.Equal(missing, BaseProvisionerRoles[:1]) {
		t.Errorf("missing = %v; want %v", missing, BaseProvisionerRoles[:1])
	}
	if roles, missing := ProvisionerRoles(nil); len(roles) != 0 || !slices.Equal(missing, BaseProvisionerRoles) {
		t.Errorf("nil service principal: %v, missing %v; want no roles and every base role missing", roles, missing)
	}
}
