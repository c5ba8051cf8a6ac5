package sykli

import "time"

// GateTask is an approval gate made by Pipeline.Gate: a task with no command that
// waits until approval is given. Every method returns the gate for chaining.
type GateTask struct {
	t *Task
}

// Name returns the gate's name.
func (g *GateTask) Name() string { return g.t.name }

// After makes the gate depend on the named tasks.
func (g *GateTask) After(names ...string) *GateTask {
	g.t.After(names...)
	return g
}

// Message sets the message shown to the approver.
func (g *GateTask) Message(m string) *GateTask {
	g.t.gate.Message = m
	return g
}

// EnvVar approves the gate when the environment variable v is set (strategy "env").
func (g *GateTask) EnvVar(v string) *GateTask {
	g.t.gate.Strategy = "env"
	g.t.gate.EnvVar = v
	return g
}

// File approves the gate when the file at path exists (strategy "file").
func (g *GateTask) File(path string) *GateTask {
	g.t.gate.Strategy = "file"
	g.t.gate.FilePath = path
	return g
}

// Prompt asks a person on the terminal (strategy "prompt", the default).
func (g *GateTask) Prompt() *GateTask {
	g.t.gate.Strategy = "prompt"
	return g
}

// Timeout sets how long the gate waits, in whole seconds rounded up (at least 1).
func (g *GateTask) Timeout(d time.Duration) *GateTask {
	s := seconds(d)
	g.t.gate.Timeout = &s
	return g
}
