//! What a worker offers (its labels, as REAPI platform properties) and whether an action's
//! platform asks for something it lacks.
//!
//! Matching: `OSFamily` and `ISA` against this host (case-insensitive; `x86_64`/`amd64`
//! mean `x86-64`, `aarch64`/`arm64` mean `arm-a64`); `container-image`
//! (`docker://IMAGE`) needs a container engine; any other property `K=V` needs a label
//! `K=V` (`--label K=V`). The first property the worker lacks is named in the refusal.

use std::collections::{BTreeMap, BTreeSet};

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;

use crate::cache::action::{host_isa, host_os_family};

/// The platform property naming a container image.
pub const CONTAINER_IMAGE: &str = "container-image";
/// The scheme `container-image` values must carry.
pub const DOCKER_SCHEME: &str = "docker://";

/// The platform property naming the target plugin that runs the action (`sykli-target=NAME`):
/// the worker runs it through its loaded plugin NAME (docs/plugins.md).
pub const SYKLI_TARGET: &str = crate::cache::key::SYKLI_TARGET;

/// The platform property asking for CPU cores (a resource request, not a label).
pub const CPU: &str = "cpu";
/// The platform property asking for memory (a resource request, not a label).
pub const MEMORY: &str = "memory";

/// The labels of a worker.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    labels: BTreeMap<String, BTreeSet<String>>,
    containers: bool,
    /// Labels set on the running server by `sykli config push` (shared by clones).
    pushed: std::sync::Arc<std::sync::RwLock<BTreeMap<String, String>>>,
}

/// How an action asks to be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The image to run the command in (from `container-image=docker://IMAGE`).
    pub image: Option<String>,
    /// The target plugin to run it through (from `sykli-target=NAME`).
    pub target: Option<String>,
}

impl Labels {
    /// The labels of a worker: `OSFamily`/`ISA` of this host, the given `K=V` pairs, and
    /// `container-image` when `containers` (a container engine answered).
    pub fn new(given: impl IntoIterator<Item = (String, String)>, containers: bool) -> Labels {
        let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        labels
            .entry("OSFamily".into())
            .or_default()
            .insert(host_os_family().into());
        labels
            .entry("ISA".into())
            .or_default()
            .insert(host_isa().into());
        for (k, v) in given {
            labels.entry(k).or_default().insert(v);
        }
        Labels {
            labels,
            containers,
            pushed: Default::default(),
        }
    }

    /// Replaces the labels `sykli config push` set (offered besides the others).
    pub fn set_pushed(&self, labels: &BTreeMap<String, String>) {
        *self.pushed.write().unwrap_or_else(|p| p.into_inner()) = labels.clone();
    }

    /// The labels another worker announced (`K=V`, as [`Labels::advertised`] wrote them;
    /// `container-image=docker://*` means it runs containers). Entries without `=` are
    /// ignored.
    pub fn announced(advertised: &[String]) -> Labels {
        let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut containers = false;
        for kv in advertised {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            if k == CONTAINER_IMAGE {
                containers = true;
                continue;
            }
            labels.entry(k.to_owned()).or_default().insert(v.to_owned());
        }
        Labels {
            labels,
            containers,
            pushed: Default::default(),
        }
    }

    /// Whether container actions can run here.
    pub fn containers(&self) -> bool {
        self.containers
    }

    /// Every label as `K=V` (`container-image=docker://*` when containers run here).
    pub fn advertised(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .labels
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
            .collect();
        let pushed = self.pushed.read().unwrap_or_else(|p| p.into_inner());
        out.extend(pushed.iter().map(|(k, v)| format!("{k}={v}")));
        if self.containers {
            out.push(format!("{CONTAINER_IMAGE}={DOCKER_SCHEME}*"));
        }
        out
    }

