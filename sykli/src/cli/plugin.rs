//! `sykli plugin`: WASM target plugins (docs/plugins.md).
//!
//! Locally, `load MANIFEST` checks and compiles a plugin and stores it in the project's
//! `.sykli/plugins/NAME/` (compiled code cached in `.sykli/plugins/.cache/`), where every
//! `sykli run` registers it as target NAME; `list` and `remove NAME` work on that directory.
//! With `--to ADDR` (and `push MANIFEST --to ADDR`) the same go to a running `sykli worker`
//! or `sykli serve` through its admin service, hot-swapping a loaded plugin of the same name
//! (serve hands it on to every worker of its pool, and to those that join later).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, Subcommand};
use sykli_runtime::plugin::{
    PluginHost, PluginSource, PluginSummary, Plugins, project_plugins_dir,
};
use sykli_runtime::scheduler::RunBuilder;

use super::error::CliError;
use super::print_out;
use crate::report::Envelope;

/// Arguments of `sykli plugin`.
#[derive(Debug, Clone, Args)]
pub struct PluginArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// The `sykli plugin` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum PluginCommand {
    /// Check, compile and store a plugin in the project (target NAME for `sykli run`), or
    /// with --to load it into a running worker or serve.
    Load(LoadArgs),
    /// Load (or hot-swap) a plugin into a running `sykli worker`, or `sykli serve` and every
    /// worker of its pool.
    Push(PushArgs),
    /// List the project's plugins, or with --to a worker's or serve's.
    List(ListArgs),
    /// Remove a plugin from the project, or with --to from a worker or serve (and its pool).
    Remove(RemoveArgs),
}

/// Where the plugin commands act: the project, or a server.
#[derive(Debug, Clone, Args)]
pub struct PlaceArgs {
    /// Project directory (holding `.sykli/`).
    #[arg(short = 'C', long = "project", value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// A running `sykli worker` or `sykli serve` (grpc://HOST:PORT or grpcs://HOST:PORT)
    /// instead of the project.
    #[arg(long = "to", value_name = "ADDR")]
    pub to: Option<String>,
    /// Send this bearer token to the server (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE", requires = "to")]
    pub token_file: Option<PathBuf>,
}

/// Arguments of `sykli plugin load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The plugin's manifest (`plugin.toml`).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Where.
    #[command(flatten)]
    pub place: PlaceArgs,
}

/// Arguments of `sykli plugin push`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The plugin's manifest (`plugin.toml`).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The running `sykli worker` (grpc://HOST:PORT or grpcs://HOST:PORT).
    #[arg(long = "to", value_name = "ADDR", required = true)]
    pub to: String,
    /// Send this bearer token (else SYKLI_TOKEN when set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Arguments of `sykli plugin list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Where.
    #[command(flatten)]
    pub place: PlaceArgs,
}

/// Arguments of `sykli plugin remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// The plugin's target name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where.
    #[command(flatten)]
    pub place: PlaceArgs,
}

/// Runs `sykli plugin ...`.
pub fn plugin(args: &PluginArgs, json: bool) -> Result<(), CliError> {
    match &args.command {
        PluginCommand::Load(a) => match &a.place.to {
            Some(to) => push(&a.manifest, to, a.place.token_file.as_deref(), json),
            None => load_local(&a.manifest, &a.place.project, json),
        },
        PluginCommand::Push(a) => push(&a.manifest, &a.to, a.token_file.as_deref(), json),
        PluginCommand::List(a) => match &a.place.to {
            Some(to) => {
                let reply = admin_call(to, a.place.token_file.as_deref(), |mut c| async move {
                    c.list_plugins().await
                })?;
                let list: Vec<PluginSummary> = reply.plugins.iter().map(|p| p.summary()).collect();
                show_list(&list, json);
                Ok(())
            }
            None => {
                let plugins = local_plugins(&a.place.project)?;
                let list = plugins.map(|p| p.list()).unwrap_or_default();
                show_list(&list, json);
                Ok(())
            }
        },
        PluginCommand::Remove(a) => match &a.place.to {
            Some(to) => {
                let name = a.name.clone();
                let reply = admin_call(to, a.place.token_file.as_deref(), |mut c| async move {
                    c.remove_plugin(&name).await
                })?;
                let removed = reply.plugins.first().map(|p| p.summary());
                report_removed(&a.name, removed.map(|s| s.version), json);
                Ok(())
            }
            None => {
                let dir = project_plugins_dir(&a.place.project);
                let found = Plugins::unstore(&dir, &a.name)
                    .map_err(|e| CliError::failed("plugin_failed", e))?;
                if !found {
                    let stored = stored_names(&dir);
                    return Err(CliError::failed(
                        "plugin_failed",
                        anyhow::anyhow!(
                            "no plugin named `{}` in {} (stored: {})",
                            a.name,
                            dir.display(),
                            if stored.is_empty() {
                                "none".to_owned()
                            } else {
                                stored.join(", ")
                            }
                        ),
                    ));
                }
                report_removed(&a.name, None, json);
                Ok(())
            }
        },
    }
}

