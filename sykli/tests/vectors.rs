//! The shared SDK test vectors (tests/vectors): every `sykli.rs` there, built against this
//! crate's builder, must produce its `expected.json` byte for byte (the Go and TypeScript SDKs
//! are held to the same files), and every error case must fail validation with exactly the
//! messages in `expected_error.txt`.

use std::fs;
use std::path::{Path, PathBuf};

use sykli::Pipeline;
use sykli::runtime::graph::Graph;

#[path = "../../tests/vectors/errors/after-group-unknown/sykli.rs"]
mod e_after_group_unknown;
#[path = "../../tests/vectors/errors/capabilities-and-outputs/sykli.rs"]
mod e_capabilities_and_outputs;
#[path = "../../tests/vectors/errors/chain-unknown/sykli.rs"]
mod e_chain_unknown;
#[path = "../../tests/vectors/errors/cycle/sykli.rs"]
mod e_cycle;
#[path = "../../tests/vectors/errors/cycle-shortest-path/sykli.rs"]
mod e_cycle_shortest_path;
#[path = "../../tests/vectors/errors/duplicate-name/sykli.rs"]
mod e_duplicate_name;
#[path = "../../tests/vectors/errors/empty-env-key/sykli.rs"]
mod e_empty_env_key;
#[path = "../../tests/vectors/errors/empty-name/sykli.rs"]
mod e_empty_name;
#[path = "../../tests/vectors/errors/input-from-unknown/sykli.rs"]
mod e_input_from_unknown;
#[path = "../../tests/vectors/errors/many-errors/sykli.rs"]
mod e_many_errors;
#[path = "../../tests/vectors/errors/many-errors-with-cycle/sykli.rs"]
mod e_many_errors_with_cycle;
#[path = "../../tests/vectors/errors/no-command/sykli.rs"]
mod e_no_command;
#[path = "../../tests/vectors/errors/self-dependency/sykli.rs"]
mod e_self_dependency;
#[path = "../../tests/vectors/errors/task-field-checks/sykli.rs"]
mod e_task_field_checks;
#[path = "../../tests/vectors/errors/unknown-dep-no-suggestion/sykli.rs"]
mod e_unknown_dep_no_suggestion;
#[path = "../../tests/vectors/errors/unknown-dep-suggestion/sykli.rs"]
mod e_unknown_dep_suggestion;
#[path = "../../tests/vectors/01-minimal/sykli.rs"]
mod v_01_minimal;
#[path = "../../tests/vectors/02-empty/sykli.rs"]
mod v_02_empty;
#[path = "../../tests/vectors/03-after-order-dedup/sykli.rs"]
mod v_03_after_order_dedup;
#[path = "../../tests/vectors/04-env-workdir/sykli.rs"]
mod v_04_env_workdir;
#[path = "../../tests/vectors/05-inputs-outputs/sykli.rs"]
mod v_05_inputs_outputs;
#[path = "../../tests/vectors/06-input-from/sykli.rs"]
mod v_06_input_from;
#[path = "../../tests/vectors/07-containers-mounts/sykli.rs"]
mod v_07_containers_mounts;
#[path = "../../tests/vectors/08-container-only/sykli.rs"]
mod v_08_container_only;
#[path = "../../tests/vectors/09-mount-cwd/sykli.rs"]
mod v_09_mount_cwd;
#[path = "../../tests/vectors/10-when-raw/sykli.rs"]
mod v_10_when_raw;
#[path = "../../tests/vectors/11-when-cond/sykli.rs"]
mod v_11_when_cond;
#[path = "../../tests/vectors/12-secrets/sykli.rs"]
mod v_12_secrets;
#[path = "../../tests/vectors/13-matrix/sykli.rs"]
mod v_13_matrix;
#[path = "../../tests/vectors/14-services/sykli.rs"]
mod v_14_services;
#[path = "../../tests/vectors/15-retry-timeout/sykli.rs"]
mod v_15_retry_timeout;
#[path = "../../tests/vectors/16-requires/sykli.rs"]
mod v_16_requires;
#[path = "../../tests/vectors/17-provides-needs/sykli.rs"]
mod v_17_provides_needs;
#[path = "../../tests/vectors/18-gates/sykli.rs"]
mod v_18_gates;
#[path = "../../tests/vectors/19-success-criteria/sykli.rs"]
mod v_19_success_criteria;
#[path = "../../tests/vectors/20-task-type/sykli.rs"]
mod v_20_task_type;
#[path = "../../tests/vectors/21-templates/sykli.rs"]
mod v_21_templates;
#[path = "../../tests/vectors/22-chain-parallel/sykli.rs"]
mod v_22_chain_parallel;
#[path = "../../tests/vectors/23-target-remote-prefer-nocache/sykli.rs"]
mod v_23_target_remote_prefer_nocache;
#[path = "../../tests/vectors/24-escaping/sykli.rs"]
mod v_24_escaping;
#[path = "../../tests/vectors/25-resources-only/sykli.rs"]
mod v_25_resources_only;
#[path = "../../tests/vectors/26-every-field/sykli.rs"]
mod v_26_every_field;
#[path = "../../tests/vectors/27-background/sykli.rs"]
mod v_27_background;
#[path = "../../tests/vectors/28-sandbox/sykli.rs"]
mod v_28_sandbox;
#[path = "../../tests/vectors/29-tests/sykli.rs"]
mod v_29_tests;

