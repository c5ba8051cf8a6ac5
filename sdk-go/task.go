package sykli

import (
	"sort"
	"strconv"
	"time"
)

// Placement is where a task prefers to run.
type Placement string

const (
	// Remote prefers a remote executor.
	Remote Placement = "remote"
	// Local prefers this machine.
	Local Placement = "local"
)

// TestFormat is the test output format a task's command prints (see docs/reports.md).
type TestFormat string

const (
	// TestsCargo is libtest's human output, as `cargo test` prints it.
	TestsCargo TestFormat = "cargo"
	// TestsGoJSON is `go test -json` events.
	TestsGoJSON TestFormat = "go-json"
	// TestsTAP is the Test Anything Protocol (12 to 14).
	TestsTAP TestFormat = "tap"
)

// Task is a node of the graph. Every method returns the task for chaining.
type Task struct {
	p          *Pipeline
	name       string
	command    string
	dependsOn  []string
	env        map[string]string
	workdir    string
	inputs     []string
	outputs    map[string]string
	taskInputs []wireTaskInput
	container  string
	mounts     []wireMount
	services   []wireService
	matrix     map[string][]string
	secrets    []string
	secretRefs []wireSecretRef
	when       string
	retry      *int
	timeout    *int64
	requires   []string
	provides   []wireProvide
	needs      []string
	gate       *wireGate
	criteria   []Criterion
	taskType   string
	remote     bool
	prefer     Placement
	cache      *bool
	target     string
	background *wireBackground
	sandbox    *SandboxOptions
	tests      TestFormat
}

// Name returns the task's name.
func (t *Task) Name() string { return t.name }

// Run sets the shell command.
func (t *Task) Run(command string) *Task {
	t.command = command
	return t
}

// After makes the task depend on the named tasks. Dependencies keep the order they
// were first given in; repeats are dropped.
func (t *Task) After(names ...string) *Task {
	for _, n := range names {
		if !contains(t.dependsOn, n) {
			t.dependsOn = append(t.dependsOn, n)
		}
	}
	return t
}

// AfterGroup makes the task depend on every member of g.
func (t *Task) AfterGroup(g *Group) *Task {
	return t.After(g.names...)
}

// Container runs the command in the given image.
func (t *Task) Container(image string) *Task {
	t.container = image
	return t
}

// Workdir sets the working directory.
func (t *Task) Workdir(dir string) *Task {
	t.workdir = dir
	return t
}

// Env sets an environment variable.
func (t *Task) Env(key, value string) *Task {
	if t.env == nil {
		t.env = map[string]string{}
	}
	t.env[key] = value
	return t
}

// Inputs adds globs whose files form the task's cache key.
func (t *Task) Inputs(globs ...string) *Task {
	t.inputs = append(t.inputs, globs...)
	return t
}

// Output declares a named output path.
func (t *Task) Output(name, path string) *Task {
	if t.outputs == nil {
		t.outputs = map[string]string{}
	}
	t.outputs[name] = path
	return t
}

// Outputs declares output paths named output_<i>, i counting on from the number of
// outputs already declared.
func (t *Task) Outputs(paths ...string) *Task {
	for _, path := range paths {
		t.Output(outputName(len(t.outputs)), path)
	}
	return t
}

// InputFrom copies output of task from into dest and makes the task depend on from.
func (t *Task) InputFrom(from, output, dest string) *Task {
	t.taskInputs = append(t.taskInputs, wireTaskInput{FromTask: from, Output: output, Dest: dest})
	return t.After(from)
}

// Mount mounts a registered directory at path inside the container.
func (t *Task) Mount(dir *Directory, path string) *Task {
	t.mounts = append(t.mounts, wireMount{Resource: dir.id, Path: path, Type: "directory"})
	return t
}

// MountCache mounts a registered cache volume at path inside the container.
func (t *Task) MountCache(cache *CacheVolume, path string) *Task {
	t.mounts = append(t.mounts, wireMount{Resource: cache.name, Path: path, Type: "cache"})
	return t
}

// MountCwd mounts the project root at /work and makes /work the working directory.
func (t *Task) MountCwd() *Task {
	t.p.ensureCwd()
	t.mounts = append(t.mounts, cwdMount())
	t.workdir = "/work"
	return t
}

// When runs the task only when the condition expression holds; it is emitted verbatim.
func (t *Task) When(expr string) *Task {
	t.when = expr
	return t
}

// WhenCond runs the task only when c holds.
func (t *Task) WhenCond(c Condition) *Task {
	t.when = c.String()
	return t
}

// Secret adds a secret read from the environment variable of the same name.
func (t *Task) Secret(name string) *Task {
	t.secrets = append(t.secrets, name)
	return t
}

