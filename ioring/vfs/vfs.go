// Package vfs is the file-system seam under segstore and the ioring engines.
//
// Every file access of the storage engine goes through FS so tests can swap the
// operating system for MemFS, which remembers what was fsynced and can "crash":
// CrashClone drops (or tears) every byte no completed Sync covers. The real
// engines (io_uring, pwritev) need an OS file descriptor and use File.Fd; the
// fake engine uses WriteAt and Sync and so works on any File.
//
// Concurrency: FS implementations are safe for concurrent use. A File is safe
// for concurrent ReadAt/WriteAt/Sync at disjoint ranges, like an os.File.
package vfs

import (
	"io"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// InvalidFd is what File.Fd returns for files that have no OS descriptor.
const InvalidFd = ^uintptr(0)

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable (fdatasync on Linux).
	Sync() error
	// Truncate changes the file's size; it is durable after the next Sync.
	Truncate(size int64) error
	// Size reports the current size.
	Size() (int64, error)
	// Fd is the OS descriptor, or InvalidFd.
	Fd() uintptr
	// Name is the path the file was opened with.
	Name() string
}

// FS opens and manages files.
type FS interface {
	// Create creates or truncates name for reading and writing.
	Create(name string) (File, error)
	// OpenRW opens an existing file for reading and writing.
	OpenRW(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string) error
	// ReadDir lists the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes creations, renames and removals in dir durable.
	SyncDir(dir string) error
	// Exists reports whether name exists.
	Exists(name string) bool
}

// DirectAlign is the alignment direct I/O asks of a write's file offset,
// length and memory address. 4096 satisfies every Linux block device and
// file system that supports O_DIRECT (their logical blocks are 512 or 4096).
const DirectAlign = 4096

// DirectFS is an FS that can open a file for direct I/O: writes skip the page
// cache and must be DirectAlign-aligned in offset, length and memory. The
// handle shares the file with its other open handles (reads through them see
// completed direct writes). A file system without direct I/O fails the open
// (EINVAL); callers fall back to buffered writes.
type DirectFS interface {
	OpenDirect(name string) (File, error)
}

// OS is the real file system.
var OS FS = osFS{}

type osFS struct{}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return unix.Fdatasync(int(f.File.Fd())) }

func (f osFile) Size() (int64, error) {
	st, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func wrap(f *os.File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Create(name string) (File, error) {
	return wrap(os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644))
}
func (osFS) OpenRW(name string) (File, error) { return wrap(os.OpenFile(name, os.O_RDWR, 0)) }
func (osFS) Open(name string) (File, error)   { return wrap(os.Open(name)) }

// OpenDirect opens an existing file write-only with O_DIRECT.
func (osFS) OpenDirect(name string) (File, error) {
	return wrap(os.OpenFile(name, os.O_WRONLY|unix.O_DIRECT, 0))
}
func (osFS) Remove(name string) error    { return os.Remove(name) }
func (osFS) RemoveAll(name string) error { return os.RemoveAll(name) }
func (osFS) Rename(o, n string) error    { return os.Rename(o, n) }
func (osFS) MkdirAll(dir string) error   { return os.MkdirAll(dir, 0o755) }

func (osFS) Exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic replaces name with data so that after a crash either the old
// or the new content is there: write a temporary file, sync it, rename it over
// name, sync the directory.
func WriteFileAtomic(fs FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(data, 0); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}

// ReadFile reads a whole file.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return buf, nil
}
