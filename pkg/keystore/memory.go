package keystore

import (
	"sync"

	"github.com/zalando/go-keyring"
)

// MemoryBackend is an in-memory Backend without size limits, for the tests of packages
// that take a *Store (keystore.New(svc, keystore.WithBackend(keystore.NewMemoryBackend()))).
// It is safe for concurrent use, counts writes, and can be made to fail every write the way
// a locked keyring does. The real keyrings are exercised by this package's own tests.
type MemoryBackend struct {
	mu       sync.Mutex
	items    map[string]string
	writes   int
	writeErr error
}

// NewMemoryBackend returns an empty MemoryBackend.
func NewMemoryBackend() *MemoryBackend { return &MemoryBackend{items: map[string]string{}} }

func memoryKey(svc, user string) string { return svc + "\x00" + user }

// Get returns the value of svc/user, or go-keyring's ErrNotFound.
func (b *MemoryBackend) Get(svc, user string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.items[memoryKey(svc, user)]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

// Set stores v under svc/user.
func (b *MemoryBackend) Set(svc, user, v string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writeErr != nil {
		return b.writeErr
	}
	b.writes++
	b.items[memoryKey(svc, user)] = v
	return nil
}

// Delete removes svc/user, or returns go-keyring's ErrNotFound.
func (b *MemoryBackend) Delete(svc, user string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writeErr != nil {
		return b.writeErr
	}
	if _, ok := b.items[memoryKey(svc, user)]; !ok {
		return keyring.ErrNotFound
	}
	b.writes++
	delete(b.items, memoryKey(svc, user))
	return nil
}

// FailWrites makes every later Set and Delete return err (nil restores normal writes).
func (b *MemoryBackend) FailWrites(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writeErr = err
}

// Writes is the number of successful Set and Delete calls so far.
func (b *MemoryBackend) Writes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writes
}
