//go:build !windows

package main

import "errors"

func fileACL(string) (string, error) { return "", errors.New("acl: Windows only") }

func addRoot(string) error { return errors.New("addroot: Windows only") }
