//! Remote cache and execution settings of a run: flags, environment and the `[remote]`
//! table of `sykli.toml`, in that order of precedence; then connecting to the servers.
//!
//! | flag | environment | `sykli.toml` `[remote]` |
//! |---|---|---|
//! | `--remote URL` | `SYKLI_REMOTE` | `executor` |
//! | `--remote-cache URL` | `SYKLI_REMOTE_CACHE` | `cache` |
//! | `--remote-cache-read-only` | `SYKLI_REMOTE_CACHE_READ_ONLY` | `cache_read_only` |
//! | `--remote-instance NAME` | `SYKLI_REMOTE_INSTANCE` | `instance` |
//! | `--tls-ca FILE` | `SYKLI_TLS_CA` | `tls_ca` |
//! | `--token-file FILE` | `SYKLI_TOKEN` (the token itself) | `token_file` |
//! | `--remote-queue-timeout DURATION` | `SYKLI_REMOTE_QUEUE_TIMEOUT` | `queue_timeout` |
//! | `--remote-allow-secrets` | `SYKLI_REMOTE_ALLOW_SECRETS` | `allow_secrets` |

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::error::CliError;

/// The default time an action may wait for a worker.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(600);

/// The configuration file at the project root.
pub const CONFIG_FILE: &str = "sykli.toml";

/// Remote cache and execution flags of `sykli run` (see `docs/remote.md`).
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteArgs {
    /// Run tasks placed remote on this REAPI executor (grpc://HOST:PORT or grpcs://HOST:PORT;
    /// env SYKLI_REMOTE).
    #[arg(long = "remote", value_name = "URL")]
    pub remote: Option<String>,
    /// Look results up in this REAPI cache after the local one, and publish them there
    /// (env SYKLI_REMOTE_CACHE).
    #[arg(long = "remote-cache", value_name = "URL")]
    pub remote_cache: Option<String>,
    /// Only read from the remote cache, never publish (env SYKLI_REMOTE_CACHE_READ_ONLY).
    #[arg(long = "remote-cache-read-only")]
    pub remote_cache_read_only: bool,
    /// REAPI instance name (env SYKLI_REMOTE_INSTANCE; default empty).
    #[arg(long = "remote-instance", value_name = "NAME")]
    pub remote_instance: Option<String>,
    /// Extra root certificate (PEM) for grpcs:// servers (env SYKLI_TLS_CA).
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// File holding the bearer token (env SYKLI_TOKEN holds the token itself).
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// How long a remote action may wait for a worker (env SYKLI_REMOTE_QUEUE_TIMEOUT;
    /// default 10m).
    #[arg(long = "remote-queue-timeout", value_name = "DURATION")]
    pub remote_queue_timeout: Option<String>,
    /// Send tasks' secrets to a remote executor that is not a sykli worker, as request
    /// metadata (env SYKLI_REMOTE_ALLOW_SECRETS).
    #[arg(long = "remote-allow-secrets")]
    pub remote_allow_secrets: bool,
}

/// The remote settings of a run, resolved.
#[derive(Clone, Default)]
pub struct RemoteSettings {
    /// The remote executor.
    pub executor: Option<sykli_runtime::remote::endpoint::Endpoint>,
    /// The remote cache.
    pub cache: Option<sykli_runtime::remote::endpoint::Endpoint>,
    /// Publish nothing to the remote cache.
    pub cache_read_only: bool,
    /// REAPI instance name.
    pub instance: String,
    /// Extra root certificate.
    pub tls_ca: Option<PathBuf>,
    /// The bearer token.
    pub token: Option<sykli_runtime::remote::auth::Token>,
    /// Queue timeout.
    pub queue_timeout: Duration,
    /// Send secrets to third-party executors.
    pub allow_secrets: bool,
}

impl std::fmt::Debug for RemoteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSettings")
            .field("executor", &self.executor)
            .field("cache", &self.cache)
            .field("cache_read_only", &self.cache_read_only)
            .field("instance", &self.instance)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// A bad remote setting, naming where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// `--flag VALUE`, `ENV="VALUE"` or `FILE: [remote] key = VALUE`.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

