// Command kfake-server runs franz-go's in-memory fake Kafka cluster (kfake)
// as its own process, so `sluice bench` can be pointed at it exactly as at
// sluice or Kafka, and so tests can pause it (SIGSTOP) or measure its CPU
// through /proc like any broker.
//
// It prints one listen address per broker on stdout, one per line, then a
// line "ready"; it stops on SIGTERM or SIGINT.
//
//	kfake-server -ports 9092            # one broker on :9092
//	kfake-server -brokers 3             # three brokers on random ports
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		portsFlag = flag.String("ports", "", "comma-separated listen ports, one broker each (overrides -brokers); 0 = random")
		brokers   = flag.Int("brokers", 1, "number of brokers on random ports, when -ports is empty")
		dataDir   = flag.String("data-dir", "", "persist the log here (default: memory only)")
		blackhole = flag.Bool("blackhole-produce", false, "acknowledge produces without storing records (no consume possible)")
		seed      = flag.String("seed-topics", "", "comma-separated topics to create at start (default partition count)")
		parts     = flag.Int("default-partitions", 10, "partitions for auto-created and seeded topics")
		autoTopic = flag.Bool("auto-create-topics", false, "create topics on first produce/metadata request")
	)
	flag.Parse()

	opts := []kfake.Opt{kfake.DefaultNumPartitions(*parts)}
	if *portsFlag != "" {
		var ports []int
		for _, s := range strings.Split(*portsFlag, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || p < 0 || p > 65535 {
				fmt.Fprintf(os.Stderr, "kfake-server: bad port %q\n", s)
				return 2
			}
			ports = append(ports, p)
		}
		opts = append(opts, kfake.Ports(ports...))
	} else {
		if *brokers < 1 {
			fmt.Fprintln(os.Stderr, "kfake-server: -brokers must be at least 1")
			return 2
		}
		opts = append(opts, kfake.NumBrokers(*brokers))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if *blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	if *autoTopic {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if *seed != "" {
		opts = append(opts, kfake.SeedTopics(int32(*parts), strings.Split(*seed, ",")...))
	}

	// Subscribe before announcing readiness so a signal sent right after
	// "ready" is never lost to the default handler.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfake-server: %v\n", err)
		return 1
	}
	for _, a := range c.ListenAddrs() {
		fmt.Println(a)
	}
	fmt.Println("ready")
	fmt.Fprintf(os.Stderr, "kfake-server: pid %d serving; SIGTERM or ^C stops it\n", os.Getpid())

	<-sigs
	c.Close()
	return 0
}