fn stored_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("plugin.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn report_removed(name: &str, version: Option<String>, json: bool) {
    if json {
        let env = Envelope::success(serde_json::json!({ "removed": name, "version": version }));
        print_out(&env.to_line());
    } else {
        print_out(&format!("removed plugin `{name}`\n"));
    }
}

fn load_local(manifest: &Path, project: &Path, json: bool) -> Result<(), CliError> {
    let source = PluginSource::read(manifest).map_err(|e| CliError::failed("plugin_failed", e))?;
    let dir = project_plugins_dir(project);
    let host = PluginHost::new(Some(dir.join(sykli_runtime::plugin::CACHE_DIR)))
        .map_err(|e| CliError::failed("plugin_failed", e))?;
    let plugins = Plugins::new(host);
    // Loading from the stored copy first tells a swap from a new name.
    let before = stored_names(&dir);
    let swapped = plugins
        .install(&source, Some(project.to_path_buf()))
        .map_err(|e| CliError::failed("plugin_failed", e))?;
    let name = swapped.plugin.name.clone();
    Plugins::store_in(&dir, &name, &source).map_err(|e| CliError::failed("plugin_failed", e))?;
    let replaced = before.contains(&name);
    if json {
        let env = Envelope::success(serde_json::json!({
            "plugin": swapped.plugin,
            "stored": dir.join(&name),
            "replaced": replaced,
        }));
        print_out(&env.to_line());
    } else {
        let p = &swapped.plugin;
        print_out(&format!(
            "{} plugin `{}` {} ({}) in {}; tasks select it with target: \"{}\"\n",
            if replaced { "replaced" } else { "loaded" },
            p.name,
            p.version,
            &p.digest[..12.min(p.digest.len())],
            dir.join(&name).display(),
            p.name
        ));
    }
    Ok(())
}

