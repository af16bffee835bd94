//go:build !linux

package keystore

const secretsTogetherSupported = false

func secretsTogether(keys ...[2]string) (map[[2]string]string, error) { return nil, nil }
