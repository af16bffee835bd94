package keystore

import (
	"errors"

	dbus "github.com/godbus/dbus/v5"
)

const secretsTogetherSupported = true

// The Secret Service names go-keyring uses (zalando/go-keyring secret_service).
const (
	ssName           = "org.freedesktop.secrets"
	ssPath           = "/org/freedesktop/secrets"
	ssService        = "org.freedesktop.Secret.Service"
	ssCollection     = "org.freedesktop.Secret.Collection"
	ssSession        = "org.freedesktop.Secret.Session"
	ssLoginPath      = "/org/freedesktop/secrets/collection/login"
	ssDefaultAlias   = "/org/freedesktop/secrets/aliases/default"
	ssCollectionsKey = ssService + ".Collections"
)

// ssSecret is the Secret Service's (oayays) secret struct.
type ssSecret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// secretsTogether looks the items up exactly where go-keyring's Get looks (the login
// collection when the service lists it, else the default alias; attributes service and
// username; the first match) and fetches their secrets with one GetSecrets, over
// go-keyring's own shared session-bus connection: OpenSession and the Collections
// property together, then both SearchItems together, then GetSecrets. It returns only
// the items it read; one it did not find or could not read is left out (the caller then
// reads it through go-keyring, which also handles unlocking).
func secretsTogether(keys ...[2]string) (map[[2]string]string, error) {
	conn, err := dbus.SessionBus()
	if err != nil {
		return nil, err
	}
	svc := conn.Object(ssName, ssPath)
	openCall := svc.Go(ssService+".OpenSession", 0, nil, "plain", dbus.MakeVariant(""))
	propCall := svc.Go("org.freedesktop.DBus.Properties.Get", 0, nil, ssService, "Collections")
	var ignored dbus.Variant
	var session dbus.ObjectPath
	if err := (<-openCall.Done).Store(&ignored, &session); err != nil {
		return nil, err
	}
	defer conn.Object(ssName, session).Go(ssSession+".Close", dbus.FlagNoReplyExpected, nil)
	collection := dbus.ObjectPath(ssDefaultAlias)
	var prop dbus.Variant
	if err := (<-propCall.Done).Store(&prop); err == nil {
		if paths, ok := prop.Value().([]dbus.ObjectPath); ok {
			for _, p := range paths {
				if p == ssLoginPath {
					collection = ssLoginPath
				}
			}
		}
	}
	coll := conn.Object(ssName, collection)
	searches := make([]*dbus.Call, len(keys))
	for i, k := range keys {
		searches[i] = coll.Go(ssCollection+".SearchItems", 0, nil, map[string]string{"username": k[1], "service": k[0]})
	}
	itemOf := map[dbus.ObjectPath][2]string{}
	var items []dbus.ObjectPath
	for i, call := range searches {
		var found []dbus.ObjectPath
		if err := (<-call.Done).Store(&found); err != nil {
			return nil, err
		}
		if len(found) > 0 {
			if _, dup := itemOf[found[0]]; !dup {
				items = append(items, found[0])
			}
			itemOf[found[0]] = keys[i]
		}
	}
	if len(items) == 0 {
		return nil, nil
	}
	var secrets map[dbus.ObjectPath]ssSecret
	if err := svc.Call(ssService+".GetSecrets", 0, items, session).Store(&secrets); err != nil {
		return nil, err
	}
	values := map[[2]string]string{}
	for path, s := range secrets {
		if k, ok := itemOf[path]; ok && s.Session == session {
			values[k] = string(s.Value)
		}
	}
	if len(values) == 0 {
		return nil, errors.New("no secret returned")
	}
	return values, nil
}
