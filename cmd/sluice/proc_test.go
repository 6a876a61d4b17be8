package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The process tests run the real binary, built once on first use (unit
// tests alone do not pay for the build).
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func sluiceBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "sluice-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "sluice")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// broker is one `sluice serve` child process. Its stderr goes to a file that
// is printed only if the test fails.
type broker struct {
	t        testing.TB
	cmd      *exec.Cmd
	logPath  string
	spawned  time.Time
	done     chan struct{}
	exitCode int // valid after done is closed

	addr      string  // advertised Kafka address
	metrics   string  // /metrics listener, "" if off
	startupMs float64 // from the "started in" line
}

// spawnBroker starts `sluice serve` on dataDir with loopback port-0
// listeners and JSON logs; args come later on the command line, so they win.
// It does not wait for the broker to listen: see waitStarted.
func spawnBroker(t testing.TB, dataDir string, args ...string) *broker {
	t.Helper()
	return spawn(t, "", append([]string{"--listeners", "PLAINTEXT://127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--log-dirs", dataDir, "--log-format", "json"}, args...)...)
}

// spawn starts `sluice serve args...` in the directory cwd ("": a fresh
// temporary one, so nothing lands in the source tree). The child is in a
// process group of its own and gets SIGKILL when the test binary dies (a
// panic or -timeout), so no broker outlives the test.
func spawn(t testing.TB, cwd string, args ...string) *broker {
	t.Helper()
	bin := sluiceBin(t)
	logDir := t.TempDir()
	if cwd == "" {
		cwd = logDir
	}
	b := &broker{t: t, logPath: filepath.Join(logDir, "serve.log"), done: make(chan struct{})}
	logf, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	b.cmd.Dir = cwd
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.Env = cleanEnv()
	b.cmd.SysProcAttr = childAttr()
	b.spawned = time.Now()
	if err := b.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		err := b.cmd.Wait()
		logf.Close()
		b.exitCode = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.exitCode = ee.ExitCode() // -1 when killed by a signal
		} else if err != nil {
			b.exitCode = -2
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		b.kill()
		if t.Failed() {
			t.Logf("sluice serve %s log:\n%s", strings.Join(args, " "), b.output())
		}
	})
	return b
}

// childAttr puts a child in its own process group (a terminal's ^C does not
// reach it; the test signals it itself) and has the kernel SIGKILL it when
// the test binary exits for any reason. (Pdeathsig fires when the thread
// that forked exits; the Go runtime only ends threads locked with
// LockOSThread, which these tests do not use.)
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// cleanEnv is the test's environment without SLUICE_* settings that would
// change the broker's configuration.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// startBroker spawns a broker and waits until it listens.
func startBroker(t testing.TB, dataDir string, args ...string) *broker {
	t.Helper()
	b := spawnBroker(t, dataDir, args...)
	b.waitStarted()
	return b
}

// waitStarted waits for the "started in" log line and reads the addresses
// from it.
func (b *broker) waitStarted() {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if line := b.findLog("started in "); line != nil {
			b.addr, _ = line["advertised"].(string)
			b.metrics, _ = line["metrics"].(string)
			b.startupMs, _ = line["startup_ms"].(float64)
			return
		}
		select {
		case <-b.done:
			b.t.Fatalf("sluice serve exited with status %d before listening (its log follows)", b.exitCode)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.t.Fatal("sluice serve did not log \"started in\" within 30s")
		}
	}
}

// output is what the broker has written to stdout and stderr so far.
func (b *broker) output() string {
	data, _ := os.ReadFile(b.logPath)
	return string(data)
}

// findLog returns the first JSON log line whose msg starts with prefix.
func (b *broker) findLog(prefix string) map[string]any {
	f, err := os.Open(b.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue // a partial last line, or the metrics package's plain log line
		}
		if msg, _ := line["msg"].(string); strings.HasPrefix(msg, prefix) {
			return line
		}
	}
	return nil
}

// stop sends sig and waits for the process to exit; it returns the status.
func (b *broker) stop(sig syscall.Signal) int {
	b.t.Helper()
	b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
		return b.exitCode
	case <-time.After(40 * time.Second):
		b.t.Fatalf("sluice serve did not exit within 40s of %v", sig)
		return 0
	}
}

// kill sends SIGKILL unless the process has exited, and reaps it.
func (b *broker) kill() {
	select {
	case <-b.done:
		return
	default:
	}
	b.cmd.Process.Kill()
	<-b.done
}
