package sykli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVectors builds every program under ../tests/vectors (a separate module that
// uses this SDK through a replace directive), runs it with --emit and compares stdout
// with expected.json byte for byte; error cases must exit 1 with exactly the
// stderr in expected_error.txt and print nothing on stdout.
func TestVectors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every vector program")
	}
	root, err := filepath.Abs(filepath.Join("..", "tests", "vectors"))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./...")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the vector programs: %v\n%s", err, out)
	}

	cases, err := filepath.Glob(filepath.Join(root, "*", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("found only %d vectors under %s", len(cases), root)
	}
	for _, expectedPath := range cases {
		dir := filepath.Dir(expectedPath)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(expectedPath)
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := run(t, filepath.Join(bin, name), "--emit")
			if code != 0 {
				t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
			}
			if !bytes.Equal(stdout, want) {
				t.Errorf("output differs from %s\n got:\n%s\nwant:\n%s", expectedPath, stdout, want)
			}
		})
	}

	errCases, err := filepath.Glob(filepath.Join(root, "errors", "*", "expected_error.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(errCases) == 0 {
		t.Fatal("found no error vectors")
	}
	for _, expectedPath := range errCases {
		dir := filepath.Dir(expectedPath)
		name := filepath.Base(dir)
		t.Run("errors/"+name, func(t *testing.T) {
			want, err := os.ReadFile(expectedPath)
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := run(t, filepath.Join(bin, name), "--emit")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if len(stdout) != 0 {
				t.Errorf("printed on stdout despite errors:\n%s", stdout)
			}
			if string(stderr) != string(want) {
				t.Errorf("stderr differs\n got:\n%s\nwant:\n%s", stderr, want)
			}
		})
	}
}

func run(t *testing.T, prog string, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return out.Bytes(), errb.Bytes(), exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("failed to run %s: %v", prog, err)
	}
	return out.Bytes(), errb.Bytes(), 0
}

// TestVectorsHaveAllSDKs keeps the three SDKs' sources of each vector together.
func TestVectorsHaveAllSDKs(t *testing.T) {
	root := filepath.Join("..", "tests", "vectors")
	dirs, err := filepath.Glob(filepath.Join(root, "*", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range dirs {
		dir := filepath.Dir(e)
		for _, f := range []string{"sykli.go", "sykli.ts", "sykli.rs"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: missing %s", dir, f)
			}
		}
		src, err := os.ReadFile(filepath.Join(dir, "sykli.go"))
		if err == nil && !strings.Contains(string(src), "s.Emit()") {
			t.Errorf("%s/sykli.go does not call Emit", dir)
		}
	}
}
