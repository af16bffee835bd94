package keystore

import (
	"bytes"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"
)

// tpmBundle is a certificate and a TPM key block the size pkg/tpmkey makes (its
// public and wrapped private areas, ~500 bytes): no private key.
func tpmBundle(t *testing.T) []byte {
	t.Helper()
	var certPEM []byte
	for rest := testBundle(t); ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			certPEM = pem.EncodeToMemory(block)
		}
	}
	blobs := make([]byte, 504)
	if _, err := rand.Read(blobs); err != nil {
		t.Fatal(err)
	}
	key := pem.EncodeToMemory(&pem.Block{Type: tpmKeyBlock, Headers: map[string]string{"Parent": "owner-ecc-p256-srk"}, Bytes: blobs})
	return append(certPEM, key...)
}

func TestTPMBundleRoundTrip(t *testing.T) {
	bundle := tpmBundle(t)
	for _, goos := range allOS {
		t.Run(goos, func(t *testing.T) {
			f := newFake(goos)
			s := newTestStore(t, goos, f)
			if err := s.PutBundle(testTenant, bundle); err != nil {
				t.Fatalf("PutBundle: %v", err)
			}
			// It fits one item everywhere, Windows' 2560 bytes included.
			if _, split := f.raw(testService, testTenant+".cert"); split {
				t.Errorf("%s: a %d-byte TPM bundle was split", goos, len(bundle))
			}
			got, err := s.GetBundle(testTenant)
			if err != nil || !bytes.Equal(got, bundle) {
				t.Fatalf("GetBundle = %v; equal=%v", err, bytes.Equal(got, bundle))
			}
		})
	}
}

func TestTPMBundleSplitsWhenItDoesNotFit(t *testing.T) {
	bundle := tpmBundle(t)
	service := strings.Repeat("s", 2000)
	f := newFake("darwin")
	s := New(service, WithBackend(f), WithOS("darwin"))
	if s.fits(testTenant, len(bundle)) {
		t.Fatal("test setup: the TPM bundle still fits in one command line")
	}
	if err := s.PutBundle(testTenant, bundle); err != nil {
		t.Fatalf("PutBundle: %v", err)
	}
	if _, ok := f.raw(service, testTenant+".cert"); !ok {
		t.Fatal("no <tenant>.cert item")
	}
	got, err := s.GetBundle(testTenant)
	if err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("GetBundle = %v; equal=%v", err, bytes.Equal(got, bundle))
	}
	if norm, err := normalizeBundle(bundle); err != nil || !bytes.Equal(norm, bundle) {
		t.Fatalf("normalizeBundle(TPM bundle) = %v", err)
	}
}