/// Where a value came from.
#[derive(Debug, Clone)]
enum Origin {
    Flag(&'static str),
    Env(&'static str),
    File(PathBuf, &'static str),
}

impl Origin {
    fn describe(&self, value: &str) -> String {
        match self {
            Origin::Flag(f) => format!("{f} \"{value}\""),
            Origin::Env(e) => format!("{e}=\"{value}\""),
            Origin::File(p, k) => format!("{}: [remote] {k} = \"{value}\"", p.display()),
        }
    }

    fn error(&self, value: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.describe(value),
            message: message.into(),
        }
    }

    /// Paths in the file are relative to it.
    fn path(&self, value: &str) -> PathBuf {
        match self {
            Origin::File(file, _) => file.parent().unwrap_or(Path::new(".")).join(value),
            _ => PathBuf::from(value),
        }
    }
}

/// The `[remote]` table of the configuration file.
#[derive(Debug, Default)]
struct FileTable {
    path: PathBuf,
    values: toml::Table,
}

const FILE_KEYS: &[&str] = &[
    "executor",
    "cache",
    "cache_read_only",
    "instance",
    "tls_ca",
    "token_file",
    "queue_timeout",
    "allow_secrets",
];

impl FileTable {
    fn load(project_root: &Path) -> Result<Option<FileTable>, ConfigError> {
        let path = project_root.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ConfigError {
                    origin: path.display().to_string(),
                    message: format!("failed to read it: {e}"),
                });
            }
        };
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            origin: path.display().to_string(),
            message: format!("invalid TOML: {}", e.message()),
        })?;
        let values = match doc.get("remote") {
            None => return Ok(None),
            Some(toml::Value::Table(t)) => t.clone(),
            Some(other) => {
                return Err(ConfigError {
                    origin: format!("{}: remote", path.display()),
                    message: format!("expected a table ([remote]), found {}", other.type_str()),
                });
            }
        };
        for key in values.keys() {
            if !FILE_KEYS.contains(&key.as_str()) {
                return Err(ConfigError {
                    origin: format!("{}: [remote] {key}", path.display()),
                    message: format!("unknown key; known keys: {}", FILE_KEYS.join(", ")),
                });
            }
        }
        Ok(Some(FileTable { path, values }))
    }

    fn string(&self, key: &'static str) -> Result<Option<(String, Origin)>, ConfigError> {
        let origin = Origin::File(self.path.clone(), key);
        match self.values.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some((s.clone(), origin))),
            Some(v) => Err(origin.error(
                &v.to_string(),
                format!("expected a string, found {}", v.type_str()),
            )),
        }
    }

    fn bool(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(Origin::File(self.path.clone(), key).error(
                &v.to_string(),
                format!("expected true or false, found {}", v.type_str()),
            )),
        }
    }
}

fn env_bool(
    name: &'static str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<bool>, ConfigError> {
    match get(name) {
        None => Ok(None),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" | "" => Ok(Some(false)),
            _ => Err(Origin::Env(name).error(&v, "expected 1/true/yes or 0/false/no")),
        },
    }
}

