package repl

import (
	"testing"

	"github.com/sluicemq/sluice/segstore"
)

func TestDecideTruncation(t *testing.T) {
	// The follower holds epoch 1 at [0,5), epoch 3 at [5,9), epoch 6 at [9,12).
	local := []segstore.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 3, StartOffset: 5}, {Epoch: 6, StartOffset: 9}}
	f := func(name string, entries []segstore.EpochEntry, start, leo int64, ans EpochEnd, want Truncation) {
		t.Helper()
		if got := DecideTruncation(entries, start, leo, ans); got != want {
			t.Fatalf("%s: got %+v, want %+v", name, got, want)
		}
	}
	f("leader has the epoch, same end: nothing to cut", local, 0, 12, EpochEnd{6, 12}, Truncation{12, true})
	f("leader has the epoch, ends later: nothing to cut", local, 0, 12, EpochEnd{6, 20}, Truncation{12, true})
	f("leader's epoch 6 ended earlier", local, 0, 12, EpochEnd{6, 10}, Truncation{10, true})
	f("leader's last common epoch 3 ends earlier than ours", local, 0, 12, EpochEnd{3, 7}, Truncation{7, true})
	f("leader's epoch 3 ends later than ours: cut our epoch 6", local, 0, 12, EpochEnd{3, 11}, Truncation{9, true})
	f("leader answers epoch 4 we never had: walk back to our 3", local, 0, 12, EpochEnd{4, 8}, Truncation{9, false})
	f("leader answers epoch 2 we never had: walk back to our 1", local, 0, 12, EpochEnd{2, 3}, Truncation{5, false})
	f("we have no epoch at or below the answer", []segstore.EpochEntry{{Epoch: 5, StartOffset: 4}}, 0, 8, EpochEnd{2, 6}, Truncation{4, true})
	f("our only epoch is one the leader never had", []segstore.EpochEntry{{Epoch: 2, StartOffset: 0}}, 0, 4, EpochEnd{1, 4}, Truncation{0, true})
	f("leader knows no epoch at or below ours", local, 2, 12, EpochEnd{-1, -1}, Truncation{2, true})
	f("empty log", nil, 0, 0, EpochEnd{3, 10}, Truncation{0, true})
	f("HW is never used: a follower ahead of its HW keeps it", local, 0, 12, EpochEnd{6, 12}, Truncation{12, true})
}

// TestTruncationWalkBackConverges applies DecideTruncation repeatedly, as a
// follower does, against a leader's epoch history and checks that it stops at
// the first offset where the histories differ.
func TestTruncationWalkBackConverges(t *testing.T) {
	f := func(name string, leader []segstore.EpochEntry, leaderLEO int64, follower []segstore.EpochEntry, followerLEO, want int64) {
		t.Helper()
		ents, leo := append([]segstore.EpochEntry(nil), follower...), followerLEO
		for round := 0; ; round++ {
			if round > 10 {
				t.Fatalf("%s: no convergence", name)
			}
			ep, end := endOffsetFor(leader, leaderLEO, LastEpoch(ents))
			tr := DecideTruncation(ents, 0, leo, EpochEnd{ep, end})
			leo = tr.Offset
			for len(ents) > 0 && ents[len(ents)-1].StartOffset >= leo {
				ents = ents[:len(ents)-1]
			}
			if tr.Done {
				break
			}
		}
		if leo != want {
			t.Fatalf("%s: truncated to %d, want %d", name, leo, want)
		}
	}
	f("KIP-101 scenario 2", []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 1}}, 2, []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}}, 2, 1)
	f("two unknown epochs", []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 5, StartOffset: 10}}, 30,
		[]segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 8}, {Epoch: 4, StartOffset: 12}}, 20, 8)
	f("identical", []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 5}}, 9, []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 5}}, 9, 9)
	f("follower behind", []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 5}}, 9, []segstore.EpochEntry{{Epoch: 0, StartOffset: 0}}, 3, 3)
}
