// ApiVersions (key 18), versions 0-4.
//
// Lists every API registered in this package with its version range. An
// unsupported request version gets Kafka's fallback: a v0 response with
// UNSUPPORTED_VERSION and the full list, so the client can pick a version.
// Deviations: no supported/finalized features are reported (there are none
// to negotiate yet); client software name/version are not validated.
package node

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicemq/sluice/netpoll"
)

const apiVersionsKey = 18

func init() {
	registerAPI(&apiDef{key: apiVersionsKey, min: 0, max: 4, handle: handleApiVersions})
}

func supportedAPIs() []kmsg.ApiVersionsResponseApiKey {
	var out []kmsg.ApiVersionsResponseApiKey
	for _, d := range apis {
		if d != nil {
			out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: d.key, MinVersion: d.min, MaxVersion: d.max})
		}
	}
	return out
}

func handleApiVersions(n *Node, c *call) {
	resp := c.kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = supportedAPIs()
	c.respond(resp)
}

// answerApiVersionsFallback answers an ApiVersions request whose version is
// newer than this broker serves. netpoll writes ApiVersions responses with
// header v0, so a v0 body is what the client can read.
func (n *Node) answerApiVersionsFallback(req *netpoll.Request) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = supportedAPIs()
	req.Respond(netpoll.Bytes(resp.AppendTo(nil)))
}