impl RemoteSettings {
    /// Resolves flags > environment (`get`) > `sykli.toml` at `project_root`.
    pub fn resolve(
        args: &RemoteArgs,
        project_root: &Path,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RemoteSettings, ConfigError> {
        let file = FileTable::load(project_root)?;
        let pick = |flag: &Option<String>,
                    flag_name: &'static str,
                    env: &'static str,
                    key: &'static str|
         -> Result<Option<(String, Origin)>, ConfigError> {
            if let Some(v) = flag {
                return Ok(Some((v.clone(), Origin::Flag(flag_name))));
            }
            if let Some(v) = get(env) {
                return Ok(Some((v, Origin::Env(env))));
            }
            match &file {
                Some(f) => f.string(key),
                None => Ok(None),
            }
        };
        let endpoint = |v: Option<(String, Origin)>| {
            v.map(|(v, o)| {
                sykli_runtime::remote::endpoint::Endpoint::parse(&v)
                    .map_err(|e| o.error(&v, e.reason))
            })
            .transpose()
        };
        let executor = endpoint(pick(&args.remote, "--remote", "SYKLI_REMOTE", "executor")?)?;
        let cache = endpoint(pick(
            &args.remote_cache,
            "--remote-cache",
            "SYKLI_REMOTE_CACHE",
            "cache",
        )?)?;
        let flag_bool = |flag: bool, env: &'static str, key: &'static str| {
            if flag {
                return Ok(true);
            }
            if let Some(b) = env_bool(env, get)? {
                return Ok(b);
            }
            Ok::<_, ConfigError>(match &file {
                Some(f) => f.bool(key)?.unwrap_or(false),
                None => false,
            })
        };
        let cache_read_only = flag_bool(
            args.remote_cache_read_only,
            "SYKLI_REMOTE_CACHE_READ_ONLY",
            "cache_read_only",
        )?;
        let allow_secrets = flag_bool(
            args.remote_allow_secrets,
            "SYKLI_REMOTE_ALLOW_SECRETS",
            "allow_secrets",
        )?;
        let instance = pick(
            &args.remote_instance,
            "--remote-instance",
            "SYKLI_REMOTE_INSTANCE",
            "instance",
        )?
        .map(|(v, _)| v)
        .unwrap_or_default();
        let tls_ca = match pick(
            &args.tls_ca.as_ref().map(|p| p.display().to_string()),
            "--tls-ca",
            "SYKLI_TLS_CA",
            "tls_ca",
        )? {
            None => None,
            Some((v, o)) => {
                let p = o.path(&v);
                if !p.is_file() {
                    return Err(o.error(&v, format!("{} is not a readable file", p.display())));
                }
                Some(p)
            }
        };
        // The token: --token-file, else SYKLI_TOKEN, else the file's token_file.
        let token = if let Some(p) = &args.token_file {
            Some(read_token(
                &Origin::Flag("--token-file"),
                &p.display().to_string(),
            )?)
        } else if let Some(t) = get("SYKLI_TOKEN") {
            let token = sykli_runtime::remote::auth::Token::new(&t)
                .map_err(|e| Origin::Env("SYKLI_TOKEN").error("<redacted>", e.to_string()))?;
            Some(token)
        } else {
            match file
                .as_ref()
                .map(|f| f.string("token_file"))
                .transpose()?
                .flatten()
            {
                Some((v, o)) => Some(read_token(&o, &v)?),
                None => None,
            }
        };
        let queue_timeout = match pick(
            &args.remote_queue_timeout,
            "--remote-queue-timeout",
            "SYKLI_REMOTE_QUEUE_TIMEOUT",
            "queue_timeout",
        )? {
            None => DEFAULT_QUEUE_TIMEOUT,
            Some((v, o)) => match humantime::parse_duration(v.trim()) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => return Err(o.error(&v, "the queue timeout must be longer than 0")),
                Err(e) => {
                    return Err(o.error(&v, format!("invalid duration: {e} (examples: 30s, 10m)")));
                }
            },
        };
        Ok(RemoteSettings {
            executor,
            cache,
            cache_read_only,
            instance,
            tls_ca,
            token,
            queue_timeout,
            allow_secrets,
        })
    }

    /// Whether anything remote is configured.
    pub fn any(&self) -> bool {
        self.executor.is_some() || self.cache.is_some()
    }
}

fn read_token(
    origin: &Origin,
    value: &str,
) -> Result<sykli_runtime::remote::auth::Token, ConfigError> {
    let path = origin.path(value);
    sykli_runtime::remote::auth::Token::from_file(&path)
        .map_err(|e| origin.error(value, sykli_runtime::error_chain(&e)))
}

