package access

import (
	"net"
	"net/netip"
	"strings"
)

// IsLoopbackAddr reports whether a listen address (host:port, host, or
// [v6]:port) is on a loopback interface only: localhost, 127.0.0.0/8 or ::1.
// An empty host listens on every interface and is not loopback; neither is
// any other name, which could resolve anywhere.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}
