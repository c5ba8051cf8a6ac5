package sykli

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConditions(t *testing.T) {
	tests := []struct {
		name string
		cond Condition
		want string
	}{
		{"branch", Branch("main"), "branch == 'main'"},
		{"branch glob", Branch("feature/*"), "branch matches 'feature/*'"},
		{"tag", Tag("v1"), "tag == 'v1'"},
		{"tag glob", Tag("v*"), "tag matches 'v*'"},
		{"empty tag", Tag(""), "tag != ''"},
		{"has tag", HasTag(), "tag != ''"},
		{"event", Event("push"), "event == 'push'"},
		{"ci", InCI(), "ci == true"},
		{"and", Branch("a").And(Tag("b")), "(branch == 'a') && (tag == 'b')"},
		{"or", Event("push").Or(InCI()), "(event == 'push') || (ci == true)"},
		{"not", Not(InCI()), "!(ci == true)"},
		{"method not", InCI().Not(), "!(ci == true)"},
		{"nested", Not(Branch("a").Or(Branch("b"))).And(HasTag()), "(!((branch == 'a') || (branch == 'b'))) && (tag != '')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cond.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want int64
	}{
		{0, 1},
		{-time.Second, 1},
		{time.Nanosecond, 1},
		{time.Second, 1},
		{time.Second + time.Nanosecond, 2},
		{1500 * time.Millisecond, 2},
		{5 * time.Minute, 300},
	}
	for _, tt := range tests {
		if got := seconds(tt.in); got != tt.want {
			t.Errorf("seconds(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestJaroWinkler(t *testing.T) {
	// Reference values computed by the Rust crate strsim 0.11.
	tests := []struct {
		a, b string
		want float64
	}{
		{"", "", 1},
		{"a", "", 0},
		{"", "a", 0},
		{"same", "same", 1},
		{"cheeseburger", "cheese fries", 0.8666666666666666},
		{"dixon", "dicksonx", 0.8133333333333332},
		{"biuld", "build", 0.94},
		{"abc", "xyz", 0},
		{"Friedrich Nietzsche", "Jean-Paul Sartre", 0.39188596491228067},
		{"日本語", "日本", 0.9111111111111111},
	}
	for _, tt := range tests {
		if got := jaroWinkler(tt.a, tt.b); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("jaroWinkler(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestJaroWinklerTable checks the scores shared by all three SDKs' tests (computed by
// strsim, which the runtime uses) for exact equality.
func TestJaroWinklerTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "tests", "vectors", "jaro-winkler.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 20 {
		t.Fatalf("only %d lines", len(lines))
	}
	for _, line := range lines {
		cols := strings.Split(line, "\t")
		if len(cols) != 3 {
			t.Fatalf("bad line %q", line)
		}
		want, err := strconv.ParseFloat(cols[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := jaroWinkler(cols[0], cols[1]); got != want {
			t.Errorf("jaroWinkler(%q, %q) = %v, want %v", cols[0], cols[1], got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		build func(s *Pipeline)
		want  []string
	}{
		{"valid", func(s *Pipeline) {
			s.Task("a").Run("x")
			s.Task("b").Run("y").After("a")
		}, nil},
		{"gate needs no command", func(s *Pipeline) { s.Gate("g") }, nil},
		{"empty name", func(s *Pipeline) { s.Task("").Run("x") }, []string{"task name must not be empty"}},
		{"duplicate reported once per name, then each task's own problems", func(s *Pipeline) {
			s.Task("a").Run("x")
			s.Task("a")
			s.Task("a").Run("y")
		}, []string{`duplicate task name "a"`, `task "a" has no command`}},
		{"blank command", func(s *Pipeline) { s.Task("a").Run(" \t") }, []string{`task "a" has no command`}},
		{"no command", func(s *Pipeline) { s.Task("a") }, []string{`task "a" has no command`}},
		{"empty command", func(s *Pipeline) { s.Task("a").Run("") }, []string{`task "a" has no command`}},
		{"suggestion picks the closest", func(s *Pipeline) {
			s.Task("lint").Run("x")
			s.Task("lints").Run("x")
			s.Task("t").Run("x").After("lnts")
		}, []string{`task "t" depends on unknown task "lnts" (did you mean "lints"?)`}},
		{"suggests like the runtime, the task itself included", func(s *Pipeline) {
			s.Task("tests").Run("x").After("test")
		}, []string{`task "tests" depends on unknown task "test" (did you mean "tests"?)`}},
		{"no suggestion below 0.8", func(s *Pipeline) {
			s.Task("build").Run("x").After("deploy")
		}, []string{`task "build" depends on unknown task "deploy"`}},
		{"unknown reported once per task", func(s *Pipeline) {
			s.Task("a").Run("x").After("zz").InputFrom("zz", "o", "d")
		}, []string{`task "a" depends on unknown task "zz"`}},
		{"self", func(s *Pipeline) { s.Task("a").Run("x").After("a") }, []string{`task "a" depends on itself`}},
		{"two-cycle", func(s *Pipeline) {
			s.Task("a").Run("x").After("b")
			s.Task("b").Run("x").After("a")
		}, []string{"dependency cycle detected: a -> b -> a"}},
		{"cycle through input_from", func(s *Pipeline) {
			s.Task("a").Run("x").InputFrom("b", "o", "d")
			s.Task("b").Run("x").After("a").Output("o", "f")
		}, []string{"dependency cycle detected: a -> b -> a"}},
		{"cycle through needs", func(s *Pipeline) {
			s.Task("a").Run("x").Provides("db").After("b")
			s.Task("b").Run("x").Needs("db")
		}, []string{"dependency cycle detected: a -> b -> a"}},
		{"shortest way back", func(s *Pipeline) {
			s.Task("a").Run("x").After("b", "c")
			s.Task("b").Run("x").After("c")
			s.Task("c").Run("x").After("a")
		}, []string{"dependency cycle detected: a -> c -> a"}},
		{"one cycle per component", func(s *Pipeline) {
			s.Task("x").Run("x").After("y")
			s.Task("a").Run("x").After("b")
			s.Task("b").Run("x").After("a")
			s.Task("y").Run("x").After("x")
		}, []string{"dependency cycle detected: x -> y -> x", "dependency cycle detected: a -> b -> a"}},
		{"no cycle check with name errors", func(s *Pipeline) {
			s.Task("a").Run("x").After("b")
			s.Task("b").Run("x").After("a")
			s.Task("").Run("x")
		}, []string{"task name must not be empty"}},
		{"undeclared output", func(s *Pipeline) {
			s.Task("a").Run("x").Output("bin", "b")
			s.Task("b").Run("x").InputFrom("a", "lib", "l")
		}, []string{`task "b" takes output "lib" from task "a", which declares no such output`}},
		{"needs without provider", func(s *Pipeline) { s.Task("a").Run("x").Needs("db") }, []string{`task "a" needs "db", but no task provides it`}},
		{"two providers", func(s *Pipeline) {
			s.Task("a").Run("x").Provides("db")
			s.Task("b").Run("x").Provides("db")
		}, []string{`capability "db" is provided by more than one task: "a", "b"`}},
		{"directory outside the project", func(s *Pipeline) {
			s.Dir("../up")
			s.Dir("/abs")
			s.Dir("a/../b")
			s.Task("a").Run("x")
		}, []string{`resource "src:../up" refers to directory "../up", which is outside the project`, `resource "src:/abs" refers to directory "/abs", which is outside the project`}},
		{"mounts", func(s *Pipeline) {
			d := s.Dir("d")
			s.Task("a").Run("x").Mount(d, "rel")
		}, []string{`task "a" mounts "src:d" at "rel", which is not an absolute path`}},
		{"criteria", func(s *Pipeline) {
			s.Task("a").Run("x").SuccessCriteria(ExitCode(0)).SuccessCriteria(ExitCode(1)).SuccessCriteria(FileExists("../x")).SuccessCriteria(FileNonEmpty(""))
		}, []string{`task "a" has success criterion path "../x" outside its workdir`, `task "a" has success criterion path "" outside its workdir`, `task "a" has more than one exit_code success criterion`}},
		{"services", func(s *Pipeline) { s.Task("a").Run("x").Service("", "") }, []string{`task "a" has a service with an empty image`, `task "a" has a service with an empty name`}},
		{"gates", func(s *Pipeline) {
			s.Gate("e").EnvVar("")
			s.Gate("f").File("")
		}, []string{"gate \"e\" uses strategy env but has no `env_var`", "gate \"f\" uses strategy file but has no `file_path`"}},
		{"matrix", func(s *Pipeline) { s.Task("a").Run("x").Matrix("os").Matrix("v", "1", "1").Matrix("", "x") }, []string{`task "a" has matrix dimension "" with an empty name`, `task "a" has matrix dimension "os" with no values`, `task "a" has matrix dimension "v" with duplicate value "1"`}},
		{"cycle starts at first task on it", func(s *Pipeline) {
			s.Task("root").Run("x").After("z")
			s.Task("z").Run("x").After("y")
			s.Task("y").Run("x").After("z")
		}, []string{"dependency cycle detected: z -> y -> z"}},
		{"empty env key", func(s *Pipeline) { s.Task("a").Run("x").Env("", "v") }, []string{`task "a" has an empty env key`}},
		{"negative retry", func(s *Pipeline) { s.Task("a").Run("x").Retry(-2) }, []string{`task "a" has a negative retry count`}},
		{"chain unknown", func(s *Pipeline) {
			s.Task("a").Run("x")
			s.Chain("a", "b")
		}, []string{`chain refers to unknown task "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			tt.build(s)
			got := s.Validate()
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			_, err := s.JSON()
			var ve *ValidationError
			if (len(tt.want) > 0) != errors.As(err, &ve) {
				t.Errorf("JSON() error = %v, want a ValidationError: %v", err, len(tt.want) > 0)
			}
		})
	}
}

func TestEmit(t *testing.T) {
	valid := New()
	valid.Task("a").Run("x")
	invalid := New()
	invalid.Task("a")
	invalid.Task("b").Run("x").After("c")

	tests := []struct {
		name       string
		p          *Pipeline
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"emit", valid, []string{"--emit"}, 0, "{\n  \"version\": \"1\",\n  \"tasks\": [\n    {\n      \"name\": \"a\",\n      \"command\": \"x\"\n    }\n  ]\n}\n", ""},
		{"emit among other args", valid, []string{"-v", "--emit"}, 0, "{\n  \"version\": \"1\",\n  \"tasks\": [\n    {\n      \"name\": \"a\",\n      \"command\": \"x\"\n    }\n  ]\n}\n", ""},
		{"no emit flag", valid, nil, 0, "", "sykli: pipeline is valid (1 tasks); run it with `sykli`, or pass --emit to print the graph\n"},
		{"invalid", invalid, []string{"--emit"}, 1, "", "error: task \"a\" has no command\nerror: task \"b\" depends on unknown task \"c\"\n"},
		{"invalid without emit", invalid, nil, 1, "", "error: task \"a\" has no command\nerror: task \"b\" depends on unknown task \"c\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := tt.p.emit(tt.args, &out, &errb)
			if code != tt.wantCode || out.String() != tt.wantStdout || errb.String() != tt.wantStderr {
				t.Errorf("got (%d, %q, %q), want (%d, %q, %q)", code, out.String(), errb.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestNormalizeEscapes(t *testing.T) {
	tests := []struct {
		value string
	}{
		{"a\u2028b\u2029c"},
		{`literal \u2028 text`},
		{"\\\u2028"},
		{`\\u2029`},
		{"<&>"},
		{"\b\f"},
		{`\u0008 \u000c`},
	}
	for _, tt := range tests {
		s := New()
		s.Task("t").Run(tt.value)
		out, err := s.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var g struct {
			Tasks []struct {
				Command string `json:"command"`
			} `json:"tasks"`
		}
		if err := json.Unmarshal(out, &g); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if g.Tasks[0].Command != tt.value {
			t.Errorf("round trip of %q gave %q", tt.value, g.Tasks[0].Command)
		}
		if bytes.Contains(out, []byte(`\u202`)) && !strings.Contains(tt.value, `\u202`) {
			t.Errorf("U+2028/9 left escaped in %s", out)
		}
		if bytes.Contains(out, []byte(`\u0008`)) && !strings.Contains(tt.value, `\u0008`) {
			t.Errorf("backspace not written as \\b in %s", out)
		}
		if bytes.Contains(out, []byte(`\u003c`)) {
			t.Errorf("HTML escaping in %s", out)
		}
	}
}

func TestOutputsNumbering(t *testing.T) {
	s := New()
	tk := s.Task("t").Run("x").Output("named", "n").Outputs("a").Outputs("b", "c")
	want := map[string]string{"named": "n", "output_1": "a", "output_2": "b", "output_3": "c"}
	if len(tk.outputs) != len(want) {
		t.Fatalf("got %v, want %v", tk.outputs, want)
	}
	for k, v := range want {
		if tk.outputs[k] != v {
			t.Errorf("outputs[%q] = %q, want %q", k, tk.outputs[k], v)
		}
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name  string
		build func(s *Pipeline)
		want  string
	}{
		{"plain", func(s *Pipeline) { s.Task("a").Run("x") }, "1"},
		{"container", func(s *Pipeline) { s.Task("a").Run("x").Container("i") }, "2"},
		{"resource", func(s *Pipeline) { s.Dir("d"); s.Task("a").Run("x") }, "2"},
		{"mount cwd", func(s *Pipeline) { s.Task("a").Run("x").MountCwd() }, "2"},
		{"task type", func(s *Pipeline) { s.Task("a").Run("x").TaskType("test") }, "3"},
		{"criteria beats container", func(s *Pipeline) {
			s.Task("a").Run("x").Container("i")
			s.Task("b").Run("x").SuccessCriteria(ExitCode(0))
		}, "3"},
		{"container after criteria", func(s *Pipeline) {
			s.Task("b").Run("x").SuccessCriteria(ExitCode(0))
			s.Task("a").Run("x").Container("i")
		}, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			tt.build(s)
			out, err := s.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var g struct{ Version string }
			if err := json.Unmarshal(out, &g); err != nil {
				t.Fatal(err)
			}
			if g.Version != tt.want {
				t.Errorf("version %q, want %q", g.Version, tt.want)
			}
		})
	}
}