/// Connects to what `settings` configures: `None` when nothing remote is configured.
/// An unreachable executor is registered as such (tasks that must run remotely are
/// errored; `prefer: remote` runs locally); an unreachable cache is skipped with a warning;
/// a refusal (authentication, a plaintext token, a bad CA) is an error.
pub async fn connect(
    settings: &RemoteSettings,
) -> Result<Option<sykli_runtime::remote::client::RemoteSetup>, CliError> {
    use sykli_runtime::cache::DigestFunction;
    use sykli_runtime::remote::client::{
        ClientOptions, RemoteClient, RemoteError, RemoteExecution, RemoteExecutorOptions,
        RemoteSetup,
    };
    if !settings.any() {
        return Ok(None);
    }
    let options = |e: &sykli_runtime::remote::endpoint::Endpoint| ClientOptions {
        instance: settings.instance.clone(),
        tls_ca: settings.tls_ca.clone(),
        token: settings.token.clone(),
        ..ClientOptions::new(e.clone())
    };
    let unreachable = |e: &RemoteError| match e {
        // A TLS failure (an untrusted certificate) is a refusal, not an outage.
        RemoteError::Connect { message, .. } => {
            let m = message.to_ascii_lowercase();
            !(m.contains("certificate") || m.contains("tls") || m.contains("handshake"))
        }
        RemoteError::Rpc { code, .. } => *code == sykli_runtime::remote::client::Code::Unavailable,
        _ => false,
    };
    let fail = |e: RemoteError| CliError::failed("remote_failed", e);
    let mut exec_client = None;
    let mut execution = None;
    if let Some(ep) = &settings.executor {
        match RemoteClient::connect(&options(ep)).await {
            Ok(c) if !c.info().exec_enabled => {
                return Err(fail(RemoteError::NoExecution {
                    endpoint: ep.to_string(),
                }));
            }
            Ok(c) => exec_client = Some(c),
            Err(e) if unreachable(&e) => {
                eprintln!(
                    "warning: the remote executor is unreachable: {}; tasks that must run \
                     remotely will error, `prefer: remote` tasks run here",
                    sykli_runtime::error_chain(&e)
                );
                execution = Some(RemoteExecution::Unreachable {
                    name: "remote".into(),
                    reason: sykli_runtime::error_chain(&e),
                });
            }
            Err(e) => return Err(fail(e)),
        }
    }
    let mut cache_client = None;
    if let Some(ep) = &settings.cache {
        if Some(ep) == settings.executor.as_ref()
            && let Some(c) = &exec_client
        {
            cache_client = Some(c.clone());
        } else {
            match RemoteClient::connect(&options(ep)).await {
                Ok(c) => cache_client = Some(c),
                Err(e) if unreachable(&e) => eprintln!(
                    "warning: the remote cache is unreachable, running with the local cache \
                     only: {}",
                    sykli_runtime::error_chain(&e)
                ),
                Err(e) => return Err(fail(e)),
            }
        }
    }
    // One digest function for keys: BLAKE3 when every server has it, else SHA-256.
    let servers: Vec<&RemoteClient> = exec_client.iter().chain(cache_client.iter()).collect();
    if !servers.is_empty() {
        let function = [DigestFunction::Blake3, DigestFunction::Sha256]
            .into_iter()
            .find(|f| servers.iter().all(|c| c.info().supports(*f)))
            .ok_or_else(|| {
                fail(RemoteError::Protocol {
                    endpoint: servers
                        .iter()
                        .map(|c| c.endpoint().to_string())
                        .collect::<Vec<_>>()
                        .join(" and "),
                    message: "the remote executor and cache share no digest function".into(),
                })
            })?;
        exec_client = exec_client
            .map(|c| c.with_function(function))
            .transpose()
            .map_err(fail)?;
        cache_client = cache_client
            .map(|c| c.with_function(function))
            .transpose()
            .map_err(fail)?;
    }
    if let Some(client) = exec_client {
        execution = Some(RemoteExecution::Ready {
            client,
            options: RemoteExecutorOptions {
                queue_timeout: settings.queue_timeout,
                allow_secrets: settings.allow_secrets,
                ..RemoteExecutorOptions::default()
            },
        });
    }
    Ok(Some(RemoteSetup {
        cache: cache_client,
        cache_read_only: settings.cache_read_only,
        execution,
        labels: Vec::new(),
    }))
}

