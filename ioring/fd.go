package ioring

import (
	"errors"
	"math"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// ErrNoFd is the error of an op whose file has no OS descriptor (a vfs.MemFS
// file): the real engines hand descriptors to the kernel, only the fake engine
// runs such ops.
var ErrNoFd = errors.New("ioring: file has no OS descriptor (only the fake engine runs vfs.MemFS files)")

var (
	errBadKind = errors.New("ioring: unknown op kind")
	errClosed  = errors.New("ioring: engine closed")
)

// fdOf is f's descriptor, or -1 when it has none the kernel could use.
func fdOf(f vfs.File) int32 {
	if f == nil {
		return -1
	}
	fd := f.Fd()
	if fd == vfs.InvalidFd || fd > math.MaxInt32 {
		return -1
	}
	return int32(fd)
}