// Secrets adds several secrets.
func (t *Task) Secrets(names ...string) *Task {
	t.secrets = append(t.secrets, names...)
	return t
}

// SecretFrom adds a secret named name whose value comes from src.
func (t *Task) SecretFrom(name string, src SecretSource) *Task {
	t.secretRefs = append(t.secretRefs, wireSecretRef{Name: name, Source: src.source, Key: src.key})
	return t
}

// Matrix sets the values of one matrix dimension, replacing earlier ones (a
// dimension without values is reported by Validate).
func (t *Task) Matrix(key string, values ...string) *Task {
	if t.matrix == nil {
		t.matrix = map[string][]string{}
	}
	t.matrix[key] = append([]string(nil), values...)
	return t
}

// Service adds a sidecar container reachable by hostname name.
func (t *Task) Service(image, name string) *Task {
	t.services = append(t.services, wireService{Image: image, Name: name})
	return t
}

// Retry sets the number of extra attempts after a failure (emitted even when 0).
func (t *Task) Retry(n int) *Task {
	t.retry = &n
	return t
}

// Timeout limits the task's wall-clock time, in whole seconds rounded up (at least 1).
func (t *Task) Timeout(d time.Duration) *Task {
	s := seconds(d)
	t.timeout = &s
	return t
}

// Requires adds labels a worker must carry to run the task.
func (t *Task) Requires(labels ...string) *Task {
	t.requires = append(t.requires, labels...)
	return t
}

// Provides declares a capability this task provides.
func (t *Task) Provides(name string) *Task {
	t.provides = append(t.provides, wireProvide{Name: name})
	return t
}

// ProvidesValue declares a capability with a value, exported to consumers.
func (t *Task) ProvidesValue(name, value string) *Task {
	t.provides = append(t.provides, wireProvide{Name: name, Value: value})
	return t
}

// Needs declares a capability this task needs: a dependency on its provider.
func (t *Task) Needs(name string) *Task {
	t.needs = append(t.needs, name)
	return t
}

// SuccessCriteria adds a check applied after the command exits.
func (t *Task) SuccessCriteria(c Criterion) *Task {
	t.criteria = append(t.criteria, c)
	return t
}

// TaskType labels the task (build, test, lint, ...).
func (t *Task) TaskType(kind string) *Task {
	t.taskType = kind
	return t
}

// Target names the target (built-in or plugin) that runs the task.
func (t *Task) Target(name string) *Task {
	t.target = name
	return t
}

// Remote requires the task to run on a remote executor.
func (t *Task) Remote() *Task {
	t.remote = true
	return t
}

// Prefer sets a placement preference the scheduler may override.
func (t *Task) Prefer(where Placement) *Task {
	t.prefer = where
	return t
}

// Background makes the task a run-scoped host service: its command keeps running in the
// background once the ready shell check exits 0 (waiting at most readyTimeoutSecs), dependents
// start then, and the command is stopped when the run ends. If ready already passes, the
// running service is used and the command is not started.
func (t *Task) Background(ready string, readyTimeoutSecs int64) *Task {
	t.background = &wireBackground{Ready: ready, ReadyTimeout: readyTimeoutSecs}
	return t
}

// SandboxOptions are the settings of a sandboxed task (see docs/sandbox.md): Network keeps
// the host's network, MemoryMB, CPUs and Pids become cgroup limits (0: none), Paths are extra
// read-only host paths.
type SandboxOptions struct {
	Network  bool
	MemoryMB int64
	CPUs     float64
	Pids     int64
	Paths    []string
}

// Sandbox runs the task hermetically (Linux namespaces and cgroups): it sees its declared
// inputs read-only, writes only its outputs and /tmp, has no network and no limits.
func (t *Task) Sandbox() *Task {
	t.sandbox = &SandboxOptions{}
	return t
}

// SandboxWith runs the task in the sandbox with these settings.
func (t *Task) SandboxWith(o SandboxOptions) *Task {
	t.sandbox = &o
	return t
}

// Tests declares the test output format the command prints, so `sykli run --junit` and the
// GitHub Actions summary list each test.
func (t *Task) Tests(format TestFormat) *Task {
	t.tests = format
	return t
}

// NoCache disables caching of the task, even with inputs.
func (t *Task) NoCache() *Task {
	f := false
	t.cache = &f
	return t
}