/// Resolves the remote settings of a run for `project_root` from the process environment.
pub fn settings(args: &RemoteArgs, project_root: &Path) -> Result<RemoteSettings, CliError> {
    RemoteSettings::resolve(args, project_root, &|k| std::env::var(k).ok())
        .map_err(|e| CliError::usage("invalid_config", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(
        args: &RemoteArgs,
        file: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<RemoteSettings, String> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(f) = file {
            std::fs::write(dir.path().join(CONFIG_FILE), f).unwrap();
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RemoteSettings::resolve(args, dir.path(), &|k| env.get(k).cloned())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_beat_env_which_beats_the_file() {
        let file = "[remote]\nexecutor = \"grpc://127.0.0.1:1\"\ncache = \"grpc://127.0.0.1:2\"\ninstance = \"i\"\n";
        let s = resolve(&RemoteArgs::default(), Some(file), &[]).unwrap();
        assert_eq!(s.executor.unwrap().port, 1);
        assert_eq!(s.instance, "i");
        let s = resolve(
            &RemoteArgs::default(),
            Some(file),
            &[("SYKLI_REMOTE", "grpc://127.0.0.1:3")],
        )
        .unwrap();
        assert_eq!(s.executor.unwrap().port, 3);
        assert_eq!(s.cache.unwrap().port, 2);
        let args = RemoteArgs {
            remote: Some("grpc://127.0.0.1:4".into()),
            ..Default::default()
        };
        let s = resolve(&args, Some(file), &[("SYKLI_REMOTE", "grpc://127.0.0.1:3")]).unwrap();
        assert_eq!(s.executor.unwrap().port, 4);
        assert_eq!(s.queue_timeout, DEFAULT_QUEUE_TIMEOUT);
    }

    #[test]
    fn every_bad_value_names_its_origin_key_and_value() {
        let e = resolve(
            &RemoteArgs::default(),
            Some("[remote]\nexecutor = \"http://x:1\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("sykli.toml: [remote] executor = \"http://x:1\"") && e.contains("grpc://"),
            "{e}"
        );
        let e = resolve(
            &RemoteArgs::default(),
            Some("[remote]\ncache_read_only = \"yes\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("[remote] cache_read_only") && e.contains("expected true or false"),
            "{e}"
        );
        let e = resolve(
            &RemoteArgs::default(),
            Some("[remote]\nexecuter = \"grpc://h:1\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("[remote] executer") && e.contains("unknown key"),
            "{e}"
        );
        let e = resolve(
            &RemoteArgs::default(),
            None,
            &[("SYKLI_REMOTE_CACHE", "grpc://h")],
        )
        .unwrap_err();
        assert!(
            e.contains("SYKLI_REMOTE_CACHE=\"grpc://h\"") && e.contains("no port"),
            "{e}"
        );
        let e = resolve(
            &RemoteArgs::default(),
            None,
            &[("SYKLI_REMOTE_CACHE_READ_ONLY", "maybe")],
        )
        .unwrap_err();
        assert!(e.contains("SYKLI_REMOTE_CACHE_READ_ONLY=\"maybe\""), "{e}");
        let args = RemoteArgs {
            remote_queue_timeout: Some("soon".into()),
            ..Default::default()
        };
        let e = resolve(&args, None, &[]).unwrap_err();
        assert!(e.contains("--remote-queue-timeout \"soon\""), "{e}");
        let e = resolve(&RemoteArgs::default(), None, &[("SYKLI_TOKEN", "\n")]).unwrap_err();
        assert!(e.contains("SYKLI_TOKEN") && e.contains("empty"), "{e}");
        let e = resolve(
            &RemoteArgs::default(),
            Some("[remote]\ntoken_file = \"nope\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("[remote] token_file = \"nope\"") && e.contains("failed to read"),
            "{e}"
        );
        let e = resolve(&RemoteArgs::default(), Some("[remote\n"), &[]).unwrap_err();
        assert!(
            e.contains("sykli.toml") && e.contains("invalid TOML"),
            "{e}"
        );
    }

    #[test]
    fn the_token_file_is_trimmed_and_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "s3cret\n").unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[remote]\ntoken_file = \"tok\"\n",
        )
        .unwrap();
        let s = RemoteSettings::resolve(&RemoteArgs::default(), dir.path(), &|_| None).unwrap();
        assert_eq!(s.token.as_ref().map(|t| t.expose()), Some("s3cret"));
    }
}
