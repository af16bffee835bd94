package tpmkey

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// session is one use of an open TPM: the parent is created, and every object loaded is
// flushed when the session ends.
type session struct {
	tpm    transport.TPM
	device string // as the user named it, for errors
	parent tpm2.AuthHandle
	loaded []tpm2.TPMHandle
}

// tpmMu serialises this process's use of the TPM: a software TPM serves one connection
// at a time, and a TPM without a resource manager has few object slots.
var tpmMu sync.Mutex

// withTPM opens the TPM, creates the parent, runs fn, and flushes and closes whatever
// happens. what completes "cannot <what> the TPM" in errors. When ctx ends first (Ctrl-C)
// the TPM is closed under the running command, which unblocks it, and ctx's error is
// returned at once: a TPM that never answers holds a run for at most its own time.
func withTPM(ctx context.Context, device, what string, fn func(*session) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	closing := make(chan transport.TPMCloser, 1)
	go func() {
		tpmMu.Lock()
		defer tpmMu.Unlock()
		t, err := open(device)
		if err != nil {
			done <- err
			return
		}
		closing <- t
		// The objects are flushed before the result is handed over: a caller that exits
		// at once (the token binary prints and exits) must not leave them loaded in a
		// TPM without a resource manager, which has three or so slots.
		err = func() error {
			defer t.Close()
			s := &session{tpm: t, device: describe(device)}
			defer s.flush()
			return s.run(what, fn)
		}()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case t := <-closing:
			_ = t.Close()
		default:
		}
		return ctx.Err()
	}
}

// run creates the storage key as the parent and runs fn.
func (s *session) run(what string, fn func(*session) error) error {
	srk, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(s.tpm)
	if err != nil {
		return s.fail(what, fmt.Errorf("create the storage key: %w", err))
	}
	s.loaded = append(s.loaded, srk.ObjectHandle)
	s.parent = tpm2.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)}
	return fn(s)
}

// flush unloads what the session loaded, newest first. Errors are ignored: with the
// kernel's resource manager closing the device flushes anyway.
func (s *session) flush() {
	for i := len(s.loaded) - 1; i >= 0; i-- {
		_, _ = tpm2.FlushContext{FlushHandle: s.loaded[i]}.Execute(s.tpm)
	}
	s.loaded = nil
}

// load loads k under the parent.
func (s *session) load(k *Key) (tpm2.AuthHandle, error) {
	rsp, err := tpm2.Load{ParentHandle: s.parent, InPrivate: k.Private, InPublic: k.Public}.Execute(s.tpm)
	if err != nil {
		return tpm2.AuthHandle{}, s.loadError(err)
	}
	s.loaded = append(s.loaded, rsp.ObjectHandle)
	return tpm2.AuthHandle{Handle: rsp.ObjectHandle, Name: rsp.Name, Auth: tpm2.PasswordAuth(nil)}, nil
}

// sign signs digest with the loaded key h and checks the signature.
func (s *session) sign(k *Key, h tpm2.AuthHandle, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg := tpm2.TPMAlgRSASSA
	if _, ok := opts.(*rsa.PSSOptions); ok {
		alg = tpm2.TPMAlgRSAPSS
	}
	rsp, err := tpm2.Sign{
		KeyHandle: h,
		Digest:    tpm2.TPM2BDigest{Buffer: digest},
		InScheme: tpm2.TPMTSigScheme{
			Scheme:  alg,
			Details: tpm2.NewTPMUSigScheme(alg, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
		},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(s.tpm)
	if err != nil {
		return nil, s.fail("sign with", err)
	}
	var sig *tpm2.TPMSSignatureRSA
	if alg == tpm2.TPMAlgRSAPSS {
		sig, err = rsp.Signature.Signature.RSAPSS()
	} else {
		sig, err = rsp.Signature.Signature.RSASSA()
	}
	if err != nil {
		return nil, s.fail("sign with", fmt.Errorf("unexpected signature: %w", err))
	}
	out := sig.Sig.Buffer
	if err := verify(k.pub, digest, out, opts); err != nil {
		return nil, s.fail("sign with", errors.New("the signature does not verify with the key's public key (a TPM that uses another PSS salt length than the hash length is not supported)"))
	}
	return out, nil
}
