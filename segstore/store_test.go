package segstore

import (
	"errors"
	"testing"
)

// TestDeleteLogDuringRound deletes a log while its write is on "disk": the
// write must go to the (pinned) segment file, not a closed descriptor, the
// append completes, and later calls get ErrClosed.
func TestDeleteLogDuringRound(t *testing.T) {
	e := newEnv(t, nil)
	l := e.log("del", 0, LogConfig{})
	g := newGate(e)
	res := make(chan AppendResult, 1)
	if _, err := l.Append(makeBatch(1, 10, 1, nil), 0, func(r AppendResult) { res <- r }); err != nil {
		t.Fatal(err)
	}
	waitCh(t, g.entered)
	if err := e.st.DeleteLog("del", 0); err != nil {
		t.Fatal(err)
	}
	g.release <- struct{}{}
	e.eng.BeforeDo = nil
	if r := waitCh(t, res); r.Err != nil {
		t.Fatalf("append in flight at delete: %v", r.Err)
	}
	if _, err := l.Append(makeBatch(1, 10, 1, nil), 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after delete: %v", err)
	}
	if e.fs.Exists("/data/del-0") {
		t.Fatal("partition directory still there")
	}
	if e.st.Log("del", 0) != nil {
		t.Fatal("log still listed")
	}
}
