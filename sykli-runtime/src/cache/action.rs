//! A task as a REAPI `Action`: the cache key is the `Action`'s digest.
//!
//! | task | REAPI |
//! |---|---|
//! | `command` | `Command.arguments` = `["/bin/sh", "-c", command]` |
//! | native function | `Command.arguments` = `["./sykli-pipeline", "--sykli-exec", NAME]` (`../` per workdir level: REAPI resolves it against the working directory), the binary being the input-root file `sykli-pipeline`; its identity also goes into the salt |
//! | `env`, matrix values, capabilities | `Command.environment_variables`, sorted by name; never a secret's value |
//! | workdir | `Command.working_directory`, relative to the project (a container task's: the project path under its `src:DIR` mount, else its in-container path without the leading `/`) |
//! | `outputs` paths | `Command.output_paths`, sorted |
//! | `container` | platform property `container-image` = `docker://IMAGE` |
//! | `requires` labels | platform property `LABEL` = `true` |
//! | this machine | platform properties `OSFamily` and `ISA` |
//! | `inputs` + dependency outputs | `input_root_digest` ([`super::merkle`]) |
//! | `timeout` | `Action.timeout` |
//! | what REAPI has no field for | `Action.salt`: [`Salt`] as JSON |
//!
//! Messages are prost-encoded (fields in tag order, as REAPI's canonical form asks) and
//! digested with the cache's [`DigestFunction`].

use std::collections::BTreeMap;

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::protobuf::Duration;
use prost::Message;
use serde::Serialize;

use super::digest::{Digest, DigestFunction};
use super::merkle::{InputRoot, digest_of_message};

/// The file name of the pipeline binary in a native task's input root, run as
/// `./sykli-pipeline --sykli-exec NAME` (relative to the working directory).
pub const NATIVE_PROGRAM: &str = "sykli-pipeline";

/// The parts of a key REAPI has no field for, serialised as JSON into `Action.salt` (empty
/// fields are left out). Never holds a secret value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Salt {
    /// [`super::SCHEMA_VERSION`].
    pub schema: u32,
    /// Identity of a native task's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_identity: Option<String>,
    /// Identity of the executor's code (a plugin's digest and settings), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_identity: Option<String>,
    /// Output name -> path: names are what dependents refer to.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    /// Names of the secrets the task receives.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Other settings that change results, name -> canonical JSON (`mounts`, `services`,
    /// `success_criteria`, `task_inputs`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

/// Everything an `Action` is built from.
#[derive(Debug, Clone, Default)]
pub struct ActionSpec {
    /// `Command.arguments`.
    pub arguments: Vec<String>,
    /// Environment (no secret values).
    pub env: BTreeMap<String, String>,
    /// `Command.working_directory`.
    pub working_directory: String,
    /// `Command.output_paths` (sorted and deduplicated here).
    pub output_paths: Vec<String>,
    /// Platform properties (sorted here by name, then value).
    pub platform: Vec<(String, String)>,
    /// `Action.timeout` in seconds.
    pub timeout_secs: Option<u64>,
    /// `Action.do_not_cache`.
    pub do_not_cache: bool,
    /// `Action.salt`.
    pub salt: Salt,
}

/// A task's REAPI messages and their digests.
#[derive(Debug, Clone)]
pub struct ActionMessages {
    /// The digest function everything here is digested with.
    pub function: DigestFunction,
    /// The `Command`.
    pub command: reapi::Command,
    /// Its digest.
    pub command_digest: reapi::Digest,
    /// The input tree.
    pub input_root: InputRoot,
    /// The `Action`.
    pub action: reapi::Action,
    /// Its digest: the cache key.
    pub action_digest: reapi::Digest,
    key: Digest,
}

impl ActionMessages {
    /// The cache key: the `Action` digest's hash.
    pub fn key(&self) -> Digest {
        self.key
    }

    /// Every blob of the messages, encoded, with its digest: the `Action`, the `Command` and
    /// each `Directory` (what a CAS must hold besides the input files).
    pub fn blobs(&self) -> Vec<(reapi::Digest, Vec<u8>)> {
        let mut out = vec![
            (self.action_digest.clone(), self.action.encode_to_vec()),
            (self.command_digest.clone(), self.command.encode_to_vec()),
        ];
        out.extend(self.input_root.directories.iter().cloned());
        out
    }
}

/// Builds the `Command` and `Action` of `spec` over `input_root`.
pub fn build(spec: &ActionSpec, input_root: InputRoot, function: DigestFunction) -> ActionMessages {
    let mut output_paths = spec.output_paths.clone();
    output_paths.sort();
    output_paths.dedup();
    #[allow(deprecated)] // output_files, output_directories and platform stay empty (REAPI 2.1+)
    let command = reapi::Command {
        arguments: spec.arguments.clone(),
        environment_variables: spec
            .env
            .iter()
            .map(|(name, value)| reapi::command::EnvironmentVariable {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        output_paths,
        working_directory: spec.working_directory.clone(),
        ..Default::default()
    };
    let command_bytes = command.encode_to_vec();
    let command_digest = digest_of_message(function, &command_bytes);
    let mut properties = spec.platform.clone();
    properties.sort();
    properties.dedup();
    // Plain strings and maps: serialising cannot fail, and an empty salt would still be a
    // deterministic (if weaker) key.
    let salt = serde_json::to_vec(&spec.salt).unwrap_or_default();
    let action = reapi::Action {
        command_digest: Some(command_digest.clone()),
        input_root_digest: Some(input_root.digest.clone()),
        timeout: spec.timeout_secs.map(|s| Duration {
            seconds: i64::try_from(s).unwrap_or(i64::MAX),
            nanos: 0,
        }),
        do_not_cache: spec.do_not_cache,
        salt,
        platform: Some(reapi::Platform {
            properties: properties
                .into_iter()
                .map(|(name, value)| reapi::platform::Property { name, value })
                .collect(),
        }),
    };
    let action_bytes = action.encode_to_vec();
    let key = function.of_bytes(&action_bytes);
    let action_digest = super::merkle::reapi_digest(&key, action_bytes.len() as u64);
    ActionMessages {
        key,
        function,
        command,
        command_digest,
        input_root,
        action,
        action_digest,
    }
}

/// The REAPI `OSFamily` of this machine (`linux`, `macos`, ...).
pub fn host_os_family() -> &'static str {
    std::env::consts::OS
}

/// The REAPI `ISA` of this machine, in the platform lexicon's spelling where it has one.
pub fn host_isa() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86-64",
        "x86" => "x86-32",
        "aarch64" => "arm-a64",
        other => other,
    }
}
