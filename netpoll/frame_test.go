package netpoll

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// sizePrefix is a bare size prefix claiming size bytes.
func sizePrefix(size uint32) []byte { return binary.BigEndian.AppendUint32(nil, size) }

// TestBadInputClosesOnlyThatConnection sends each kind of bad input on its own
// connection while another connection keeps working, and checks the log.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	s, logs := startServer(t, echo, Config{})
	good := dial(t, s)
	gr := bufio.NewReader(good)
	corr := int32(0)
	roundTrip := func() {
		t.Helper()
		corr++
		if _, err := good.Write(appendFrame(nil, 0, 3, corr, "good", false, bodyFor(int(corr)))); err != nil {
			t.Fatal(err)
		}
		expectEcho(t, gr, corr, bodyFor(int(corr)))
	}
	roundTrip()

	tagged := func(tags ...byte) []byte {
		f := binary.BigEndian.AppendUint32(nil, 0)
		f = binary.BigEndian.AppendUint16(f, apiVersionsKey)
		f = binary.BigEndian.AppendUint16(f, 3)
		f = binary.BigEndian.AppendUint32(f, 9)
		f = binary.BigEndian.AppendUint16(f, 0xffff) // null client id
		f = append(f, tags...)
		binary.BigEndian.PutUint32(f, uint32(len(f)-4))
		return f
	}
	rawFrame := func(payload ...byte) []byte { return append(sizePrefix(uint32(len(payload))), payload...) }

	for _, tc := range []struct {
		name, log string
		input     []byte
	}{
		{"claims 2 GiB", "size=2147483647", sizePrefix(0x7fffffff)},
		{"just over max", "size=104857601", sizePrefix(DefaultMaxFrameSize + 1)},
		{"negative size", "size=-16", sizePrefix(0xfffffff0)},
		{"http garbage", "frame size", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"empty frame", "malformed request header", sizePrefix(0)},
		{"header too short", "malformed request header", rawFrame(0, 3, 0, 1, 0, 0, 0, 1, 0)},
		{"client id past end", "malformed request header", rawFrame(0, 3, 0, 1, 0, 0, 0, 1, 0, 50, 'a')},
		{"client id length -2", "malformed request header", rawFrame(0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xfe)},
		{"flexible header without tag buffer", "malformed request header", tagged()},
		{"tagged field past end", "malformed request header", tagged(1, 0, 40, 1, 2)},
		{"bad tag count varint", "malformed request header", tagged(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats().ConnsBadInput
			bad := dial(t, s)
			if _, err := bad.Write(tc.input); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, bad)
			waitFor(t, "bad input counted", func() bool { return s.Stats().ConnsBadInput == before+1 })
			l := logs.String()
			if !contains(l, tc.log) || !contains(l, "remote="+bad.LocalAddr().String()) {
				t.Fatalf("log lacks %q or the remote address %s:\n%s", tc.log, bad.LocalAddr(), l)
			}
			roundTrip()
		})
	}
	waitFor(t, "only the good connection left", func() bool { return s.Stats().ConnsOpen == 1 })
}

func TestTruncatedFrameThenClose(t *testing.T) {
	s, _ := startServer(t, echo, Config{})
	c := dial(t, s)
	frame := appendFrame(nil, 0, 3, 1, "trunc", false, make([]byte, 1000))
	if _, err := c.Write(frame[:len(frame)-100]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "partial frame read", func() bool { return s.Stats().BytesIn > 500 })
	if got := s.Stats().RequestsInFlight; got != 1 {
		t.Fatalf("a partial frame counts as in flight: got %d", got)
	}
	c.Close()
	waitFor(t, "connection cleanup", func() bool {
		st := s.Stats()
		return st.ConnsOpen == 0 && st.RequestsInFlight == 0
	})
	if st := s.Stats(); st.Requests != 0 || st.ConnsBadInput != 0 {
		t.Fatalf("truncated frame must not be served nor count as bad input: %+v", st)
	}
}

func TestMaxFrameSizeConfigurable(t *testing.T) {
	s, _ := startServer(t, echo, Config{MaxFrameSize: 100})
	ok := dial(t, s)
	body := make([]byte, 100-minHeaderLen)
	if _, err := ok.Write(appendFrame(nil, 0, 3, 1, "", false, body)); err != nil {
		t.Fatal(err)
	}
	expectEcho(t, ok, 1, body)
	bad := dial(t, s)
	if _, err := bad.Write(appendFrame(nil, 0, 3, 1, "", false, append(body, 0))); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, bad)
}

// captured records what netpoll handed the handler.
type captured struct {
	key, version int16
	corr         int32
	clientID     *string
	body         []byte
	flexible     bool
}

func capture(ch chan<- captured, respond []byte) HandlerFunc {
	return func(r *Request) {
		ch <- captured{r.Key, r.Version, r.CorrelationID, r.ClientID, append([]byte(nil), r.Body...), r.Flexible()}
		r.Respond(Bytes(respond))
	}
}