    /// Checks an action's platform; the error names the first property this worker lacks.
    pub fn place(&self, platform: Option<&reapi::Platform>) -> Result<Placement, String> {
        let mut image = None;
        let mut target = None;
        for p in platform
            .map(|p| p.properties.as_slice())
            .unwrap_or_default()
        {
            let (name, value) = (p.name.as_str(), p.value.as_str());
            if name == CPU || name == MEMORY {
                // Resource requests: the pool's placement weighs them.
                continue;
            }
            if name == CONTAINER_IMAGE {
                let Some(img) = value.strip_prefix(DOCKER_SCHEME).filter(|i| !i.is_empty()) else {
                    return Err(format!(
                        "platform property {CONTAINER_IMAGE}={value} is not supported: \
                         expected {DOCKER_SCHEME}IMAGE"
                    ));
                };
                if !self.containers {
                    return Err(format!(
                        "platform property {CONTAINER_IMAGE}={value} needs a container engine, \
                         and this worker has none"
                    ));
                }
                image = Some(img.to_owned());
                continue;
            }
            if name == SYKLI_TARGET {
                // Whether the plugin is loaded is the runner's to say, naming what is.
                target = Some(value.to_owned());
                continue;
            }
            let pushed = self
                .pushed
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)
                .is_some_and(|v| v == value);
            let offered = pushed
                || self.labels.get(name).is_some_and(|vs| {
                    vs.iter().any(|v| match name {
                        "OSFamily" => v.eq_ignore_ascii_case(value),
                        "ISA" => isa(v) == isa(value),
                        _ => v == value,
                    })
                });
            if !offered {
                return Err(format!(
                    "platform property {name}={value} is not offered by this worker (it offers: {})",
                    self.advertised().join(", ")
                ));
            }
        }
        Ok(Placement { image, target })
    }
}

/// An ISA name in the platform lexicon's spelling (`x86_64`, `amd64` -> `x86-64`;
/// `aarch64`, `arm64` -> `arm-a64`), lowercase.
fn isa(name: &str) -> String {
    let n = name.to_ascii_lowercase().replace('_', "-");
    match n.as_str() {
        "amd64" | "x64" => "x86-64".to_owned(),
        "aarch64" | "arm64" => "arm-a64".to_owned(),
        _ => n,
    }
}

/// Whether `action` (or, for older clients, its `command`) asks for a target plugin
/// ([`SYKLI_TARGET`]): its result depends on the plugin version loaded, which its key does
/// not hold, so it is never served from or stored in the action cache.
pub fn names_plugin(action: &reapi::Action, command: &reapi::Command) -> bool {
    // The same precedence as the placement of a submitted action: the Action's, else the
    // (deprecated) Command's.
    #[allow(deprecated)]
    let platform = action.platform.as_ref().or(command.platform.as_ref());
    platform.is_some_and(|p| p.properties.iter().any(|p| p.name == SYKLI_TARGET))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(props: &[(&str, &str)]) -> reapi::Platform {
        reapi::Platform {
            properties: props
                .iter()
                .map(|(n, v)| reapi::platform::Property {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn host_properties_and_labels_match_and_missing_ones_are_named() {
        let labels = Labels::new([("gpu".to_owned(), "true".to_owned())], false);
        let os = host_os_family().to_uppercase();
        assert!(
            labels
                .place(Some(&platform(&[("OSFamily", &os), ("gpu", "true")])))
                .is_ok()
        );
        assert!(labels.place(None).is_ok());
        let err = labels
            .place(Some(&platform(&[("gpu", "true"), ("pool", "big")])))
            .unwrap_err();
        assert!(err.contains("pool=big"), "{err}");
        assert!(err.contains("gpu=true"), "{err}");
        let spelled = match host_isa() {
            "x86-64" => "x86_64",
            "arm-a64" => "aarch64",
            other => other,
        };
        assert!(labels.place(Some(&platform(&[("ISA", spelled)]))).is_ok());
        let err = labels
            .place(Some(&platform(&[("ISA", "sparc")])))
            .unwrap_err();
        assert!(err.contains("ISA=sparc"), "{err}");
    }

    #[test]
    fn container_images_need_an_engine_and_the_docker_scheme() {
        let without = Labels::new([], false);
        let err = without
            .place(Some(&platform(&[(CONTAINER_IMAGE, "docker://busybox")])))
            .unwrap_err();
        assert!(err.contains("container engine"), "{err}");
        let with = Labels::new([], true);
        assert_eq!(
            with.place(Some(&platform(&[(CONTAINER_IMAGE, "docker://busybox")])))
                .map(|p| p.image),
            Ok(Some("busybox".to_owned()))
        );
        assert!(
            with.place(Some(&platform(&[(CONTAINER_IMAGE, "busybox")])))
                .is_err()
        );
        assert!(
            with.advertised()
                .iter()
                .any(|l| l.starts_with("container-image="))
        );
    }
}
