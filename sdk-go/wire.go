package sykli

// The wire types: field order here is the JSON key order, which must match
// sykli-runtime/src/graph/model.rs so that every SDK emits the same bytes.

type wireGraph struct {
	Version   string                  `json:"version"`
	Tasks     []wireTask              `json:"tasks"`
	Resources map[string]wireResource `json:"resources,omitempty"`
}

type wireTask struct {
	Name            string              `json:"name"`
	Command         string              `json:"command,omitempty"`
	DependsOn       []string            `json:"depends_on,omitempty"`
	Env             map[string]string   `json:"env,omitempty"`
	Workdir         string              `json:"workdir,omitempty"`
	Inputs          []string            `json:"inputs,omitempty"`
	Outputs         map[string]string   `json:"outputs,omitempty"`
	TaskInputs      []wireTaskInput     `json:"task_inputs,omitempty"`
	Container       string              `json:"container,omitempty"`
	Mounts          []wireMount         `json:"mounts,omitempty"`
	Services        []wireService       `json:"services,omitempty"`
	Matrix          map[string][]string `json:"matrix,omitempty"`
	Secrets         []string            `json:"secrets,omitempty"`
	SecretRefs      []wireSecretRef     `json:"secret_refs,omitempty"`
	When            string              `json:"when,omitempty"`
	Retry           *int                `json:"retry,omitempty"`
	Timeout         *int64              `json:"timeout,omitempty"`
	Requires        []string            `json:"requires,omitempty"`
	Provides        []wireProvide       `json:"provides,omitempty"`
	Needs           []string            `json:"needs,omitempty"`
	Gate            *wireGate           `json:"gate,omitempty"`
	SuccessCriteria []wireCriterion     `json:"success_criteria,omitempty"`
	TaskType        string              `json:"task_type,omitempty"`
	Remote          bool                `json:"remote,omitempty"`
	Prefer          string              `json:"prefer,omitempty"`
	Cache           *bool               `json:"cache,omitempty"`
	Target          string              `json:"target,omitempty"`
	Background      *wireBackground     `json:"background,omitempty"`
	Sandbox         any                 `json:"sandbox,omitempty"`
	Tests           string              `json:"tests,omitempty"`
}

type wireTaskInput struct {
	FromTask string `json:"from_task"`
	Output   string `json:"output"`
	Dest     string `json:"dest"`
}

type wireMount struct {
	Resource string `json:"resource"`
	Path     string `json:"path"`
	Type     string `json:"type"`
}

type wireService struct {
	Image string `json:"image"`
	Name  string `json:"name"`
}

type wireSecretRef struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Key    string `json:"key"`
}

type wireProvide struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

type wireSandbox struct {
	Network  bool     `json:"network,omitempty"`
	MemoryMB int64    `json:"memory_mb,omitempty"`
	CPUs     float64  `json:"cpus,omitempty"`
	Pids     int64    `json:"pids,omitempty"`
	Paths    []string `json:"paths,omitempty"`
}

type wireBackground struct {
	Ready        string `json:"ready"`
	ReadyTimeout int64  `json:"ready_timeout"`
}

type wireGate struct {
	Strategy string `json:"strategy"`
	Timeout  *int64 `json:"timeout,omitempty"`
	Message  string `json:"message,omitempty"`
	EnvVar   string `json:"env_var,omitempty"`
	FilePath string `json:"file_path,omitempty"`
}

type wireResource struct {
	Type  string   `json:"type"`
	Path  string   `json:"path,omitempty"`
	Globs []string `json:"globs,omitempty"`
	Name  string   `json:"name,omitempty"`
}

type wireCriterion struct {
	Type   string `json:"type"`
	Equals *int   `json:"equals,omitempty"`
	Path   string `json:"path,omitempty"`
}
