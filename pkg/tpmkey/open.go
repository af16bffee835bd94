package tpmkey

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// EnvTPM names the TPM to use instead of the system's: a swtpm unix socket, "unix:PATH",
// "host:port" (swtpm --server type=tcp), or a device path. For tests and demos.
const EnvTPM = "ENTRACLAW_TPM"

// DeviceTBS is the Device of the Windows TPM Base Services.
const DeviceTBS = "tbs"

// Device names the TPM this machine uses: ENTRACLAW_TPM when set, else /dev/tpmrm0 on
// Linux (the kernel's resource manager), "tbs" on Windows, "" where there is none (macOS).
func Device() string {
	if v := strings.TrimSpace(os.Getenv(EnvTPM)); v != "" {
		return v
	}
	return defaultDevice
}

func resolve(device string) string {
	if device == "" {
		return Device()
	}
	return device
}

// describe names the TPM in messages.
func describe(device string) string {
	switch d := resolve(device); {
	case d == "":
		return ""
	case strings.EqualFold(d, DeviceTBS):
		return "Windows TBS"
	case os.Getenv(EnvTPM) != "" && d == strings.TrimSpace(os.Getenv(EnvTPM)):
		return EnvTPM + "=" + d
	default:
		return d
	}
}

// Check opens the TPM device names ("" for Device()) and closes it again: whether there is
// a TPM this user can use, before anything is changed.
func Check(ctx context.Context, device string) error {
	return withTPM(ctx, device, "use", func(*session) error { return nil })
}

// open opens the TPM that device names.
func open(device string) (transport.TPMCloser, error) {
	dev := resolve(device)
	name := describe(device)
	switch {
	case dev == "":
		return nil, noTPM("", errors.New("this system has no TPM interface entraclaw can use (macOS has none for RSA keys)"), fixSoftwareTPM)
	case strings.EqualFold(dev, DeviceTBS):
		return openTBS()
	case strings.HasPrefix(dev, "unix:"):
		return dialStream("unix", strings.TrimPrefix(dev, "unix:"), name)
	}
	fi, err := os.Stat(dev)
	switch {
	case err == nil && fi.Mode()&os.ModeSocket != 0:
		return dialStream("unix", dev, name)
	case err == nil && fi.Mode()&os.ModeDevice != 0:
		t, err := openDevice(dev)
		if err != nil {
			return nil, openError(name, err)
		}
		return t, nil
	case err == nil:
		return nil, noTPM(name, errors.New("not a TPM device or socket"), fixSoftwareTPM)
	}
	if !strings.ContainsAny(dev, `/\`) {
		if _, _, perr := net.SplitHostPort(dev); perr == nil {
			return dialStream("tcp", dev, name)
		}
	}
	if errors.Is(err, os.ErrNotExist) && dev != defaultDevice {
		return nil, noTPM(name, errors.New("no such socket or device"), "start the software TPM, or fix or unset "+EnvTPM+" to use this machine's TPM")
	}
	return nil, openError(name, err)
}

// streamTPM talks to a TPM over a stream socket (swtpm): one connection, commands and
// responses framed by the TPM's own size field, read in full.
type streamTPM struct {
	conn net.Conn
}

const (
	dialTimeout    = 5 * time.Second
	commandTimeout = 2 * time.Minute // key generation on a slow TPM
	maxResponse    = 64 << 10
	headerSize     = 10
)

func dialStream(network, addr, name string) (transport.TPMCloser, error) {
	conn, err := net.DialTimeout(network, addr, dialTimeout)
	if err != nil {
		return nil, openError(name, err)
	}
	return &streamTPM{conn: conn}, nil
}

// Response codes after which the command is sent again (TPM 2.0 part 2, 6.6.3).
const (
	rcYielded = 0x908
	rcTesting = 0x90A
	rcRetry   = 0x922
)

func (s *streamTPM) Send(cmd []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		if err := s.conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
			return nil, err
		}
		if _, err := s.conn.Write(cmd); err != nil {
			return nil, err
		}
		rsp := make([]byte, headerSize)
		if _, err := io.ReadFull(s.conn, rsp); err != nil {
			return nil, err
		}
		size := binary.BigEndian.Uint32(rsp[2:6])
		if size < headerSize || size > maxResponse {
			return nil, fmt.Errorf("malformed TPM response (size %d)", size)
		}
		rsp = append(rsp, make([]byte, size-headerSize)...)
		if _, err := io.ReadFull(s.conn, rsp[headerSize:]); err != nil {
			return nil, err
		}
		switch binary.BigEndian.Uint32(rsp[6:10]) {
		case rcYielded, rcTesting, rcRetry:
			if attempt < 8 {
				time.Sleep(time.Duration(1<<attempt) * time.Millisecond)
				continue
			}
		}
		return rsp, nil
	}
}

func (s *streamTPM) Close() error { return s.conn.Close() }
