package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicemq/sluice/ioring"
	"github.com/sluicemq/sluice/ioring/vfs"
	"github.com/sluicemq/sluice/netpoll"
	"github.com/sluicemq/sluice/segstore"
)

// Node is one broker process.
//
// Concurrency: New, Start and Close are called once each, in that order, from
// one goroutine; Addr, Advertised and the getters are safe for concurrent
// use after Start. Serve, ConnOpened and ConnClosed are netpoll's to call.
type Node struct {
	cfg       Config
	log       *slog.Logger
	fs        vfs.FS
	store     *segstore.Store
	reg       *registry
	srv       *netpoll.Server
	clusterID string
	m         *nodeMetrics
	fetch     *fetchState
	pids      *producerIDs // InitProducerId's id blocks (producerids.go)
	groups    *groups
	pin       *pinning // numa.pinning: plan, hooks, partition -> shard (pinning.go)
	cluster   *cluster // nil in standalone mode (cluster.go)

	hwck hwCheckpoints // replication-offset-checkpoint, cluster mode (hwcheckpoint.go)

	// adv is the advertised endpoint, set by Start once the port is bound;
	// atomic because the loops may already serve Metadata by then.
	adv atomic.Pointer[endpoint]

	closing atomic.Bool
	async   sync.WaitGroup
	lock    *os.File // flock on <data-dir>/.lock, held until Close
}

// lockDataDir takes an exclusive, non-blocking flock on <dir>/.lock, as
// Kafka does; the kernel drops it if the process dies.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("node: log.dirs %s is in use by another broker (%s is locked)", dir, f.Name())
		}
		return nil, fmt.Errorf("node: lock %s: %w", f.Name(), err)
	}
	return f, nil
}

func (n *Node) unlock() {
	if n.lock != nil {
		n.lock.Close() // closing the descriptor releases the flock
		n.lock = nil
	}
}

// New opens (or initializes) the data directory, recovers every partition and
// loads the metadata. It does not listen yet: call Start.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, fs: vfs.OS}
	if cfg.Cluster != nil && cfg.ClusterID == "" {
		n.cfg.ClusterID = clusterIDFor(cfg.Cluster.Voters)
	}
	if err := n.fs.MkdirAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	// Before anything reads or writes the directory: a second broker on the
	// same log.dirs would recover, checkpoint and mark a clean shutdown over
	// the running one's files.
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n.lock = lock
	id, err := n.loadMetaProperties()
	if err != nil {
		n.unlock()
		return nil, err
	}
	n.clusterID = id
	if n.pids, err = openProducerIDs(n.fs, cfg.DataDir); err != nil {
		n.unlock()
		return nil, err
	}
	eng, err := ioring.New(ioring.Options{Engine: cfg.IOEngine, Logger: cfg.Logger})
	if err != nil {
		n.unlock()
		return nil, fmt.Errorf("node: io engine: %w", err)
	}
	// Metrics exist before the store so the committer can feed them; their
	// gauges read n.store and n.reg only when scraped, after New.
	n.m = newNodeMetrics(n)
	sc := segstore.Config{
		Dir: cfg.DataDir, FS: n.fs, Engine: eng, Flush: cfg.Flush,
		FlushMessages: cfg.FlushMessages, FlushEvery: cfg.FlushEvery,
		CheckpointEvery: cfg.CheckpointEvery, Defaults: storeDefaults(cfg.Log), Now: cfg.Now, Logger: cfg.Logger,
		OnRound: n.m.onRound,
		Cleaner: segstore.CleanerConfig{Disable: !cfg.CleanerEnable, Backoff: cfg.CleanerBackoff,
			DedupeBufferBytes: cfg.CleanerDedupeBytes, OnClean: n.m.onClean},
		ProducerIDExpiration:           cfg.ProducerIDExpiration,
		ProducerIDExpirationCheckEvery: cfg.ProducerIDExpirationCheck,
		NoDirectWrites:                 cfg.Cluster != nil && cfg.Cluster.FollowerPageCache == "drop",
	}
	n.pin = newPinning(&n.cfg)
	n.pin.configureStore(&sc, func() (ioring.Engine, error) {
		return ioring.New(ioring.Options{Engine: cfg.IOEngine, Logger: cfg.Logger})
	})
	n.pin.registerShardGauges(cfg.Metrics)
	n.store, err = segstore.Open(sc)
	if err != nil {
		n.unlock()
		return nil, fmt.Errorf("node: %w", err)
	}
	n.reg = newRegistry(&n.cfg, n.fs, n.store)
	if cfg.Cluster == nil {
		err = n.reg.load()
	} else {
		// The controllers' metadata log says which topics exist; reconcile
		// opens the replicas' logs as it learns them.
		n.cluster, err = newCluster(n)
	}
	if err != nil {
		n.store.Close()
		n.unlock()
		return nil, err
	}
	n.fetch = newFetchState(n)
	n.groups = newGroups(n)
	return n, nil
}

