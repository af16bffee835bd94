#!/usr/bin/env python3
"""Compatibility shim for runbooks that still run `python3 scripts/provisioner-token.py`.

It replaces itself (exec) with the Go binary `entraclaw-provisioner-token`, so stdout carries the
token and one newline and nothing else, stderr carries messages, and the exit code is the
binary's own (0 ok, 1 failed, 2 usage, 3 not set up). Arguments are passed through.
The binary is looked up on PATH, then in the repository's bin/ (`make build`).
"""
import os
import shutil
import sys

NAME = "entraclaw-provisioner-token"


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    exe = shutil.which(NAME) or shutil.which(NAME, path=os.path.join(here, "..", "bin"))
    if exe is None:
        sys.stderr.write(
            f"provisioner-token.py: error: {NAME} not found on PATH or in bin/\n"
            f"provisioner-token.py: hint: run `make install` (go install ./cmd/...) or `make build`\n"
        )
        sys.exit(1)
    os.execv(exe, [exe] + sys.argv[1:])


if __name__ == "__main__":
    main()
