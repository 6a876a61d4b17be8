package tuning

import (
	"reflect"
	"slices"
	"testing"
)

func TestParseFormatCPUList(t *testing.T) {
	f := func(in string, want []int, canonical string) {
		t.Helper()
		got, err := ParseCPUList(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", in, got, want)
		}
		if s := FormatCPUList(got); s != canonical {
			t.Errorf("format %v: got %q, want %q", got, s, canonical)
		}
	}
	f("", []int{}, "")
	f("0", []int{0}, "0")
	f("0-3\n", []int{0, 1, 2, 3}, "0-3")
	f("8,0-2,10-11,2", []int{0, 1, 2, 8, 10, 11}, "0-2,8,10-11")
	for _, bad := range []string{"a", "3-1", "-1", "1-", "1,,2"} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCPUMask(t *testing.T) {
	f := func(in string, want []int) {
		t.Helper()
		got, err := parseCPUMask(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parse %q: got %v %v, want %v", in, got, err, want)
		}
	}
	f("0", []int{})
	f("00000000,00000000", []int{})
	f("3", []int{0, 1})
	f("1,00000001", []int{0, 32})
	if got := formatCPUMask([]int{0, 32, 33}); got != "3,00000001" {
		t.Errorf("format: %q", got)
	}
	if got := formatCPUMask([]int{8, 9, 10, 11, 13, 14, 15}); got != "ef00" {
		t.Errorf("format: %q", got)
	}
	if _, err := parseCPUMask("xyz"); err == nil {
		t.Error("bad mask accepted")
	}
}

func TestReadTopology(t *testing.T) {
	f := func(name string, fs files, want Topology) {
		t.Helper()
		got, err := (&Host{Root: makeTree(t, fs)}).ReadTopology()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	f("no node dir: one node with the online CPUs", files{
		"/sys/devices/system/cpu/online": "0-1",
	}, Topology{Nodes: []Node{{ID: 0, CPUs: []int{0, 1}}}})

	f("2 nodes x 8, CPUs 3 and 12 offline", files{
		"/sys/devices/system/cpu/online":          "0-2,4-11,13-15",
		"/sys/devices/system/cpu/present":         "0-15",
		"/sys/devices/system/node/node0/cpulist":  "0-7",
		"/sys/devices/system/node/node1/cpulist":  "8-15",
		"/sys/devices/system/node/node1/distance": "21 10",
		"/sys/devices/system/node/possible":       "0-1", // not a nodeN dir
	}, Topology{
		Nodes: []Node{
			{ID: 0, CPUs: []int{0, 1, 2, 4, 5, 6, 7}},
			{ID: 1, CPUs: []int{8, 9, 10, 11, 13, 14, 15}, Distance: []int{21, 10}},
		},
		Offline: []int{3, 12},
	})

	f("no online file: cpuN/online decides, cpu0 has none", files{
		"/sys/devices/system/cpu/cpu0/topology/": "",
		"/sys/devices/system/cpu/cpu1/online":    "0",
		"/sys/devices/system/cpu/cpu2/online":    "1",
		"/sys/devices/system/cpu/cpufreq/":       "",
	}, Topology{Nodes: []Node{{ID: 0, CPUs: []int{0, 2}}}})

	f("memory-only node and a CPU no node claims", files{
		"/sys/devices/system/cpu/online":         "0-4",
		"/sys/devices/system/node/node0/cpulist": "0-1",
		"/sys/devices/system/node/node1/cpulist": "2-3",
		"/sys/devices/system/node/node2/cpulist": "",
	}, Topology{Nodes: []Node{
		{ID: 0, CPUs: []int{0, 1, 4}},
		{ID: 1, CPUs: []int{2, 3}},
		{ID: 2, CPUs: []int{}},
	}})

	if _, err := (&Host{Root: makeTree(t, files{"/sys/": ""})}).ReadTopology(); err == nil {
		t.Error("no CPUs at all: want an error")
	}
}

func TestTopologyHelpers(t *testing.T) {
	topo := Topology{Nodes: []Node{
		{ID: 0, CPUs: []int{0, 1}, Distance: []int{10, 20, 40, 12}},
		{ID: 1, CPUs: []int{2, 3}},
		{ID: 2, CPUs: []int{}},
		{ID: 3, CPUs: []int{4}},
	}}
	if got := topo.OnlineCPUs(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("OnlineCPUs %v", got)
	}
	if topo.NodeOf(3) != 1 || topo.NodeOf(9) != -1 {
		t.Error("NodeOf")
	}
	// node 2 has no CPUs, so it is never a place to run; from node 0 the
	// SLIT row puts node 3 (12) before node 1 (20).
	if got := topo.NodesByDistance(0); !slices.Equal(got, []int{0, 3, 1}) {
		t.Errorf("NodesByDistance(0) = %v", got)
	}
	if got := topo.NodesByDistance(-1); !slices.Equal(got, []int{0, 1, 3}) {
		t.Errorf("NodesByDistance(-1) = %v", got)
	}
	if got := topo.String(); got != "node0: 0-1; node1: 2-3; node2: no CPUs; node3: 4" {
		t.Errorf("String %q", got)
	}
}
