// Command krtool is test tooling for scripts/test-windows.sh, not a product binary: it reads
// and writes keyring items through pkg/keystore (joined bundles, the Windows split) or raw
// through go-keyring (one item), so the Windows binaries' items in Wine's Credential Manager
// can be compared byte for byte with what the fake stored in the Linux Secret Service.
//
//	krtool backend SERVICE              the keystore backend name
//	krtool getbundle SERVICE TENANT     keystore GetBundle to stdout
//	krtool putbundle SERVICE TENANT     keystore PutBundle from stdin
//	krtool delbundle SERVICE TENANT     keystore DeleteBundle
//	krtool get SERVICE ACCOUNT          one raw item to stdout (exit 3 when absent)
//	krtool acl FILE                     Windows only: the file's DACL as SDDL
//	krtool addroot CA.PEM               Windows only: trust the CA in the machine's ROOT store
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zalando/go-keyring"

	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "krtool:", err)
		if errors.Is(err, keystore.ErrNotFound) || errors.Is(err, keyring.ErrNotFound) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 2 && args[0] == "acl" {
		sddl, err := fileACL(args[1])
		if err != nil {
			return err
		}
		fmt.Println(sddl)
		return nil
	}
	if len(args) == 2 && args[0] == "addroot" {
		return addRoot(args[1])
	}
	if len(args) == 2 && args[0] == "backend" {
		fmt.Println(keystore.New(args[1]).BackendName())
		return nil
	}
	if len(args) != 3 {
		return errors.New("usage: krtool backend|getbundle|putbundle|delbundle|get SERVICE ACCOUNT, or krtool acl FILE")
	}
	store := keystore.New(args[1])
	switch args[0] {
	case "getbundle":
		b, err := store.GetBundle(args[2])
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	case "putbundle":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		return store.PutBundle(args[2], b)
	case "delbundle":
		return store.DeleteBundle(args[2])
	case "get":
		v, err := keyring.Get(args[1], args[2])
		if err != nil {
			return err
		}
		_, err = io.WriteString(os.Stdout, v)
		return err
	}
	return fmt.Errorf("unknown command %q", args[0])
}
