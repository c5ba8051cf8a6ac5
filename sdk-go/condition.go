package sykli

import "strings"

// Condition is a typed condition expression, rendered exactly as every sykli SDK
// renders it. Combine with And, Or and Not.
type Condition struct {
	expr string
}

// Branch holds on the given branch; a pattern containing * is a glob.
func Branch(pattern string) Condition {
	if strings.Contains(pattern, "*") {
		return Condition{"branch matches '" + pattern + "'"}
	}
	return Condition{"branch == '" + pattern + "'"}
}

// Tag holds on the given tag; a pattern containing * is a glob, an empty pattern
// means any tag.
func Tag(pattern string) Condition {
	switch {
	case pattern == "":
		return HasTag()
	case strings.Contains(pattern, "*"):
		return Condition{"tag matches '" + pattern + "'"}
	default:
		return Condition{"tag == '" + pattern + "'"}
	}
}

// HasTag holds when the commit is tagged.
func HasTag() Condition { return Condition{"tag != ''"} }

// Event holds for the given CI event (push, pull_request, ...).
func Event(name string) Condition { return Condition{"event == '" + name + "'"} }

// InCI holds when running in CI.
func InCI() Condition { return Condition{"ci == true"} }

// Not negates c.
func Not(c Condition) Condition { return Condition{"!(" + c.expr + ")"} }

// And holds when both c and o hold.
func (c Condition) And(o Condition) Condition {
	return Condition{"(" + c.expr + ") && (" + o.expr + ")"}
}

// Or holds when c or o holds.
func (c Condition) Or(o Condition) Condition {
	return Condition{"(" + c.expr + ") || (" + o.expr + ")"}
}

// Not negates c.
func (c Condition) Not() Condition { return Not(c) }

// String returns the rendered expression.
func (c Condition) String() string { return c.expr }
