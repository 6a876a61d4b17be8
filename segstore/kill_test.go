package segstore

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicemq/sluice/ioring"
)

const appenderEnv = "SLUICE_SEGSTORE_APPENDER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(appenderEnv); dir != "" {
		runAppender(dir)
		return
	}
	os.Exit(m.Run())
}

const killParts = 4

// killBatch is the batch the appender writes as its n-th append to partition
// p: deterministic, so the verifier can rebuild it byte for byte.
func killBatch(p, n int) []byte {
	return makeBatch(1+(p+n)%5, 50+(n*37)%900, int64(1_000_000+n), nil)
}

// runAppender is the child process: it opens the store (recovering whatever
// the last kill left), appends from one goroutine per partition with
// policy=ack, and prints "ack <partition> <n> <base>" once each append is
// durable. It never exits by itself; the test kills it.
func runAppender(dir string) {
	eng, err := ioring.New(ioring.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st, err := Open(Config{Dir: dir, Engine: eng, Flush: FlushAck, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	var outMu sync.Mutex
	fmt.Println("ready " + eng.Name())
	for p := 0; p < killParts; p++ {
		l, err := st.CreateLog("kill", int32(p), LogConfig{SegmentBytes: 64 << 10})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		start := l.Offsets().End // continue numbering from what survived
		go func(p int, l *Log) {
			sem := make(chan struct{}, 8)
			for n := int(start); ; n++ {
				sem <- struct{}{}
				n := n
				_, err := l.Append(killBatch(p, n), 1, func(r AppendResult) {
					<-sem
					if r.Err != nil {
						fmt.Fprintln(os.Stderr, "append:", r.Err)
						os.Exit(1)
					}
					outMu.Lock()
					fmt.Printf("ack %d %d %d\n", p, n, r.BaseOffset)
					outMu.Unlock()
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}(p, l)
	}
	select {}
}

// TestKill9Appender runs the appender as a real process, kills it with
// SIGKILL at a random moment, and checks after each restart that every
// append it acknowledged — in this cycle and all earlier ones — is on disk
// byte for byte at its offset.
func TestKill9Appender(t *testing.T) {
	cycles := 20
	if testing.Short() {
		cycles = 3
	}
	if s := os.Getenv("SLUICE_KILL_CYCLES"); s != "" {
		cycles, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	acked := map[[2]int]int64{} // (partition, n) -> base offset
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	total := 0
	for c := 0; c < cycles; c++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), appenderEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		deadline := time.After(time.Duration(50+rng.Intn(250)) * time.Millisecond)
		killed := false
		for line := range lines {
			if strings.HasPrefix(line, "ack ") {
				var p, n int
				var base int64
				fmt.Sscanf(line, "ack %d %d %d", &p, &n, &base)
				acked[[2]int{p, n}] = base
				total++
			}
			if !killed {
				select {
				case <-deadline:
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
				default:
				}
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("cycle %d: appender exited by itself: %v\n%s", c, err, stderr.String())
		}
		verifyKilled(t, dir, acked, c)
	}
	t.Logf("%d kill -9 cycles, %d acknowledged appends verified after every restart", cycles, total)
}

func verifyKilled(t *testing.T, dir string, acked map[[2]int]int64, cycle int) {
	t.Helper()
	eng, err := ioring.New(ioring.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(Config{Dir: dir, Engine: eng, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("cycle %d: recovery failed: %v", cycle, err)
	}
	defer func() {
		// Leave it as a crash would (no clean marker) so the next child recovers.
		st.closing.Store(true)
		st.stopCommitters()
		for _, l := range st.Logs() {
			l.closeSegs()
		}
		eng.Close()
	}()
	for k, base := range acked {
		l := st.Log("kill", int32(k[0]))
		if l == nil {
			t.Fatalf("cycle %d: partition %d gone", cycle, k[0])
		}
		want := killBatch(k[0], k[1])
		stampOffsets(want, base, 1)
		got, err := l.ReadCopy(base, 1, -1, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("cycle %d: acknowledged append %v at offset %d: err %v, %d bytes, equal=%v",
				cycle, k, base, err, len(got), bytes.Equal(got, want))
		}
	}
}
