package access

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"
)

// ParsePolicy parses a policy file (YAML or JSON) named name and checks it
// whole. The error joins one *PolicyError per problem, each naming its line:
// unknown keys, unknown roles, malformed or unsupported members, an entry
// without members, show_queries outside a viewer entry, a policy that grants
// nothing.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	root, err := decodeYAML(data)
	if err != nil {
		return nil, &PolicyError{File: name, Reason: err.Error()}
	}
	p := policyParser{file: name}
	entries := p.document(root)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b error) int { return a.(*PolicyError).Line - b.(*PolicyError).Line })
		return nil, errors.Join(p.errs...)
	}
	return &Policy{entries: entries}, nil
}

// decodeYAML returns the root node of the single document in data, nil for
// an empty file.
func decodeYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("line %d: a policy file holds one YAML document", more.Line)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// policyParser walks the policy's YAML nodes, collecting every problem.
type policyParser struct {
	file string
	errs []error // each a *PolicyError
}

// fail records a problem at n's line.
func (p *policyParser) fail(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &PolicyError{File: p.file, Line: n.Line, Reason: fmt.Sprintf(format, args...)})
}

// document checks the top level: a mapping with a non-empty roles list.
func (p *policyParser) document(root *yaml.Node) []entry {
	if root == nil {
		p.errs = append(p.errs, &PolicyError{File: p.file, Line: 1, Reason: "empty policy: it grants nothing (want a roles: list)"})
		return nil
	}
	fields := p.mapping(root, "the policy", "roles")
	roles, ok := fields["roles"]
	if !ok {
		if root.Kind == yaml.MappingNode {
			p.fail(root, "missing roles: the policy grants nothing")
		}
		return nil
	}
	return p.roles(roles)
}

// roles checks the roles list.
func (p *policyParser) roles(n *yaml.Node) []entry {
	n = resolveAlias(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "roles must be a list of entries with role: and members:")
		return nil
	}
	if len(n.Content) == 0 {
		p.fail(n, "roles is empty: the policy grants nothing")
	}
	var entries []entry
	for _, item := range n.Content {
		if e, ok := p.entry(item); ok {
			entries = append(entries, e)
		}
	}
	return entries
}

// entry checks one item of the roles list.
func (p *policyParser) entry(n *yaml.Node) (entry, bool) {
	n = resolveAlias(n)
	fields := p.mapping(n, "a roles entry", "role", "members", "show_queries")
	if n.Kind != yaml.MappingNode {
		return entry{}, false
	}
	before := len(p.errs)
	var e entry
	e.grant.Role = p.role(n, fields["role"])
	e.members = p.members(n, fields["members"])
	if sq, ok := fields["show_queries"]; ok {
		e.grant.ShowQueries = p.showQueries(sq, e.grant.Role)
	}
	return e, len(p.errs) == before
}

// mapping checks that n is a mapping whose keys are among known, each once,
// and returns its values by key.
func (p *policyParser) mapping(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s must be a mapping with keys %s", what, keyList(known))
		return nil
	}
	fields := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			p.fail(k, "unknown key %q in %s (want %s)", k.Value, what, keyList(known))
		case fields[k.Value] != nil:
			p.fail(k, "key %q appears twice in %s", k.Value, what)
		default:
			fields[k.Value] = v
		}
	}
	return fields
}

// role checks the role: value of the entry at n.
func (p *policyParser) role(entryNode, n *yaml.Node) Role {
	if n == nil {
		p.fail(entryNode, "entry has no role: (want admin, viewer or own)")
		return RoleNone
	}
	n = resolveAlias(n)
	r, ok := parseRole(n.Value)
	if n.Kind != yaml.ScalarNode || !ok {
		p.fail(n, "unknown role %q (want admin, viewer or own)", n.Value)
	}
	return r
}

// members checks the members: list of the entry at n.
func (p *policyParser) members(entryNode, n *yaml.Node) []member {
	if n == nil {
		p.fail(entryNode, "entry has no members:")
		return nil
	}
	n = resolveAlias(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "members must be a list of strings such as \"user:alice@acme.example\"")
		return nil
	}
	if len(n.Content) == 0 {
		p.fail(n, "members is empty")
	}
	var ms []member
	for _, item := range n.Content {
		item = resolveAlias(item)
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			p.fail(item, "a member must be a string such as \"user:alice@acme.example\"")
			continue
		}
		m, err := parseMember(item.Value)
		if err != nil {
			p.fail(item, "%v", err)
			continue
		}
		ms = append(ms, m)
	}
	return ms
}

// showQueries checks show_queries, which only a viewer entry may carry.
func (p *policyParser) showQueries(n *yaml.Node, r Role) bool {
	n = resolveAlias(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.fail(n, "show_queries must be true or false")
		return false
	}
	if r != RoleViewer && r != RoleNone {
		p.fail(n, "show_queries applies to viewer entries only (admin always reads query text; own sees only its own jobs)")
	}
	return b
}

// resolveAlias returns the node an alias stands for.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// keyList spells keys for a message: "role:, members: or show_queries:".
func keyList(keys []string) string {
	s := ""
	for i, k := range keys {
		switch {
		case i == 0:
		case i == len(keys)-1:
			s += " or "
		default:
			s += ", "
		}
		s += k + ":"
	}
	return s
}
