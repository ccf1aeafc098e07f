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

// IsLoopbackHost reports whether a request's Host (host or host:port) names
// this machine's loopback interface: localhost or a name under .localhost
// (which browsers resolve to loopback themselves), 127.0.0.0/8 or ::1. A
// service that answers every caller as an admin checks it, because a page
// of another site can rebind its own name to 127.0.0.1 and then call the
// service as the same origin (DNS rebinding); its requests name that site.
func IsLoopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}
