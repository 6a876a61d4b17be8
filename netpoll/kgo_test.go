package netpoll

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tinyBroker answers ApiVersions and Metadata like a one-node cluster with no
// topics: enough for a real client to connect and issue requests. It
// advertises the address the client connected to.
type tinyBroker struct {
	t *testing.T
	// flexibleAV records that the client's ApiVersions came with header v2,
	// so the v0 response header exception was exercised.
	flexibleAV atomic.Bool
}

func (b *tinyBroker) Serve(r *Request) {
	var resp kmsg.Response
	switch r.Key {
	case kmsg.ApiVersions.Int16():
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = r.Version
		if r.Flexible() {
			b.flexibleAV.Store(true)
		}
		if err := req.ReadFrom(r.Body); err != nil {
			b.t.Errorf("ApiVersions v%d body: %v", r.Version, err)
		}
		av := kmsg.NewPtrApiVersionsResponse()
		av.Version = min(r.Version, 4)
		for _, k := range []struct{ key, max int16 }{{kmsg.ApiVersions.Int16(), 4}, {kmsg.Metadata.Int16(), 12}} {
			v := kmsg.NewApiVersionsResponseApiKey()
			v.ApiKey, v.MinVersion, v.MaxVersion = k.key, 0, k.max
			av.ApiKeys = append(av.ApiKeys, v)
		}
		resp = av
	case kmsg.Metadata.Int16():
		req := kmsg.NewPtrMetadataRequest()
		req.Version = r.Version
		if err := req.ReadFrom(r.Body); err != nil {
			b.t.Errorf("Metadata v%d body: %v", r.Version, err)
		}
		md := kmsg.NewPtrMetadataResponse()
		md.Version = r.Version
		md.ClusterID = kmsg.StringPtr("netpoll-test")
		md.ControllerID = 1
		local := r.Conn.LocalAddr().(*net.TCPAddr)
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port = 1, local.IP.String(), int32(local.Port)
		md.Brokers = append(md.Brokers, br)
		resp = md
	default:
		b.t.Errorf("unexpected request key %d", r.Key)
		r.Conn.Close()
		r.NoResponse()
		return
	}
	// Answer from another goroutine, as the node will.
	go r.Respond(Bytes(resp.AppendTo(nil)))
}

func TestRealClientKgo(t *testing.T) {
	b := &tinyBroker{t: t}
	s, _ := startServer(t, b, Config{})
	host, port, err := net.SplitHostPort(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()), kgo.ClientID("netpoll-kgo"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		t.Fatal(err)
	}
	md := resp.(*kmsg.MetadataResponse)
	if md.Version != 12 {
		t.Errorf("negotiated Metadata v%d, want the advertised max 12", md.Version)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Host != host || md.Brokers[0].Port != int32(p) ||
		md.ClusterID == nil || *md.ClusterID != "netpoll-test" || len(md.Topics) != 0 {
		t.Fatalf("unexpected metadata: %+v", md)
	}
	if !b.flexibleAV.Load() {
		t.Error("client never sent a flexible ApiVersions")
	}
	if st := s.Stats(); st.Requests < 2 || st.ConnsBadInput != 0 {
		t.Fatalf("stats: %+v", st)
	}
}
