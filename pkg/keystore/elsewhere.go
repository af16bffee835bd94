package keystore

// Place is a keyring service and tenant a certificate bundle may be stored under.
type Place struct {
	Service string
	Tenant  string
}

// FindBundle returns the index of the first of places that holds a certificate bundle (-1:
// none), read with s's
// backend, timeout and context. It only reads, one keyring read per place, and gives up at
// the first place it cannot read (a keyring that failed once is not asked again). go-keyring
// cannot list a service's items, so this is how a caller that found nothing where it looked
// can say where a bundle does exist (another tenant, another service).
func (s *Store) FindBundle(places ...Place) int {
	for i, p := range places {
		other := *s
		other.service = p.Service
		has, err := other.HasBundle(p.Tenant)
		if err != nil {
			return -1
		}
		if has {
			return i
		}
	}
	return -1
}