// Start listens for Kafka clients (a controller-only node has no Kafka
// listener) and joins the cluster. It returns once the socket is bound.
func (n *Node) Start() error {
	if c := n.cluster; c != nil && !c.cfg.Broker {
		c.start()
		n.log.Info("sluice controller running", "node_id", n.cfg.NodeID, "controller_listen", c.net.Addr().String(),
			"cluster_id", n.clusterID, "data_dir", n.cfg.DataDir)
		return nil
	}
	n.cfg.Net.OnLoopStart = n.pin.loopHook()
	n.srv = netpoll.NewServer(n, n.cfg.Net)
	if err := n.srv.Start(n.cfg.Listen); err != nil {
		return err
	}
	bound := n.srv.Addr().(*net.TCPAddr)
	host, port, _ := splitHostPort(n.cfg.Listen)
	if n.cfg.Advertised != "" {
		host, port, _ = splitHostPort(n.cfg.Advertised)
	} else {
		port = bound.Port
	}
	// A blank or wildcard host cannot be dialled: advertise this machine's
	// address instead (Kafka uses the canonical host name).
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = reachableHost()
	}
	n.adv.Store(&endpoint{host: host, port: int32(port)})
	n.groups.start()
	if n.cluster != nil {
		n.cluster.start()
	}
	topics, parts := n.reg.count()
	n.log.Info("sluice listening", "listen", bound.String(), "advertised", n.Advertised(),
		"node_id", n.cfg.NodeID, "cluster_id", n.clusterID, "topics", topics, "partitions", parts,
		"data_dir", n.cfg.DataDir, "flush_policy", n.cfg.Flush)
	return nil
}

// Addr is the bound listener address (nil before Start).
func (n *Node) Addr() net.Addr {
	if n.srv == nil {
		return nil
	}
	return n.srv.Addr()
}

// endpoint is an advertised host and port.
type endpoint struct {
	host string
	port int32
}

// advertised is where clients should connect; before Start finishes it is
// the configured listener (only a client racing Start can see that).
func (n *Node) advertised() (string, int32) {
	if e := n.adv.Load(); e != nil {
		return e.host, e.port
	}
	h, p, _ := splitHostPort(n.cfg.Listen)
	return h, int32(p)
}

// Advertised is the host:port clients are told to connect to.
func (n *Node) Advertised() string {
	h, p := n.advertised()
	return net.JoinHostPort(h, strconv.Itoa(int(p)))
}

// ClusterID is the cluster id from meta.properties.
func (n *Node) ClusterID() string { return n.clusterID }

// Close shuts down gracefully: stop reading requests, answer what was read
// (parked fetches answer at once), wait for admin work, then flush and
// checkpoint every log and mark the shutdown clean. ctx bounds the network
// part; the storage is closed either way.
func (n *Node) Close(ctx context.Context) error {
	if n.cluster != nil {
		n.cluster.stop(ctx) // leaderships move away while clients can still be redirected
	}
	n.closing.Store(true)
	n.fetch.shutdown()
	// Parked joins and syncs answer now, so the listener's drain below does
	// not wait for rebalances; the coordinator's last writes complete
	// before the store closes.
	n.groups.coord.Close()
	var errs []error
	if n.srv != nil {
		errs = append(errs, n.srv.Stop(ctx))
	}
	n.async.Wait()
	errs = append(errs, n.store.Close())
	n.unlock()
	return errors.Join(errs...)
}

// loadMetaProperties reads meta.properties (Kafka's KRaft format) or writes
// a new one; it returns the cluster id.
func (n *Node) loadMetaProperties() (string, error) {
	path := filepath.Join(n.cfg.DataDir, "meta.properties")
	data, err := vfs.ReadFile(n.fs, path)
	if err != nil && n.fs.Exists(path) {
		return "", fmt.Errorf("node: %w", err)
	}
	if err == nil {
		props := parseProps(string(data))
		if id := props["node.id"]; id != "" && id != strconv.Itoa(int(n.cfg.NodeID)) {
			return "", fmt.Errorf("node: %s says node.id=%s but this broker is configured with node.id=%d",
				path, id, n.cfg.NodeID)
		}
		if props["cluster.id"] == "" {
			return "", fmt.Errorf("node: %s has no cluster.id", path)
		}
		return props["cluster.id"], nil
	}
	id := n.cfg.ClusterID
	if id == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id = base64.RawURLEncoding.EncodeToString(b[:])
	}
	body := fmt.Sprintf("#\n#%s\nnode.id=%d\nversion=1\ncluster.id=%s\n", time.Now().UTC().Format(time.RFC1123), n.cfg.NodeID, id)
	if err := vfs.WriteFileAtomic(n.fs, path, []byte(body)); err != nil {
		return "", fmt.Errorf("node: write %s: %w", path, err)
	}
	return id, nil
}

// parseProps reads Java-style key=value lines (no continuations), skipping
// comments.
func parseProps(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// reachableHost picks an address other machines can use when the listener
// binds a wildcard: the first non-loopback unicast address, else the hostname.
func reachableHost() string {
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "127.0.0.1"
}