// From applies a template's settings to the task: scalar settings replace the
// task's, env entries are set, and lists are appended.
func (t *Task) From(tpl *Template) *Task {
	if tpl.mountsCwd {
		t.p.ensureCwd()
	}
	if tpl.container != "" {
		t.container = tpl.container
	}
	if tpl.workdir != "" {
		t.workdir = tpl.workdir
	}
	for _, k := range sortedKeys(tpl.env) {
		t.Env(k, tpl.env[k])
	}
	t.inputs = append(t.inputs, tpl.inputs...)
	t.mounts = append(t.mounts, tpl.mounts...)
	t.secrets = append(t.secrets, tpl.secrets...)
	if tpl.retry != nil {
		r := *tpl.retry
		t.retry = &r
	}
	if tpl.timeout != nil {
		s := *tpl.timeout
		t.timeout = &s
	}
	t.requires = append(t.requires, tpl.requires...)
	if tpl.target != "" {
		t.target = tpl.target
	}
	if tpl.prefer != "" {
		t.prefer = tpl.prefer
	}
	return t
}

func (t *Task) wire() wireTask {
	w := wireTask{
		Name:       t.name,
		Command:    t.command,
		DependsOn:  t.dependsOn,
		Env:        t.env,
		Workdir:    t.workdir,
		Inputs:     t.inputs,
		Outputs:    t.outputs,
		TaskInputs: t.taskInputs,
		Container:  t.container,
		Mounts:     t.mounts,
		Services:   t.services,
		Matrix:     t.matrix,
		Secrets:    t.secrets,
		SecretRefs: t.secretRefs,
		When:       t.when,
		Retry:      t.retry,
		Timeout:    t.timeout,
		Requires:   t.requires,
		Provides:   t.provides,
		Needs:      t.needs,
		Gate:       t.gate,
		TaskType:   t.taskType,
		Remote:     t.remote,
		Prefer:     string(t.prefer),
		Cache:      t.cache,
		Target:     t.target,
		Background: t.background,
		Sandbox:    wireSandboxOf(t.sandbox),
		Tests:      string(t.tests),
	}
	for _, c := range t.criteria {
		w.SuccessCriteria = append(w.SuccessCriteria, c.wire())
	}
	return w
}

// Group is a named set of tasks made by Pipeline.Parallel.
type Group struct {
	names []string
}

// Names returns the group's members.
func (g *Group) Names() []string { return append([]string(nil), g.names...) }

// Directory is a registered project directory (resource "src:" + path).
type Directory struct {
	p    *Pipeline
	id   string
	path string
}

// Globs restricts the directory to files matching the globs.
func (d *Directory) Globs(globs ...string) *Directory {
	r := d.p.resources[d.id]
	r.Globs = append([]string(nil), globs...)
	d.p.resources[d.id] = r
	return d
}

// ID returns the resource id, "src:" + path.
func (d *Directory) ID() string { return d.id }

// CacheVolume is a registered named cache volume.
type CacheVolume struct {
	name string
}

// Name returns the cache's name, which is also its resource id.
func (c *CacheVolume) Name() string { return c.name }

// SecretSource says where a secret's value is read from.
type SecretSource struct {
	source string
	key    string
}

// FromEnv reads a secret from the runtime's environment variable key.
func FromEnv(key string) SecretSource { return SecretSource{source: "env", key: key} }

// FromVault reads a secret from a Vault path (resolved where a Vault client is configured).
func FromVault(path string) SecretSource { return SecretSource{source: "vault", key: path} }

// FromFile reads a secret from a file at path relative to the project: a regular file
// inside it (no absolute path, no "..", no symlink out) of at most 64 KiB.
func FromFile(path string) SecretSource { return SecretSource{source: "file", key: path} }

// Criterion is a success check applied after a task's command exits.
type Criterion struct {
	kind   string
	equals int
	path   string
}

// ExitCode requires the command's exit code to equal code.
func ExitCode(code int) Criterion { return Criterion{kind: "exit_code", equals: code} }

// FileExists requires a file to exist (path relative to the workdir).
func FileExists(path string) Criterion { return Criterion{kind: "file_exists", path: path} }

// FileNonEmpty requires a file to exist and be non-empty.
func FileNonEmpty(path string) Criterion { return Criterion{kind: "file_non_empty", path: path} }

func (c Criterion) wire() wireCriterion {
	if c.kind == "exit_code" {
		eq := c.equals
		return wireCriterion{Type: c.kind, Equals: &eq}
	}
	return wireCriterion{Type: c.kind, Path: c.path}
}

func cwdMount() wireMount {
	return wireMount{Resource: "src:.", Path: "/work", Type: "directory"}
}

func outputName(i int) string {
	return "output_" + strconv.Itoa(i)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// wireSandboxOf is `true` for the default settings, else the settings object.
func wireSandboxOf(o *SandboxOptions) any {
	if o == nil {
		return nil
	}
	if !o.Network && o.MemoryMB == 0 && o.CPUs == 0 && o.Pids == 0 && len(o.Paths) == 0 {
		return true
	}
	return wireSandbox{Network: o.Network, MemoryMB: o.MemoryMB, CPUs: o.CPUs, Pids: o.Pids, Paths: o.Paths}
}
