package sykli

import "fmt"

// Validate checks the pipeline and returns every problem found, in report order:
// problems from building (Chain or Parallel naming an unknown task), then for each
// task in definition order its name, command, env and dependency problems, then
// at most one dependency cycle. An empty result means the pipeline is valid.
func (p *Pipeline) Validate() []string {
	errs := append([]string(nil), p.errs...)

	first := map[string]*Task{}
	var names []string
	for _, t := range p.tasks {
		if t.name == "" {
			continue
		}
		if _, ok := first[t.name]; !ok {
			first[t.name] = t
			names = append(names, t.name)
		}
	}

	for _, t := range p.tasks {
		if t.name == "" {
			errs = append(errs, "task name must not be empty")
			continue
		}
		if first[t.name] != t {
			errs = append(errs, fmt.Sprintf("duplicate task name %q", t.name))
			continue
		}
		if t.gate == nil && t.command == "" {
			errs = append(errs, fmt.Sprintf("task %q has no command", t.name))
		}
		if _, ok := t.env[""]; ok {
			errs = append(errs, fmt.Sprintf("task %q has an empty env key", t.name))
		}
		if t.retry != nil && *t.retry < 0 {
			errs = append(errs, fmt.Sprintf("task %q has a negative retry count", t.name))
		}
		for _, d := range t.dependsOn {
			switch {
			case d == t.name:
				errs = append(errs, fmt.Sprintf("task %q depends on itself", t.name))
			case first[d] == nil:
				msg := fmt.Sprintf("task %q depends on unknown task %q", t.name, d)
				if s, ok := suggest(d, names, t.name); ok {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				errs = append(errs, msg)
			}
		}
	}

	if cycle := findCycle(names, first); cycle != nil {
		errs = append(errs, "dependency cycle detected: "+joinArrow(cycle))
	}
	return errs
}

// suggest returns the known name closest to unknown by Jaro-Winkler similarity, if
// it scores at least 0.8; ties go to the name defined first. self is never suggested.
func suggest(unknown string, names []string, self string) (string, bool) {
	best, bestScore := "", 0.0
	for _, n := range names {
		if n == self {
			continue
		}
		if s := jaroWinkler(unknown, n); s >= 0.8 && s > bestScore {
			best, bestScore = n, s
		}
	}
	return best, best != ""
}

// findCycle returns a dependency cycle as a path that starts and ends at the first
// task, in definition order, that lies on a cycle; nil if the graph is acyclic.
// Edges follow depends_on (a -> b: a depends on b), visited in the order written.
func findCycle(names []string, byName map[string]*Task) []string {
	deps := func(n string) []string {
		var out []string
		for _, d := range byName[n].dependsOn {
			if d != n && byName[d] != nil {
				out = append(out, d)
			}
		}
		return out
	}
	for _, start := range names {
		visited := map[string]bool{start: true}
		var walk func(n string, path []string) []string
		walk = func(n string, path []string) []string {
			for _, d := range deps(n) {
				if d == start {
					return append(path, start)
				}
				if !visited[d] {
					visited[d] = true
					if found := walk(d, append(path, d)); found != nil {
						return found
					}
				}
			}
			return nil
		}
		if found := walk(start, []string{start}); found != nil {
			return found
		}
	}
	return nil
}

func joinArrow(path []string) string {
	s := ""
	for i, n := range path {
		if i > 0 {
			s += " -> "
		}
		s += n
	}
	return s
}
