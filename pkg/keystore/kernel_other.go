//go:build !linux

package keystore

import "errors"

const kernelKeyringSupported = false

// errNoKernelKeyring: the kernel keyring (keyctl) is a Linux facility.
var errNoKernelKeyring = errors.New("the kernel keyring exists only on Linux")

// kernelBackend is the kernel keyring elsewhere: every call fails.
type kernelBackend struct{}

func (kernelBackend) backendName() string { return NameKernelKeyring }

func (kernelBackend) Get(svc, user string) (string, error) { return "", errNoKernelKeyring }
func (kernelBackend) Set(svc, user, v string) error        { return errNoKernelKeyring }
func (kernelBackend) Delete(svc, user string) error        { return errNoKernelKeyring }

func probeKernelKeyring() error { return errNoKernelKeyring }