fn push(manifest: &Path, to: &str, token_file: Option<&Path>, json: bool) -> Result<(), CliError> {
    let source = PluginSource::read(manifest).map_err(|e| CliError::failed("plugin_failed", e))?;
    let reply = admin_call(to, token_file, |mut c| async move {
        c.push_plugin(&source).await
    })?;
    let Some(p) = reply.plugins.first().map(|p| p.summary()) else {
        return Err(CliError::failed(
            "plugin_failed",
            anyhow::anyhow!("{to} answered the push without the plugin it loaded"),
        ));
    };
    if json {
        let env = Envelope::success(serde_json::json!({
            "plugin": p,
            "replaced": reply.replaced,
            "server": to,
        }));
        print_out(&env.to_line());
    } else {
        let how = match &reply.replaced {
            Some(v) => format!("swapped {v} for"),
            None => "loaded".to_owned(),
        };
        print_out(&format!(
            "{to}: {how} plugin `{}` {} ({}){}\n",
            p.name,
            p.version,
            &p.digest[..12.min(p.digest.len())],
            if p.from_cache {
                ", compiled code from cache"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Connects to the admin service at `to` and makes one call.
pub(crate) fn admin_call<T, F, Fut>(
    to: &str,
    token_file: Option<&Path>,
    call: F,
) -> Result<T, CliError>
where
    F: FnOnce(sykli_runtime::plugin::admin::AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, sykli_runtime::remote::client::RemoteError>>,
{
    use sykli_runtime::remote::auth::Token;
    use sykli_runtime::remote::client::ClientOptions;
    use sykli_runtime::remote::endpoint::Endpoint;
    let endpoint = Endpoint::parse(to)
        .map_err(|e| CliError::usage("usage", anyhow::anyhow!(e).context(format!("--to {to}"))))?;
    let mut opts = ClientOptions::new(endpoint);
    opts.token = Token::load(token_file).map_err(|e| CliError::usage("usage", e))?;
    let runtime = CliError::runtime(false)?;
    runtime.block_on(async {
        let client = sykli_runtime::plugin::admin::AdminClient::connect(&opts)
            .await
            .map_err(|e| CliError::failed("admin_failed", e))?;
        call(client)
            .await
            .map_err(|e| CliError::failed("admin_failed", e))
    })
}

fn show_list(list: &[PluginSummary], json: bool) {
    if json {
        print_out(&Envelope::success(serde_json::json!({ "plugins": list })).to_line());
        return;
    }
    if list.is_empty() {
        print_out("no plugins loaded\n");
        return;
    }
    let mut out = format!(
        "{:<16} {:<10} {:<12} {:<20} {:>6}  DESCRIPTION\n",
        "NAME", "VERSION", "DIGEST", "LOADED", "TASKS"
    );
    for p in list {
        let loaded =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(p.loaded_at));
        out.push_str(&format!(
            "{:<16} {:<10} {:<12} {:<20} {:>6}  {}\n",
            p.name,
            p.version,
            &p.digest[..12.min(p.digest.len())],
            loaded.to_string(),
            p.tasks_served,
            p.description
        ));
    }
    print_out(&out);
}

/// The project's stored plugins, loaded (compiled code from the cache); `None` when the
/// project has none (no engine is started then).
pub(crate) fn local_plugins(project_root: &Path) -> Result<Option<Plugins>, CliError> {
    let dir = project_plugins_dir(project_root);
    if stored_names(&dir).is_empty() {
        return Ok(None);
    }
    let host = PluginHost::new(Some(dir.join(sykli_runtime::plugin::CACHE_DIR)))
        .map_err(|e| CliError::failed("plugin_failed", e))?;
    let plugins = Plugins::new(host);
    plugins
        .load_dir(&dir, Some(project_root.to_path_buf()))
        .map_err(|e| CliError::failed("plugin_failed", e))?;
    plugins.settings().replace(target_settings(project_root)?);
    Ok(Some(plugins))
}

/// `[targets.NAME]` of the project's `sykli.toml`: each target's settings.
fn target_settings(
    project_root: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, CliError> {
    let path = project_root.join("sykli.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(CliError::failed(
                "invalid_config",
                anyhow::anyhow!("reading {}: {e}", path.display()),
            ));
        }
    };
    let wrapped = format!("{text}\n");
    let table: toml::Table = wrapped.parse().map_err(|e: toml::de::Error| {
        CliError::failed(
            "invalid_config",
            anyhow::anyhow!("{}: invalid TOML: {e}", path.display()),
        )
    })?;
    let Some(targets) = table.get("targets") else {
        return Ok(BTreeMap::new());
    };
    // One validation for sykli.toml and `sykli config push`.
    let only = toml::Table::from_iter([("targets".to_owned(), targets.clone())]);
    let config =
        sykli_runtime::plugin::config::ServerConfig::parse(&only.to_string()).map_err(|e| {
            CliError::failed("invalid_config", anyhow::anyhow!("{}: {e}", path.display()))
        })?;
    Ok(config.targets)
}

/// `builder` with the project's plugins registered as targets (see [`local_plugins`]).
pub(crate) fn with_local_plugins(
    builder: RunBuilder,
    project_root: &Path,
) -> Result<RunBuilder, CliError> {
    // Off the async executor: a plugin's describe() may make (blocking) WASI calls.
    let loaded = std::thread::scope(|s| {
        s.spawn(|| local_plugins(project_root))
            .join()
            .unwrap_or_else(|_| {
                Err(CliError::failed(
                    "plugin_failed",
                    anyhow::anyhow!("loading the project's plugins panicked"),
                ))
            })
    })?;
    let Some(plugins) = loaded else {
        return Ok(builder);
    };
    Ok(plugins
        .entries()
        .into_iter()
        .fold(builder, |b, entry| b.executor(entry)))
}
