package access

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIsLoopbackAddr(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1:8080":            true,
		"127.0.0.1":                 true,
		"127.10.20.30:80":           true,
		"[::1]:8080":                true,
		"::1":                       true,
		"[::1]":                     true,
		"localhost:8080":            true,
		"LocalHost:8080":            true,
		"localhost":                 true,
		"[::ffff:127.0.0.1]:8080":   true,
		":8080":                     false,
		"":                          false,
		"0.0.0.0:8080":              false,
		"[::]:8080":                 false,
		"10.0.0.5:8080":             false,
		"192.168.1.10:8080":         false,
		"example.com:8080":          false,
		"localhost.evil.example:80": false,
		"128.0.0.1:8080":            false,
	}
	got := make(map[string]bool)
	for addr := range tests {
		got[addr] = IsLoopbackAddr(addr)
	}
	if diff := cmp.Diff(tests, got); diff != "" {
		t.Errorf("IsLoopbackAddr() mismatch (-want +got):\n%s", diff)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1:8080":                 true,
		"127.0.0.1":                      true,
		"[::1]:8080":                     true,
		"localhost:8080":                 true,
		"LOCALHOST":                      true,
		"localhost.":                     true,
		"bqobserver.localhost:8080":      true,
		"[::ffff:127.0.0.1]:8080":        true,
		"rebind.attacker.example:8080":   false,
		"localhost.attacker.example":     false,
		"127.0.0.1.attacker.example":     false,
		"10.0.0.5:8080":                  false,
		"":                               false,
		"0.0.0.0:8080":                   false,
		"bqobserver.acme.example":        false,
		"xn--localhost-attacker.example": false,
	}
	got := make(map[string]bool)
	for host := range tests {
		got[host] = IsLoopbackHost(host)
	}
	if diff := cmp.Diff(tests, got); diff != "" {
		t.Errorf("IsLoopbackHost() mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	policy := mustPolicy(t, testPolicy)
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "default mode on loopback", cfg: Config{ListenAddr: "127.0.0.1:8080"}},
		{name: "none on all interfaces", cfg: Config{Mode: ModeNone, ListenAddr: ":8080"}, want: []string{
			"--auth=none on --http-addr=:8080 would show every job and query of the organization to anyone who can reach it: " +
				"set --auth=iap or --auth=oidc with --policy, listen on a loopback address such as --http-addr=127.0.0.1:8080, " +
				"or pass --allow-unauthenticated if the network in front is trusted",
		}},
		{name: "none on all interfaces, on purpose", cfg: Config{Mode: ModeNone, ListenAddr: "0.0.0.0:8080", AllowUnauthenticated: true}},
		{name: "none with a policy", cfg: Config{Mode: ModeNone, ListenAddr: "localhost:8080", Policy: policy}, want: []string{
			`--policy has no effect with --auth=none, where every request is the admin "anonymous": set --auth=iap or --auth=oidc`,
		}},
		{name: "iap complete", cfg: Config{Mode: ModeIAP, IAPAudience: iapAud, Policy: policy, ListenAddr: ":8080"}},
		{name: "iap incomplete", cfg: Config{Mode: ModeIAP, OIDCAudience: oidcAud}, want: []string{
			"--auth=iap needs --iap-audience",
			"--auth=iap needs --policy: without one nobody may see anything",
		}},
		{name: "oidc complete", cfg: Config{Mode: ModeOIDC, OIDCAudience: oidcAud, Policy: policy}},
		{name: "oidc without audience", cfg: Config{Mode: ModeOIDC, IAPAudience: iapAud, Policy: policy}, want: []string{
			"--auth=oidc needs --oidc-audience",
		}},
		{name: "oidc with another issuer", cfg: Config{Mode: ModeOIDC, OIDCAudience: oidcAud, OIDCIssuer: "https://login.acme.example", JWKSURL: "https://login.acme.example/jwks", Policy: policy}},
		{name: "oidc with another issuer and Google's keys", cfg: Config{Mode: ModeOIDC, OIDCAudience: oidcAud, OIDCIssuer: "https://login.acme.example", Policy: policy}, want: []string{
			"--oidc-issuer=https://login.acme.example needs --auth-jwks-url: Google's keys do not sign its tokens",
		}},
		{name: "unknown mode", cfg: Config{Mode: "basic"}, want: []string{"--auth=basic: unknown mode (want none, iap or oidc)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, joined(tt.cfg.Validate())); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
			_, err := New(tt.cfg, nil)
			if diff := cmp.Diff(tt.want, joined(err)); diff != "" {
				t.Errorf("New() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
