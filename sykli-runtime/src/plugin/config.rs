//! A running server's hot configuration (`sykli config push ADDR FILE`): concurrency,
//! labels, target settings and plugin grants, validated whole (every bad value named with
//! its key) and applied at once, no running task interrupted.
//!
//! ```toml
//! concurrency = 8                      # actions at once (1..=4096)
//! [labels]                             # platform properties offered, K = "V"
//! pool = "fast"
//! [targets.http-runner]                # settings a plugin gets as `task.settings`
//! runner_url = "http://127.0.0.1:9000/run"
//! [grants.spawn]                       # replaces plugin `spawn`'s manifest grants
//! spawn = ["sh"]
//! dirs = [{ path = ".", write = true }]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::manifest::{Grants, check_name};

/// The largest concurrency a config may set.
pub const MAX_CONCURRENCY: usize = 4096;

/// A server's hot configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// Actions run at once; `None`: as the server was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Labels offered besides the built-in ones (`K=V`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Each target's settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, BTreeMap<String, String>>,
    /// Grants replacing a plugin's manifest grants, by plugin name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, Grants>,
}

/// Why a config was refused: every bad value, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {}", problems.join("; "))]
pub struct ConfigError {
    /// One line per bad value, each starting with its key.
    pub problems: Vec<String>,
}

impl ServerConfig {
    /// Parses and validates a config's TOML, collecting every problem.
    pub fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            problems: vec![format!("not valid TOML: {}", e.to_string().trim())],
        })?;
        let mut problems = Vec::new();
        let mut config = ServerConfig::default();
        for (key, value) in &table {
            match key.as_str() {
                "concurrency" => match value.as_integer() {
                    Some(n) if (1..=MAX_CONCURRENCY as i64).contains(&n) => {
                        config.concurrency = Some(n as usize);
                    }
                    _ => problems.push(format!(
                        "concurrency: {value} is not a whole number in 1..={MAX_CONCURRENCY}"
                    )),
                },
                "labels" => match value.as_table() {
                    Some(t) => {
                        for (k, v) in t {
                            match v.as_str() {
                                _ if k.is_empty() || k.contains('=') => problems.push(format!(
                                    "labels.{k}: a label name is non-empty and has no `=`"
                                )),
                                Some(v) => {
                                    config.labels.insert(k.clone(), v.to_owned());
                                }
                                None => problems.push(format!("labels.{k}: {v} is not a string")),
                            }
                        }
                    }
                    None => problems.push("labels: must be a table of K = \"V\"".into()),
                },
                "targets" => match value.as_table() {
                    Some(t) => {
                        for (name, settings) in t {
                            if let Err(e) = check_name(name) {
                                problems.push(format!("targets.{name}: {e}"));
                                continue;
                            }
                            let Some(settings) = settings.as_table() else {
                                problems
                                    .push(format!("targets.{name}: must be a table of settings"));
                                continue;
                            };
                            let mut out = BTreeMap::new();
                            for (k, v) in settings {
                                match v {
                                    toml::Value::String(s) => {
                                        out.insert(k.clone(), s.clone());
                                    }
                                    toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                                        out.insert(k.clone(), v.to_string());
                                    }
                                    _ => problems.push(format!(
                                        "targets.{name}.{k}: a setting is a string, number or boolean"
                                    )),
                                }
                            }
                            config.targets.insert(name.clone(), out);
                        }
                    }
                    None => problems.push("targets: must be a table of [targets.NAME]".into()),
                },
                "grants" => match value.as_table() {
                    Some(t) => {
                        for (name, g) in t {
                            if let Err(e) = check_name(name) {
                                problems.push(format!("grants.{name}: {e}"));
                                continue;
                            }
                            match g.clone().try_into::<Grants>() {
                                Ok(grants) => match grants.validate() {
                                    Ok(()) => {
                                        config.grants.insert(name.clone(), grants);
                                    }
                                    Err(e) => problems.push(format!("grants.{name}: {e}")),
                                },
                                Err(e) => problems
                                    .push(format!("grants.{name}: {}", e.to_string().trim())),
                            }
                        }
                    }
                    None => problems.push("grants: must be a table of [grants.NAME]".into()),
                },
                other => problems.push(format!(
                    "{other}: unknown key (known: concurrency, labels, targets, grants)"
                )),
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The config as TOML (what `sykli config show` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render the config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses_and_round_trips() {
        let text = r#"
concurrency = 3
[labels]
pool = "fast"
[targets.http-runner]
runner_url = "http://127.0.0.1:9000/run"
retries = 2
[grants.spawn]
spawn = ["sh"]
dirs = [{ path = ".", write = true }]
"#;
        let c = ServerConfig::parse(text).unwrap();
        assert_eq!(c.concurrency, Some(3));
        assert_eq!(c.labels["pool"], "fast");
        assert_eq!(c.targets["http-runner"]["retries"], "2");
        assert_eq!(c.grants["spawn"].spawn, ["sh"]);
        assert_eq!(ServerConfig::parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn every_bad_value_is_named_with_its_key() {
        let text = r#"
concurrency = 0
colour = "red"
[labels]
gpu = true
[targets.Bad]
x = "1"
[targets.ok]
nested = { a = 1 }
[grants.spawn]
hosts = ["nope"]
[grants.other]
spawn = "sh"
"#;
        let e = ServerConfig::parse(text).unwrap_err();
        let all = e.problems.join("\n");
        for key in [
            "concurrency:",
            "colour:",
            "labels.gpu:",
            "targets.Bad:",
            "targets.ok.nested:",
            "grants.spawn: grants.hosts",
            "grants.other:",
        ] {
            assert!(all.contains(key), "{key} in\n{all}");
        }
        assert_eq!(e.problems.len(), 7, "{all}");
        let bad = ServerConfig::parse("concurrency = [").unwrap_err();
        assert!(bad.to_string().contains("not valid TOML"), "{bad}");
    }
}
