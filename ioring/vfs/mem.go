package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// MemFS is an in-memory FS for tests. It remembers, per file, the content as of
// the last Sync, so CrashClone can model a power cut. Directory operations
// (create, rename, remove) are treated as durable at once: sluice syncs the
// directory after each of them anyway, and modelling lost renames is left to
// real-process crash tests.
type MemFS struct {
	mu    sync.Mutex
	files map[string]*memNode
	dirs  map[string]bool
}

type memNode struct {
	mu     sync.Mutex
	data   []byte
	synced []byte
}

// NewMem returns an empty MemFS.
func NewMem() *MemFS {
	return &MemFS{files: map[string]*memNode{}, dirs: map[string]bool{"/": true, ".": true}}
}

func (m *MemFS) Create(name string) (File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[filepath.Dir(name)] {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrNotExist}
	}
	n, ok := m.files[name]
	if !ok {
		n = &memNode{}
		m.files[name] = n
	}
	n.mu.Lock()
	n.data = n.data[:0]
	n.mu.Unlock()
	return &memFile{n: n, name: name}, nil
}

func (m *MemFS) open(name string, ro bool) (File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{n: n, name: name, ro: ro}, nil
}

func (m *MemFS) OpenRW(name string) (File, error) { return m.open(name, false) }
func (m *MemFS) Open(name string) (File, error)   { return m.open(name, true) }

// OpenDirect opens name for direct writes: like the kernel, the handle
// refuses (EINVAL) a write whose offset, length or memory address is not
// DirectAlign-aligned, so tests catch misaligned direct I/O without a disk.
func (m *MemFS) OpenDirect(name string) (File, error) {
	f, err := m.open(name, false)
	if err != nil {
		return nil, err
	}
	f.(*memFile).direct = true
	return f, nil
}

func (m *MemFS) Remove(name string) error {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[name]; ok {
		delete(m.files, name)
		return nil
	}
	if m.dirs[name] {
		for p := range m.files {
			if filepath.Dir(p) == name {
				return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
}

func (m *MemFS) RemoveAll(name string) error {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := name + "/"
	for p := range m.files {
		if p == name || strings.HasPrefix(p, prefix) {
			delete(m.files, p)
		}
	}
	for d := range m.dirs {
		if d == name || strings.HasPrefix(d, prefix) {
			delete(m.dirs, d)
		}
	}
	return nil
}

func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.files[oldname]; ok {
		delete(m.files, oldname)
		m.files[newname] = n
		return nil
	}
	if m.dirs[oldname] {
		prefix := oldname + "/"
		for p, n := range m.files {
			if strings.HasPrefix(p, prefix) {
				delete(m.files, p)
				m.files[newname+"/"+p[len(prefix):]] = n
			}
		}
		delete(m.dirs, oldname)
		m.dirs[newname] = true
		return nil
	}
	return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
}

func (m *MemFS) MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := dir; !m.dirs[d]; d = filepath.Dir(d) {
		m.dirs[d] = true
	}
	return nil
}

func (m *MemFS) ReadDir(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for p := range m.files {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (m *MemFS) SyncDir(dir string) error { return nil }

func (m *MemFS) Exists(name string) bool {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.files[name]
	return ok || m.dirs[name]
}

// CrashMode says what a crash does to bytes written but not yet synced.
type CrashMode int

const (
	// DropUnsynced keeps exactly what the last Sync of each file covered.
	DropUnsynced CrashMode = iota
	// TornTail keeps the synced content plus a random prefix of an appended
	// unsynced tail, sometimes with its last bytes garbled: a torn write.
	TornTail
)

// CrashClone returns a new MemFS holding what a power cut would leave. rng
// drives TornTail and may be nil for DropUnsynced. Open files of m keep
// pointing at m.
func (m *MemFS) CrashClone(mode CrashMode, rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	for d := range m.dirs {
		c.dirs[d] = true
	}
	names := make([]string, 0, len(m.files))
	for p := range m.files {
		names = append(names, p)
	}
	sort.Strings(names) // deterministic rng use
	for _, p := range names {
		n := m.files[p]
		n.mu.Lock()
		keep := append([]byte(nil), n.synced...)
		if mode == TornTail && len(n.data) > len(n.synced) && bytes.HasPrefix(n.data, n.synced) {
			tail := n.data[len(n.synced):]
			k := rng.Intn(len(tail) + 1)
			keep = append(keep, tail[:k]...)
			if k > 0 && rng.Intn(3) == 0 {
				for i := rng.Intn(k); i < k; i++ {
					keep[len(n.synced)+i] = byte(rng.Intn(256))
				}
			}
		}
		n.mu.Unlock()
		c.files[p] = &memNode{data: keep, synced: append([]byte(nil), keep...)}
	}
	return c
}

type memFile struct {
	n      *memNode
	name   string
	ro     bool
	direct bool // OpenDirect: writes must be DirectAlign-aligned
	closed bool
}

var errClosed = errors.New("vfs: file already closed")

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, errClosed
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, errClosed
	}
	if f.ro {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrPermission}
	}
	if f.direct && (off%DirectAlign != 0 || len(p)%DirectAlign != 0 ||
		(len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%DirectAlign != 0)) {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	end := off + int64(len(p))
	if end > int64(len(f.n.data)) {
		if end > int64(cap(f.n.data)) {
			nd := make([]byte, end, 2*end)
			copy(nd, f.n.data)
			f.n.data = nd
		} else {
			old := int64(len(f.n.data))
			f.n.data = f.n.data[:end]
			if off > old {
				clear(f.n.data[old:off])
			}
		}
	}
	copy(f.n.data[off:], p)
	return len(p), nil
}

func (f *memFile) Sync() error {
	if f.closed {
		return errClosed
	}
	f.n.mu.Lock()
	f.n.synced = append(f.n.synced[:0], f.n.data...)
	f.n.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if f.closed {
		return errClosed
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	if size < int64(len(f.n.synced)) {
		// A shrink that later reaches disk can only remove bytes; model it as durable.
		f.n.synced = f.n.synced[:size]
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	if f.closed {
		return errClosed
	}
	f.closed = true
	return nil
}

func (f *memFile) Fd() uintptr  { return InvalidFd }
func (f *memFile) Name() string { return f.name }
