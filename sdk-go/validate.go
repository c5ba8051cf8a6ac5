package sykli

import (
	"fmt"
	"sort"
	"strings"
)

// Validate checks the pipeline and returns every problem found, with the same
// messages in the same order as the sykli runtime's validator (which the Rust SDK
// uses): problems from building (Chain naming an unknown task), empty and
// duplicate names, capabilities with several providers, directories outside the
// project, then each task's own problems in definition order, then dependency
// cycles (only when every name is valid). An empty result means the pipeline is
// valid. Condition expressions are checked by the runtime when it loads the graph.
func (p *Pipeline) Validate() []string {
	errs := append([]string(nil), p.errs...)

	// Names.
	index := map[string]int{}
	reportedDup := map[string]bool{}
	nameErrors := false
	for i, t := range p.tasks {
		switch _, dup := index[t.name]; {
		case t.name == "":
			errs = append(errs, "task name must not be empty")
			nameErrors = true
		case dup:
			if !reportedDup[t.name] {
				errs = append(errs, fmt.Sprintf("duplicate task name %s", quote(t.name)))
				reportedDup[t.name] = true
			}
			nameErrors = true
		default:
			index[t.name] = i
		}
	}

	// Capabilities, in order of first mention.
	var caps []string
	providers := map[string][]int{}
	for i, t := range p.tasks {
		for _, pr := range t.provides {
			list, seen := providers[pr.Name]
			if !seen {
				caps = append(caps, pr.Name)
			}
			if !containsInt(list, i) {
				providers[pr.Name] = append(list, i)
			}
		}
	}
	for _, c := range caps {
		if list := providers[c]; len(list) > 1 {
			names := make([]string, len(list))
			for k, i := range list {
				names[k] = quote(p.tasks[i].name)
			}
			errs = append(errs, fmt.Sprintf("capability %s is provided by more than one task: %s", quote(c), strings.Join(names, ", ")))
		}
	}

	// Resources.
	ids := make([]string, 0, len(p.resources))
	for id := range p.resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if r := p.resources[id]; r.Type == "directory" && escapes(r.Path) {
			errs = append(errs, fmt.Sprintf("resource %s refers to directory %s, which is outside the project", quote(id), quote(r.Path)))
		}
	}

	// Per task.
	edges := make([][]int, len(p.tasks))
	for i, t := range p.tasks {
		errs = p.checkTask(t, errs)
		edges[i], errs = p.resolveDeps(i, t, index, providers, errs)
	}

	if !nameErrors {
		for _, cycle := range findCycles(edges) {
			names := make([]string, len(cycle))
			for k, i := range cycle {
				names[k] = p.tasks[i].name
			}
			errs = append(errs, "dependency cycle detected: "+strings.Join(names, " -> "))
		}
	}
	return errs
}

func (p *Pipeline) checkTask(t *Task, errs []string) []string {
	at := "task " + quote(t.name)
	add := func(format string, args ...any) {
		errs = append(errs, at+" "+fmt.Sprintf(format, args...))
	}
	if t.gate == nil && strings.TrimSpace(t.command) == "" {
		add("has no command")
	}
	if _, ok := t.env[""]; ok {
		add("has an empty env key")
	}
	if t.retry != nil && *t.retry < 0 {
		add("has a negative retry count")
	}
	for _, m := range t.mounts {
		if !strings.HasPrefix(m.Path, "/") {
			add("mounts %s at %s, which is not an absolute path", quote(m.Resource), quote(m.Path))
		}
		if r, ok := p.resources[m.Resource]; ok && r.Type != m.Type {
			add("mounts resource %s as %s, but it is a %s", quote(m.Resource), m.Type, r.Type)
		}
	}
	exitCodes := 0
	for _, c := range t.criteria {
		if c.kind == "exit_code" {
			exitCodes++
		} else if c.path == "" || escapes(c.path) {
			add("has success criterion path %s outside its workdir", quote(c.path))
		}
	}
	if exitCodes > 1 {
		add("has more than one exit_code success criterion")
	}
	for _, s := range t.services {
		if s.Image == "" {
			add("has a service with an empty image")
		}
		if s.Name == "" {
			add("has a service with an empty name")
		}
	}
	if g := t.gate; g != nil {
		switch {
		case g.Strategy == "env" && g.EnvVar == "":
			errs = append(errs, fmt.Sprintf("gate %s uses strategy env but has no `env_var`", quote(t.name)))
		case g.Strategy == "file" && g.FilePath == "":
			errs = append(errs, fmt.Sprintf("gate %s uses strategy file but has no `file_path`", quote(t.name)))
		}
	}
	for _, key := range sortedKeys(t.matrix) {
		values := t.matrix[key]
		if key == "" {
			add("has matrix dimension %s with an empty name", quote(key))
		}
		if len(values) == 0 {
			add("has matrix dimension %s with no values", quote(key))
		}
		seen := map[string]bool{}
		for _, v := range values {
			if seen[v] {
				add("has matrix dimension %s with duplicate value %s", quote(key), quote(v))
			}
			seen[v] = true
		}
	}
	return errs
}