/// A vector's directory name and its pipeline.
type Case = (&'static str, fn() -> Pipeline);

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

/// Every vector with its pipeline, by directory name.
fn vectors() -> Vec<Case> {
    vec![
        ("01-minimal", v_01_minimal::pipeline),
        ("02-empty", v_02_empty::pipeline),
        ("03-after-order-dedup", v_03_after_order_dedup::pipeline),
        ("04-env-workdir", v_04_env_workdir::pipeline),
        ("05-inputs-outputs", v_05_inputs_outputs::pipeline),
        ("06-input-from", v_06_input_from::pipeline),
        ("07-containers-mounts", v_07_containers_mounts::pipeline),
        ("08-container-only", v_08_container_only::pipeline),
        ("09-mount-cwd", v_09_mount_cwd::pipeline),
        ("10-when-raw", v_10_when_raw::pipeline),
        ("11-when-cond", v_11_when_cond::pipeline),
        ("12-secrets", v_12_secrets::pipeline),
        ("13-matrix", v_13_matrix::pipeline),
        ("14-services", v_14_services::pipeline),
        ("15-retry-timeout", v_15_retry_timeout::pipeline),
        ("16-requires", v_16_requires::pipeline),
        ("17-provides-needs", v_17_provides_needs::pipeline),
        ("18-gates", v_18_gates::pipeline),
        ("19-success-criteria", v_19_success_criteria::pipeline),
        ("20-task-type", v_20_task_type::pipeline),
        ("21-templates", v_21_templates::pipeline),
        ("22-chain-parallel", v_22_chain_parallel::pipeline),
        (
            "23-target-remote-prefer-nocache",
            v_23_target_remote_prefer_nocache::pipeline,
        ),
        ("24-escaping", v_24_escaping::pipeline),
        ("25-resources-only", v_25_resources_only::pipeline),
        ("26-every-field", v_26_every_field::pipeline),
        ("27-background", v_27_background::pipeline),
        ("28-sandbox", v_28_sandbox::pipeline),
        ("29-tests", v_29_tests::pipeline),
    ]
}

/// Every error case with a Rust program, by directory name.
fn error_cases() -> Vec<Case> {
    vec![
        ("after-group-unknown", e_after_group_unknown::pipeline),
        (
            "capabilities-and-outputs",
            e_capabilities_and_outputs::pipeline,
        ),
        ("chain-unknown", e_chain_unknown::pipeline),
        ("cycle", e_cycle::pipeline),
        ("cycle-shortest-path", e_cycle_shortest_path::pipeline),
        ("duplicate-name", e_duplicate_name::pipeline),
        ("empty-env-key", e_empty_env_key::pipeline),
        ("empty-name", e_empty_name::pipeline),
        ("input-from-unknown", e_input_from_unknown::pipeline),
        ("many-errors", e_many_errors::pipeline),
        ("many-errors-with-cycle", e_many_errors_with_cycle::pipeline),
        ("no-command", e_no_command::pipeline),
        ("self-dependency", e_self_dependency::pipeline),
        ("task-field-checks", e_task_field_checks::pipeline),
        (
            "unknown-dep-no-suggestion",
            e_unknown_dep_no_suggestion::pipeline,
        ),
        ("unknown-dep-suggestion", e_unknown_dep_suggestion::pipeline),
    ]
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
}

#[test]
fn every_vector_emits_expected_json_byte_for_byte() {
    let mut failures = Vec::new();
    for (name, pipeline) in vectors() {
        let p = pipeline();
        if let Err(e) = p.validate() {
            failures.push(format!("{name}: does not validate:\n{e}"));
            continue;
        }
        let want = read(&vectors_dir().join(name).join("expected.json"));
        let got = p.to_json();
        if got != want {
            failures.push(format!(
                "{name}: output differs\n--- got\n{got}--- want\n{want}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_case_lists_exactly_the_expected_errors() {
    let mut failures = Vec::new();
    for (name, pipeline) in error_cases() {
        let want = read(
            &vectors_dir()
                .join("errors")
                .join(name)
                .join("expected_error.txt"),
        );
        match pipeline().validate() {
            Ok(_) => failures.push(format!("{name}: validated, expected errors:\n{want}")),
            Err(e) => {
                let got = format!("{e}\n");
                if got != want {
                    failures.push(format!(
                        "{name}: errors differ\n--- got\n{got}--- want\n{want}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// expected.json is written by hand: parsing it into the runtime's model and writing it back
/// must give the same bytes (so its key order is the model's), and its version must be the
/// lowest that covers it.
#[test]
fn expected_json_is_canonical_for_the_runtime_model() {
    for (name, _) in vectors() {
        let text = read(&vectors_dir().join(name).join("expected.json"));
        let graph = Graph::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(graph.to_json_pretty(), text, "{name}: not canonical");
        assert_eq!(graph.version, graph.required_version(), "{name}: version");
    }
}

/// A vector directory added without registering it here would silently go untested.
#[test]
fn every_vector_directory_is_registered() {
    let listed = |dir: PathBuf, marker: &str| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .filter(|e| e.path().join(marker).is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let registered: Vec<String> = vectors().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(listed(vectors_dir(), "expected.json"), registered);
    let registered: Vec<String> = error_cases().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(listed(vectors_dir().join("errors"), "sykli.rs"), registered);
    assert!(registered.len() >= 10);
}

/// tests/vectors/jaro-winkler.tsv holds `a<TAB>b<TAB>score` lines; the Go and TypeScript SDKs
/// must compute exactly these scores, which are strsim's (what the runtime suggests with).
#[test]
fn jaro_winkler_table_is_strsim() {
    let text = read(&vectors_dir().join("jaro-winkler.tsv"));
    let mut n = 0;
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let [a, b, score] = cols[..] else {
            panic!("bad line {line:?}");
        };
        let want: f64 = score.parse().unwrap();
        assert_eq!(strsim::jaro_winkler(a, b), want, "{a:?} / {b:?}");
        n += 1;
    }
    assert!(n >= 20);
}
