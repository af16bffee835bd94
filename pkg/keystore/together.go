package keystore

import "sync"

// ReadTogether reads account a of store sa and account b of store sb at once and returns
// copies of the two stores whose next read of each of these items is answered from what
// was read (once: a later read goes to the keyring again). On Linux, with the OS keyring,
// both items are looked up and fetched over one Secret Service session (secretsTogether):
// about 3 D-Bus round trips instead of go-keyring's 7 per item. Anything unusual there
// (an item not found, a locked item or collection, any D-Bus error) is not remembered, so
// the stores' normal reads, through go-keyring with its unlock prompt and its error
// handling, decide as they always did. Elsewhere, or with another backend, it returns sa
// and sb unchanged. A keyring that does not answer within the store's timeout is
// remembered as such, so the caller waits for it once, not twice.
func ReadTogether(sa *Store, a string, sb *Store, b string) (*Store, *Store) {
	if _, ok := sa.backend.(systemBackend); !ok || sa.backend != sb.backend || !secretsTogetherSupported {
		return sa, sb
	}
	if err := checkSessionBus(); err != nil {
		return sa, sb
	}
	ka, kb := [2]string{sa.service, a}, [2]string{sb.service, b}
	type result struct {
		values map[[2]string]string
		err    error
	}
	got, err := callWithTimeout(sa.ctx, sa.timeout, func() (result, error) {
		v, err := secretsTogether(ka, kb)
		return result{v, err}, nil
	})
	memo := &memoBackend{Backend: sa.backend, items: map[[2]string]memoValue{}}
	switch {
	case isCancel(err):
		return sa, sb // the stores' own reads end at once too
	case err != nil: // the timeout
		memo.items[ka] = memoValue{err: err}
		memo.items[kb] = memoValue{err: err}
	case got.err == nil:
		for k, v := range got.values {
			memo.items[k] = memoValue{v: v}
		}
	}
	ca, cb := *sa, *sb
	ca.backend, cb.backend = memo, memo
	return &ca, &cb
}

// memoBackend answers the first Get of each remembered item from memory and everything
// else from the backend. A Set or Delete of an item forgets it.
type memoBackend struct {
	Backend
	mu    sync.Mutex
	items map[[2]string]memoValue
}

type memoValue struct {
	v   string
	err error
}

func (m *memoBackend) take(svc, user string) (memoValue, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{svc, user}
	r, ok := m.items[k]
	delete(m.items, k)
	return r, ok
}

func (m *memoBackend) Get(svc, user string) (string, error) {
	if r, ok := m.take(svc, user); ok {
		return r.v, r.err
	}
	return m.Backend.Get(svc, user)
}

func (m *memoBackend) Set(svc, user, v string) error {
	m.take(svc, user)
	return m.Backend.Set(svc, user, v)
}

func (m *memoBackend) Delete(svc, user string) error {
	m.take(svc, user)
	return m.Backend.Delete(svc, user)
}
