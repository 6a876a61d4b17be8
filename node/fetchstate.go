package node

// fetchState will hold fetch sessions and parked fetches (api_01_fetch.go).
type fetchState struct{ n *Node }

func newFetchState(n *Node) *fetchState { return &fetchState{n: n} }

// shutdown answers every parked fetch now.
func (f *fetchState) shutdown() {}
