// Package ioring runs batches of file writes and fdatasyncs for the storage
// engine: many partitions' appends and syncs go to the kernel together, which
// is what makes group commit (fsync before ack) cheap.
//
// Three engines share the Engine interface:
//   - uring: io_uring bound directly through golang.org/x/sys/unix (see uring.go
//     for ring setup and the completion model);
//   - sync: pwritev + fdatasync on a bounded goroutine pool, chosen when
//     io_uring_setup is refused (EPERM/ENOSYS: kernel.io_uring_disabled,
//     container seccomp) or forced with io.engine=sync;
//   - fake: tests only; runs ops through vfs.File methods (so it works on
//     vfs.MemFS) and injects short writes and errors.
//
// Concurrency: an Engine is owned by one goroutine (segstore's committer). Do
// must not be called concurrently with itself or Close.
package ioring

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicemq/sluice/ioring/vfs"
)

// OpKind is what an Op does.
type OpKind uint8

const (
	// OpWrite writes Bufs, in order, at Off (pwritev / IORING_OP_WRITEV).
	OpWrite OpKind = iota
	// OpSync makes File's data durable (fdatasync / IORING_OP_FSYNC with
	// IORING_FSYNC_DATASYNC).
	OpSync
)

// Op is one I/O request. The caller fills the request fields; Do fills the
// result fields. The buffers must stay untouched until Do returns.
type Op struct {
	Kind OpKind
	File vfs.File
	Off  int64
	Bufs [][]byte
	// Link makes the next op in the batch run only after this one succeeds
	// completely (IOSQE_IO_LINK). Used to chain a write and its fdatasync.
	Link bool

	// N is the number of bytes written (writes only).
	N int64
	// Err is nil on success. A write that fails part way reports the bytes that
	// did land in N. An op that never ran because an op it was linked after
	// failed reports ErrCanceled.
	Err error
}

// Len is the total length of a write's buffers.
func (op *Op) Len() int64 {
	var n int64
	for _, b := range op.Bufs {
		n += int64(len(b))
	}
	return n
}

// ErrCanceled marks an op that did not run because an earlier op in its link
// chain failed.
var ErrCanceled = errors.New("ioring: not run: an earlier linked op failed")

// Engine executes batches of ops.
type Engine interface {
	// Do submits every op (in one io_uring_enter where the engine can) and
	// returns once all have completed. Writes are completed in full — short
	// writes are resubmitted for the remainder — or carry an error. An fsync
	// that ran and failed is reported and never retried: after a failed
	// fdatasync the kernel may have dropped the dirty pages, so a retry that
	// succeeds would lie. Ops not linked to each other may complete in any
	// order. Not safe for concurrent use.
	Do(ops []Op)
	// Name says which engine runs: "uring", "sync" or "fake".
	Name() string
	// Close releases the engine. Not safe to call concurrently with Do.
	Close() error
}

// Options configures New.
type Options struct {
	// Engine is "auto" (default: uring, else sync), "uring" or "sync".
	Engine string
	// Entries is the io_uring submission queue size (default 256).
	Entries uint32
	// Workers bounds the sync engine's goroutines (default 8).
	Workers int
	// Logger receives the line saying which engine runs (default slog.Default).
	Logger *slog.Logger
}

// New returns the engine opts ask for. With "auto" it falls back to the sync
// engine when io_uring cannot be set up, and logs why.
func New(opts Options) (Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Entries == 0 {
		opts.Entries = 256
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	switch opts.Engine {
	case "", "auto":
		e, err := NewUring(opts.Entries)
		if err == nil {
			log.Info("io engine", "engine", e.Name(), "entries", opts.Entries)
			return e, nil
		}
		log.Warn("io_uring unavailable, using pwritev+fdatasync", "err", err)
		return NewSync(opts.Workers), nil
	case "uring":
		e, err := NewUring(opts.Entries)
		if err != nil {
			return nil, fmt.Errorf("io.engine=uring: %w", err)
		}
		log.Info("io engine", "engine", e.Name(), "entries", opts.Entries)
		return e, nil
	case "sync":
		log.Info("io engine", "engine", "sync", "workers", opts.Workers)
		return NewSync(opts.Workers), nil
	default:
		return nil, fmt.Errorf("io.engine=%q: want auto, uring or sync", opts.Engine)
	}
}
