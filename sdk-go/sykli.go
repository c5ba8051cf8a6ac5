// Package sykli is the Go SDK for sykli: CI/CD pipelines written as real code.
//
// A pipeline is a Go program, conventionally sykli.go, that builds a task graph and
// calls Emit. Run with --emit it prints the graph as JSON on stdout, which the sykli
// runtime reads, validates and executes:
//
//	package main
//
//	import sykli "sykli.dev/sdk-go"
//
//	func main() {
//		s := sykli.New()
//		s.Task("lint").Run("go vet ./...")
//		s.Task("test").Run("go test ./...").After("lint")
//		s.Emit()
//	}
//
// The Go, TypeScript and Rust SDKs emit byte-identical JSON for the same pipeline.
package sykli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Pipeline collects tasks and resources. Create one with New.
type Pipeline struct {
	tasks     []*Task
	resources map[string]wireResource
	// errs are problems found while building (e.g. a chain naming an unknown task),
	// reported by Validate before the per-task checks.
	errs []string
}

// New returns an empty pipeline.
func New() *Pipeline {
	return &Pipeline{resources: map[string]wireResource{}}
}

// Task adds a new task named name. Tasks appear in the graph in creation order.
// An empty or duplicate name is reported by Validate.
func (p *Pipeline) Task(name string) *Task {
	t := &Task{p: p, name: name}
	p.tasks = append(p.tasks, t)
	return t
}

// Gate adds an approval gate named name: a task with no command whose gate
// defaults to the "prompt" strategy with a one-hour timeout.
func (p *Pipeline) Gate(name string) *GateTask {
	t := p.Task(name)
	timeout := int64(3600)
	t.gate = &wireGate{Strategy: "prompt", Timeout: &timeout}
	return &GateTask{t: t}
}

// Dir registers a project directory as the resource "src:" + path.
func (p *Pipeline) Dir(path string) *Directory {
	id := "src:" + path
	p.resources[id] = wireResource{Type: "directory", Path: path}
	return &Directory{p: p, id: id, path: path}
}

// Cache registers a named cache volume as the resource name.
func (p *Pipeline) Cache(name string) *CacheVolume {
	p.resources[name] = wireResource{Type: "cache", Name: name}
	return &CacheVolume{name: name}
}

// Template returns an empty set of reusable task settings; apply it with Task.From.
func (p *Pipeline) Template() *Template {
	return &Template{env: map[string]string{}}
}

// Chain makes each named task depend on the one before it. Every name must
// already be a task; an unknown name is reported by Validate.
func (p *Pipeline) Chain(names ...string) *Pipeline {
	var prev *Task
	for _, n := range names {
		t := p.lookup(n)
		if t == nil {
			p.errs = append(p.errs, fmt.Sprintf("chain refers to unknown task %s", quote(n)))
			prev = nil
			continue
		}
		if prev != nil {
			t.After(prev.name)
		}
		prev = t
	}
	return p
}

// Parallel names a set of tasks so others can depend on all of them with
// Task.AfterGroup. It adds no edges itself; a member that is not a task is reported
// by Validate as an unknown dependency of the tasks that use the group.
func (p *Pipeline) Parallel(names ...string) *Group {
	return &Group{names: append([]string(nil), names...)}
}

func (p *Pipeline) lookup(name string) *Task {
	for _, t := range p.tasks {
		if t.name == name {
			return t
		}
	}
	return nil
}

// ensureCwd registers the project root as "src:." unless it is already registered.
func (p *Pipeline) ensureCwd() {
	if _, ok := p.resources["src:."]; !ok {
		p.resources["src:."] = wireResource{Type: "directory", Path: "."}
	}
}

// ValidationError lists every problem found in a pipeline, one message each.
type ValidationError struct {
	// Errors holds the messages in report order.
	Errors []string
}

func (e *ValidationError) Error() string {
	return strings.Join(e.Errors, "\n")
}

// JSON validates the pipeline and returns its canonical JSON: two-space indent,
// fields in the runtime's order, maps sorted by key, and a trailing newline.
// It returns a *ValidationError if the pipeline is invalid.
func (p *Pipeline) JSON() ([]byte, error) {
	if errs := p.Validate(); len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	return p.encode()
}

func (p *Pipeline) encode() ([]byte, error) {
	g := wireGraph{Tasks: make([]wireTask, 0, len(p.tasks))}
	version := 1
	if len(p.resources) > 0 {
		version = 2
		g.Resources = p.resources
	}
	for _, t := range p.tasks {
		w := t.wire()
		switch {
		case w.TaskType != "" || len(w.SuccessCriteria) > 0:
			version = max(version, 3)
		case w.Container != "" || len(w.Mounts) > 0:
			version = max(version, 2)
		}
		g.Tasks = append(g.Tasks, w)
	}
	g.Version = fmt.Sprint(version)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		return nil, fmt.Errorf("failed to encode the pipeline: %w", err)
	}
	return normalizeEscapes(buf.Bytes()), nil
}

// normalizeEscapes makes encoding/json's string escapes match serde_json and
// JSON.stringify: U+2028 and U+2029 are written raw, and (for toolchains before Go
// 1.22) backspace and form feed as \b and \f.
func normalizeEscapes(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+5 < len(b) {
			if r, ok := escapeReplacements[string(b[i+2:i+6])]; ok {
				out = append(out, r...)
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}

var escapeReplacements = map[string]string{
	"2028": "\u2028",
	"2029": "\u2029",
	"0008": `\b`,
	"000c": `\f`,
}

// Emit is the end of every sykli.go. When the program was started with --emit it
// validates the pipeline and prints its JSON on stdout, then exits 0. If the
// pipeline is invalid it prints every error to stderr, one per line prefixed
// "error: ", and exits 1. Without --emit it validates, prints a hint to stderr and
// exits 0.
func (p *Pipeline) Emit() {
	os.Exit(p.emit(os.Args[1:], os.Stdout, os.Stderr))
}

// emit does the work of Emit and returns the exit code.
func (p *Pipeline) emit(args []string, stdout, stderr io.Writer) int {
	errs := p.Validate()
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintf(stderr, "error: %s\n", e)
		}
		return 1
	}
	emitting := false
	for _, a := range args {
		if a == "--emit" {
			emitting = true
		}
	}
	if !emitting {
		fmt.Fprintf(stderr, "sykli: pipeline is valid (%d tasks); run it with `sykli`, or pass --emit to print the graph\n", len(p.tasks))
		return 0
	}
	out, err := p.encode()
	if err != nil {
		fmt.Fprintf(stderr, "error: %s\n", err)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "error: failed to write the pipeline: %s\n", err)
		return 1
	}
	return 0
}

// seconds converts a duration to whole seconds, rounded up, at least 1.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 1
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}
