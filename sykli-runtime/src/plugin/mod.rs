//! WASM target plugins: a task with `target: NAME` runs through a WebAssembly component
//! implementing the `sykli:target@0.1.0` world (`sykli-runtime/wit/target.wit`).
//!
//! - [`PluginHost`]: one shared wasmtime engine (pooling allocator, epoch deadlines), the
//!   host functions checked against the manifest's grants, the compiled-component cache.
//! - [`Plugins`]: the loaded plugins by name. Each name is a slot holding an `ArcSwap` of the
//!   loaded plugin: a task clones the `Arc` and makes its own `Store`, so a swap leaves
//!   running tasks on the old version and gives new tasks the new one.
//! - [`PluginExecutor`]: one slot as an [`Executor`](crate::exec::Executor), registered like
//!   any other ([`Plugins::entries`]), carrying the labels `plugin` and its name.
//!
//! `docs/plugins.md` is the user guide.

#[cfg(feature = "remote")]
pub mod admin;
pub mod bindings;
pub mod config;
mod executor;
#[cfg(any(test, feature = "plugin-fixtures"))]
pub mod fixture;
pub mod grants;
mod host;
pub mod manifest;
mod output;
mod spawn;
mod store;
#[cfg(test)]
mod tests;

pub use executor::{PLUGIN_LABEL, PluginExecutor};
pub use host::{CONTRACT, EPOCH_TICK, LoadedPlugin, PluginHost, PluginInfo, TaskCall};
pub use manifest::{DirGrant, Grants, Limits, Manifest, PluginSource};
pub use store::{
    CACHE_DIR, GrantOverrides, PluginSummary, Plugins, Swapped, TargetSettings, project_plugins_dir,
};

/// Why a plugin could not be loaded, stored or removed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The manifest is malformed; `message` names the key at fault.
    #[error("{origin}: {message}")]
    Manifest {
        /// The manifest's path (or where it came from).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The wasmtime engine could not be set up.
    #[error("setting up the plugin engine: {0}")]
    Engine(String),
    /// The component did not compile.
    #[error("plugin `{plugin}`: not a valid WebAssembly component: {message}")]
    Compile {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The component does not implement the contract this host implements.
    #[error(
        "plugin `{plugin}` does not implement {contract} (the contract this host implements): {message}",
        contract = CONTRACT
    )]
    Contract {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The plugin loaded but is unusable (describe failed, a bad name).
    #[error("plugin `{plugin}`: {message}")]
    Invalid {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// No plugin of that name is loaded.
    #[error("no plugin named `{name}` is loaded (loaded: {})", if loaded.is_empty() { "none".to_owned() } else { loaded.join(", ") })]
    Unknown {
        /// The name asked for.
        name: String,
        /// The loaded names.
        loaded: Vec<String>,
    },
}
