package ctrl

import (
	"os"
	"path/filepath"
)

// FS is the controller's only way to files, so tests can inject errors and crashes. Implementations must be safe
// for concurrent use on different names; WAL uses one name at a time.
type FS interface {
	MkdirAll(dir string) error
	ReadFile(name string) ([]byte, error)
	// Create creates or truncates name for writing.
	Create(name string) (File, error)
	// OpenAppend opens name for appending, creating it if missing.
	OpenAppend(name string) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// List returns the names (not paths) in dir.
	List(dir string) ([]string, error)
	// SyncDir makes creates, renames and removes in dir durable.
	SyncDir(dir string) error
}

// File is a writable file.
type File interface {
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

// OSFS is FS on the real filesystem.
type OSFS struct{}

func (OSFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (OSFS) Create(name string) (File, error)     { return os.Create(name) }
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (OSFS) Remove(name string) error             { return os.Remove(name) }

func (OSFS) OpenAppend(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

func (OSFS) List(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name()
	}
	return out, nil
}

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
