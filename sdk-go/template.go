package sykli

import "time"

// Template is a reusable set of task settings, applied with Task.From. Every method
// returns the template for chaining.
type Template struct {
	mountsCwd bool
	container string
	workdir   string
	env       map[string]string
	inputs    []string
	mounts    []wireMount
	secrets   []string
	retry     *int
	timeout   *int64
	requires  []string
	target    string
	prefer    Placement
}

// Container sets the image.
func (t *Template) Container(image string) *Template {
	t.container = image
	return t
}

// Workdir sets the working directory.
func (t *Template) Workdir(dir string) *Template {
	t.workdir = dir
	return t
}

// Env sets an environment variable.
func (t *Template) Env(key, value string) *Template {
	t.env[key] = value
	return t
}

// Inputs adds cache-key globs.
func (t *Template) Inputs(globs ...string) *Template {
	t.inputs = append(t.inputs, globs...)
	return t
}

// Mount mounts a registered directory at path.
func (t *Template) Mount(dir *Directory, path string) *Template {
	t.mounts = append(t.mounts, wireMount{Resource: dir.id, Path: path, Type: "directory"})
	return t
}

// MountCache mounts a registered cache volume at path.
func (t *Template) MountCache(cache *CacheVolume, path string) *Template {
	t.mounts = append(t.mounts, wireMount{Resource: cache.name, Path: path, Type: "cache"})
	return t
}

// MountCwd mounts the project root at /work and makes /work the working directory.
// The resource "src:." is registered when the template is applied to a task.
func (t *Template) MountCwd() *Template {
	t.mountsCwd = true
	t.mounts = append(t.mounts, cwdMount())
	t.workdir = "/work"
	return t
}

// Secret adds a secret.
func (t *Template) Secret(name string) *Template {
	t.secrets = append(t.secrets, name)
	return t
}

// Secrets adds several secrets.
func (t *Template) Secrets(names ...string) *Template {
	t.secrets = append(t.secrets, names...)
	return t
}

// Retry sets the number of extra attempts.
func (t *Template) Retry(n int) *Template {
	t.retry = &n
	return t
}

// Timeout sets the wall-clock limit, in whole seconds rounded up (at least 1).
func (t *Template) Timeout(d time.Duration) *Template {
	s := seconds(d)
	t.timeout = &s
	return t
}

// Requires adds worker labels.
func (t *Template) Requires(labels ...string) *Template {
	t.requires = append(t.requires, labels...)
	return t
}

// Target names the target that runs the tasks.
func (t *Template) Target(name string) *Template {
	t.target = name
	return t
}

// Prefer sets a placement preference.
func (t *Template) Prefer(where Placement) *Template {
	t.prefer = where
	return t
}
