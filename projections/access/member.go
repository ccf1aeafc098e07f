package access

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// member is one parsed policy member.
type member struct {
	email   string         // user: or serviceAccount: without '*', lower case
	domain  string         // domain:, lower case
	pattern *regexp.Regexp // user: or serviceAccount: with '*'
}

// matches reports whether the member names the caller whose email and
// hosted domain (the token's hd claim) are given, both lower case. A
// domain: member matches the accounts the domain manages, which Google
// names in hd; not every email at the domain, since anyone can make a
// Google account with an address there that the organization does not
// manage.
func (m member) matches(email, hostedDomain string) bool {
	switch {
	case m.pattern != nil:
		return m.pattern.MatchString(email)
	case m.domain != "":
		return hostedDomain == m.domain
	default:
		return m.email == email
	}
}

// parseMember parses an IAM-style member, returning an error that explains
// what is wrong and what to write instead.
func parseMember(s string) (member, error) {
	kind, value, ok := strings.Cut(s, ":")
	if !ok {
		return member{}, rejectBare(s)
	}
	if strings.TrimSpace(value) != value || value == "" || strings.ContainsAny(value, " \t") {
		return member{}, fmt.Errorf("member %q has an empty value or spaces", s)
	}
	value = strings.ToLower(value)
	switch kind {
	case "user", "serviceAccount":
		return parseEmailMember(kind, value)
	case "domain":
		return parseDomainMember(value)
	case "group":
		return member{}, fmt.Errorf("member %q: group: members are not supported, because resolving a group needs a directory lookup (the Cloud Identity Groups API) that bqobserver does not make; list the people as user: members, or use domain: or a user:*@… pattern", s)
	default:
		return member{}, fmt.Errorf("member %q has an unknown kind %q (want user:, serviceAccount: or domain:)", s, kind+":")
	}
}

// rejectBare explains why a member without a kind is refused.
func rejectBare(s string) error {
	switch s {
	case "allUsers", "allAuthenticatedUsers":
		return fmt.Errorf("member %q is not supported: any Google account can obtain an ID token for any audience; name a domain: or a user:*@… pattern instead", s)
	}
	return fmt.Errorf("member %q has no kind (want user:EMAIL, serviceAccount:EMAIL, domain:DOMAIN or a pattern such as user:*@eng.acme.example)", s)
}

// parseEmailMember parses the value of a user: or serviceAccount: member:
// an email, or a pattern when it holds '*'.
func parseEmailMember(kind, value string) (member, error) {
	local, domain, ok := strings.Cut(value, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return member{}, fmt.Errorf("member %q is not an email address (want one '@' with text on both sides)", kind+":"+value)
	}
	if !strings.Contains(value, "*") {
		return member{email: value}, nil
	}
	if strings.Trim(domain, "*.") == "" {
		return member{}, fmt.Errorf("pattern %q matches every domain; name the domain, as in user:*@eng.acme.example", kind+":"+value)
	}
	if err := checkPatternDomain(domain); err != nil {
		return member{}, fmt.Errorf("pattern %q %w", kind+":"+value, err)
	}
	return member{pattern: globPattern(value)}, nil
}

// checkPatternDomain says why the domain of a pattern would admit accounts
// that anyone can create: a '*' anywhere in it but as a whole first label
// before at least two more (*.eng.acme.example); or a domain of service
// accounts that is not one project's own, since anyone can create a
// project, and so its accounts (PROJECT.iam.gserviceaccount.com is one
// project's; developer., appspot., cloudservices. and the gcp-sa-* service
// agents' domains are every project's).
func checkPatternDomain(domain string) error {
	rest, sub := strings.CutPrefix(domain, "*.")
	switch {
	case strings.Contains(rest, "*"):
		return errors.New("has a '*' in its domain other than a whole first label; name the domain, as in user:*@eng.acme.example or user:*@*.acme.example")
	case sub && strings.Count(rest, ".") < 1:
		return errors.New("matches every domain under a top-level domain; name the organization's domain, as in user:*@*.acme.example")
	}
	if sa, ok := strings.CutSuffix(domain, ".gserviceaccount.com"); ok || domain == "gserviceaccount.com" {
		project, own := strings.CutSuffix(sa, ".iam")
		if !own || sub || strings.Contains(project, ".") || strings.HasPrefix(project, "gcp-sa-") {
			return errors.New("matches service accounts of projects anyone can create; name one project's, as in serviceAccount:*@PROJECT.iam.gserviceaccount.com, or each account")
		}
	}
	return nil
}

// globPattern compiles a pattern in which '*' matches any run of characters
// other than '@' and every other character stands for itself.
func globPattern(glob string) *regexp.Regexp {
	parts := strings.Split(glob, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, "[^@]*") + "$")
}

// domainName is a lower-case DNS name.
var domainName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// parseDomainMember parses the value of a domain: member.
func parseDomainMember(value string) (member, error) {
	if !domainName.MatchString(value) {
		return member{}, fmt.Errorf("member %q is not a domain name (write domain:acme.example; for a pattern use user:*@…)", "domain:"+value)
	}
	return member{domain: value}, nil
}
