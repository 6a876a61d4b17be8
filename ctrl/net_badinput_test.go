package ctrl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"
)

func rawFrame(kind byte, body []byte) []byte {
	return append(appendFrameHeader(nil, kind, len(body)), body...)
}

func corrJSON(corr uint64, j string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, corr), j...)
}

// TestNetBadFramesCloseOnlyThatConnection: each malformed input closes its own connection; a client on another
// connection, opened before, keeps working, and so does the listener.
func TestNetBadFramesCloseOnlyThatConnection(t *testing.T) {
	ms, voters := startNetCluster(t, 1, nil)
	activeMember(t, ms)
	cl := NewClient(ClientConfig{Voters: voters, Logger: testSlog()})
	defer cl.Close()
	ctx := ctxFor(t, 10*time.Second)
	if _, err := cl.FetchMetadata(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	f := func(name string, in []byte, halfClose bool) {
		t.Helper()
		c, err := net.Dial("tcp", ms[0].addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(in); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		if halfClose { // the peer stops mid-frame
			_ = c.(*net.TCPConn).CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("%s: connection not closed by the controller: %v", name, err)
		}
		if err := cl.SetConfigs(ctx, ConfigResourceBroker, "", map[string]string{"after": name}); err != nil {
			t.Fatalf("%s: controller unusable afterwards: %v", name, err)
		}
	}
	f("oversized", []byte{0xff, 0xff, 0xff, 0xff, frameRequest}, false)
	f("just above the limit", append(binary.BigEndian.AppendUint32(nil, MaxFrameSize+1), frameRequest), false)
	f("zero length", []byte{0, 0, 0, 0, 0}, false)
	f("unknown kind", rawFrame(9, []byte("x")), false)
	f("response kind to a server", rawFrame(frameResponse, corrJSON(1, `{"code":0}`)), false)
	f("garbage json", rawFrame(frameRequest, corrJSON(1, `{"method": nope`)), false)
	f("short rpc body", rawFrame(frameRequest, []byte{1, 2, 3}), false)
	f("garbage raft message", rawFrame(frameRaft, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), false)
	f("truncated body", append(appendFrameHeader(nil, frameRequest, 100), 1, 2, 3), true)
}

// TestNetBadMethodAnswered: a well-framed request for an unknown method, or with a body that does not decode, is
// answered INVALID_REQUEST and the connection stays usable.
func TestNetBadMethodAnswered(t *testing.T) {
	ms, _ := startNetCluster(t, 1, nil)
	activeMember(t, ms)
	c, err := net.Dial("tcp", ms[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	f := func(corr uint64, method, body string, want int16) {
		t.Helper()
		fr, err := rpcFrame(frameRequest, corr, rpcRequest{Method: method, Body: json.RawMessage(body)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(fr); err != nil {
			t.Fatal(err)
		}
		kind, b, err := readFrame(br)
		if err != nil || kind != frameResponse {
			t.Fatalf("%s: kind %d err %v", method, kind, err)
		}
		var resp rpcResponse
		got, err := parseRPC(b, &resp)
		if err != nil || got != corr || resp.Code != want {
			t.Fatalf("%s %s: corr %d code %d (%s) err %v, want corr %d code %d", method, body, got, resp.Code, resp.Msg, err, corr, want)
		}
	}
	f(1, "Nope", `{}`, kerr.InvalidRequest.Code)
	f(2, "CreateTopic", `[1,2]`, kerr.InvalidRequest.Code)
	f(3, "CreateTopic", `{"name":"bad name!","partitions":1,"rf":1}`, kerr.InvalidTopicException.Code)
	f(4, "DeleteTopic", `{"name":"x"}`, kerr.UnknownTopicOrPartition.Code)
	f(5, "FetchMetadata", `{"afterIndex":0,"maxWaitMs":0}`, 0)
}

func TestReadFrame(t *testing.T) {
	m := raftpb.Message{Type: raftpb.MsgHeartbeat, To: 2, From: 1, Term: 3}
	good, err := raftFrame(&m)
	if err != nil {
		t.Fatal(err)
	}
	f := func(in []byte, wantKind byte, wantErr error) {
		t.Helper()
		kind, body, err := readFrame(bytes.NewReader(in))
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				t.Fatalf("readFrame(%x) err %v, want %v", in, err, wantErr)
			}
			return
		}
		if err != nil || kind != wantKind {
			t.Fatalf("readFrame(%x) = %d %v, want kind %d", in, kind, err, wantKind)
		}
		if wantKind == frameRaft {
			var got raftpb.Message
			if err := got.Unmarshal(body); err != nil || got.Term != 3 || got.To != 2 {
				t.Fatalf("raft message round trip: %+v %v", got, err)
			}
		}
	}
	f(good, frameRaft, nil)
	f(nil, 0, io.EOF)
	f(good[:3], 0, io.ErrUnexpectedEOF)
	f(good[:len(good)-1], 0, io.ErrUnexpectedEOF)
	f([]byte{0xff, 0xff, 0xff, 0xff, 2}, 0, errFrameTooBig)
	// A large frame announced but not sent: an error, not a 64 MiB allocation up front.
	f(appendFrameHeader(nil, frameRequest, MaxFrameSize-1), 0, io.ErrUnexpectedEOF)
}

// FuzzFrame feeds arbitrary bytes to the frame decoder and the body parsers: they must never panic, and whatever
// decodes must re-encode to exactly the bytes consumed.
func FuzzFrame(f *testing.F) {
	m := raftpb.Message{Type: raftpb.MsgApp, To: 2, From: 1, Term: 3, Entries: []raftpb.Entry{{Index: 1, Term: 1, Data: []byte("x")}}}
	raftF, _ := raftFrame(&m)
	reqF, _ := rpcFrame(frameRequest, 7, rpcRequest{Method: "Heartbeat", Body: json.RawMessage(`{"BrokerID":1}`)})
	respF, _ := rpcFrame(frameResponse, 7, rpcResponse{Code: 41, Leader: 2})
	f.Add(raftF)
	f.Add(reqF)
	f.Add(append(append([]byte(nil), reqF...), respF...))
	f.Add([]byte{0, 0, 0, 1, 2})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for i := 0; i < 16; i++ {
			before := r.Len()
			kind, body, err := readFrame(r)
			if err != nil {
				return
			}
			consumed := in[len(in)-before : len(in)-r.Len()]
			if re := rawFrame(kind, body); !bytes.Equal(re, consumed) {
				t.Fatalf("frame re-encodes to %x, consumed %x", re, consumed)
			}
			switch kind {
			case frameRaft:
				var m raftpb.Message
				_ = m.Unmarshal(body)
			case frameRequest:
				var req rpcRequest
				_, _ = parseRPC(body, &req)
			case frameResponse:
				var resp rpcResponse
				if _, err := parseRPC(body, &resp); err == nil {
					_ = fromRPCErr(rpcErr{Code: resp.Code, Msg: resp.Msg})
				}
			default:
				t.Fatalf("readFrame accepted kind %d", kind)
			}
		}
	})
}