// resolveDeps checks a task's dependencies and returns them as task indices:
// depends_on, task_inputs sources and the providers of its needs, deduplicated.
func (p *Pipeline) resolveDeps(i int, t *Task, index map[string]int, providers map[string][]int, errs []string) ([]int, []string) {
	var deps []int
	selfReported := false
	unknownReported := map[string]bool{}
	add := func(d string) {
		if d == t.name {
			if !selfReported {
				errs = append(errs, fmt.Sprintf("task %s depends on itself", quote(t.name)))
				selfReported = true
			}
			return
		}
		j, ok := index[d]
		if !ok {
			if !unknownReported[d] {
				msg := fmt.Sprintf("task %s depends on unknown task %s", quote(t.name), quote(d))
				if s, ok := p.suggest(d); ok {
					msg += fmt.Sprintf(" (did you mean %s?)", quote(s))
				}
				errs = append(errs, msg)
				unknownReported[d] = true
			}
			return
		}
		if !containsInt(deps, j) {
			deps = append(deps, j)
		}
	}
	for _, d := range t.dependsOn {
		add(d)
	}
	for _, in := range t.taskInputs {
		add(in.FromTask)
		if j, ok := index[in.FromTask]; ok && j != i {
			if _, declared := p.tasks[j].outputs[in.Output]; !declared {
				errs = append(errs, fmt.Sprintf("task %s takes output %s from task %s, which declares no such output",
					quote(t.name), quote(in.Output), quote(in.FromTask)))
			}
		}
	}
	for _, need := range t.needs {
		list, ok := providers[need]
		if !ok {
			errs = append(errs, fmt.Sprintf("task %s needs %s, but no task provides it", quote(t.name), quote(need)))
			continue
		}
		for _, j := range list {
			if j != i && !containsInt(deps, j) {
				deps = append(deps, j)
			}
		}
	}
	return deps, errs
}

// suggest returns the task name closest to unknown by Jaro-Winkler similarity, if
// it scores at least 0.8; ties go to the task defined first.
func (p *Pipeline) suggest(unknown string) (string, bool) {
	best, bestScore, found := "", 0.0, false
	for _, t := range p.tasks {
		if s := jaroWinkler(unknown, t.name); s >= 0.8 && (!found || s > bestScore) {
			best, bestScore, found = t.name, s, true
		}
	}
	return best, found
}

// findCycles returns one cycle per strongly connected component of more than one
// task, components ordered by their first task, each path starting at that task
// and following the shortest way back to it (breadth-first, edges in order).
func findCycles(edges [][]int) [][]int {
	n := len(edges)
	reach := func(from int) []bool {
		seen := make([]bool, n)
		stack := []int{from}
		seen[from] = true
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, v := range edges[u] {
				if !seen[v] {
					seen[v] = true
					stack = append(stack, v)
				}
			}
		}
		return seen
	}
	reachable := make([][]bool, n)
	for i := range edges {
		reachable[i] = reach(i)
	}
	assigned := make([]bool, n)
	var cycles [][]int
	for start := 0; start < n; start++ {
		if assigned[start] {
			continue
		}
		var scc []int
		for v := 0; v < n; v++ {
			if reachable[start][v] && reachable[v][start] {
				scc = append(scc, v)
				assigned[v] = true
			}
		}
		if len(scc) < 2 {
			continue
		}
		inSCC := make([]bool, n)
		for _, v := range scc {
			inSCC[v] = true
		}
		prev := map[int]int{}
		queue := []int{start}
		last := -1
	bfs:
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, v := range edges[u] {
				if v == start {
					last = u
					break bfs
				}
				if _, seen := prev[v]; inSCC[v] && !seen {
					prev[v] = u
					queue = append(queue, v)
				}
			}
		}
		if last < 0 {
			continue
		}
		var chain []int
		for u := last; u != start; u = prev[u] {
			chain = append(chain, u)
		}
		path := []int{start}
		for k := len(chain) - 1; k >= 0; k-- {
			path = append(path, chain[k])
		}
		cycles = append(cycles, append(path, start))
	}
	return cycles
}

// escapes reports whether a relative path leaves its base: absolute, or ".."
// below the start.
func escapes(path string) bool {
	if strings.HasPrefix(path, "/") {
		return true
	}
	depth := 0
	for _, c := range strings.Split(path, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// quote wraps s in double quotes, as the runtime's messages do (no escaping).
func quote(s string) string { return `"` + s + `"` }

func containsInt(list []int, x int) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}