// TestHeaderVersions sends requests encoded by kmsg's own RequestFormatter and
// checks the parsed header and body, and the response header version.
func TestHeaderVersions(t *testing.T) {
	got := make(chan captured, 1)
	respBody := []byte("response-body")
	s, _ := startServer(t, capture(got, respBody), Config{})
	conn := dial(t, s)
	r := bufio.NewReader(conn)

	topic := "t"
	for i, tc := range []struct {
		req      kmsg.Request
		clientID *string
		flexible bool // request header v2
		respTag  bool // response header v1
	}{
		{&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "sluice-test", ClientSoftwareVersion: "1"}, kmsg.StringPtr("cid"), true, false},
		{&kmsg.ApiVersionsRequest{Version: 2}, kmsg.StringPtr("cid"), false, false},
		{&kmsg.MetadataRequest{Version: 9, Topics: []kmsg.MetadataRequestTopic{{Topic: &topic}}}, kmsg.StringPtr("meta-client"), true, true},
		{&kmsg.MetadataRequest{Version: 8, Topics: []kmsg.MetadataRequestTopic{{Topic: &topic}}}, nil, false, false},
		{&kmsg.FetchRequest{Version: 12}, kmsg.StringPtr(""), true, true},
	} {
		name := fmt.Sprintf("%s v%d", kmsg.NameForKey(tc.req.Key()), tc.req.GetVersion())
		var opts []kmsg.RequestFormatterOpt
		if tc.clientID != nil {
			opts = append(opts, kmsg.FormatterClientID(*tc.clientID))
		}
		corr := int32(1000 + i)
		frame := kmsg.NewRequestFormatter(opts...).AppendRequest(nil, tc.req, corr)
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		c := <-got
		if c.key != tc.req.Key() || c.version != tc.req.GetVersion() || c.corr != corr || c.flexible != tc.flexible {
			t.Errorf("%s: parsed key=%d version=%d corr=%d flexible=%v", name, c.key, c.version, c.corr, c.flexible)
		}
		if (c.clientID == nil) != (tc.clientID == nil) || (c.clientID != nil && *c.clientID != *tc.clientID) {
			t.Errorf("%s: client id %v, want %v", name, c.clientID, tc.clientID)
		}
		if want := tc.req.AppendTo(nil); !bytes.Equal(c.body, want) {
			t.Errorf("%s: body %x, want %x", name, c.body, want)
		}
		resp, err := readFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		want := binary.BigEndian.AppendUint32(nil, uint32(corr))
		if tc.respTag {
			want = append(want, 0)
		}
		want = append(want, respBody...)
		if !bytes.Equal(resp, want) {
			t.Errorf("%s: response %x, want %x", name, resp, want)
		}
	}
}

// TestFlexTableMatchesKmsg checks the precomputed table against kmsg itself,
// including versions above what kmsg knows.
func TestFlexTableMatchesKmsg(t *testing.T) {
	flexibleSeen := 0
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		r := kmsg.RequestForKey(k)
		if r == nil {
			if isFlexible(k, 0) || isFlexible(k, 100) {
				t.Errorf("unknown key %d flexible", k)
			}
			continue
		}
		for v := int16(0); v <= r.MaxVersion()+3; v++ {
			r.SetVersion(v)
			if got, want := isFlexible(k, v), r.IsFlexible(); got != want {
				t.Errorf("key %d v%d: table says %v, kmsg %v", k, v, got, want)
			}
			if r.IsFlexible() {
				flexibleSeen++
			}
		}
	}
	if flexibleSeen == 0 || isFlexible(-1, 5) || isFlexible(kmsg.MaxKey+1, 5) {
		t.Fatal("table is degenerate")
	}
}

func TestParseHeader(t *testing.T) {
	f := func(frame []byte, wantErr error, wantKey, wantVer int16, wantClient string, wantNull bool, wantBody string) {
		t.Helper()
		h, off, err := parseHeader(frame)
		if err != wantErr {
			t.Fatalf("err %v, want %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if h.key != wantKey || h.version != wantVer || string(h.clientID) != wantClient ||
			h.clientIDNull != wantNull || string(frame[off:]) != wantBody {
			t.Fatalf("got %+v body %q", h, frame[off:])
		}
	}
	v1 := func(key, ver int16, cid []byte, rest string) []byte {
		b := appendFrame(nil, key, ver, 5, string(cid), false, []byte(rest))
		return b[4:]
	}
	f(v1(0, 3, []byte("abc"), "body"), nil, 0, 3, "abc", false, "body")
	f(v1(1000, 1, nil, "x"), nil, 1000, 1, "", false, "x") // unknown key: v1 header
	nullCID := v1(0, 3, nil, "")
	binary.BigEndian.PutUint16(nullCID[8:], 0xffff)
	f(nullCID, nil, 0, 3, "", true, "")
	// Metadata v9 with one tagged field (tag 3, 2 bytes) before the body.
	flex := appendFrame(nil, 3, 9, 5, "c", false, []byte{1, 3, 2, 'h', 'i', 'B'})[4:]
	f(flex, nil, 3, 9, "c", false, "B")
	f(flex[:len(flex)-2], errTaggedFields, 0, 0, "", false, "")
	f([]byte{0, 7, 0, 0, 0, 0, 0, 1, 'x'}, nil, 7, 0, "", true, "x") // ControlledShutdown v0: header v0
	f([]byte{0, 7, 0, 1, 0, 0, 0, 1, 0}, errHeaderShort, 0, 0, "", false, "")
	f(nil, errHeaderShort, 0, 0, "", false, "")
}
