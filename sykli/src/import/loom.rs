//! Loom `.loom.yml` workflows (seed 003: github.com/glamboyosa/loom, a local file-watching
//! runner) as pipelines.
//!
//! Loom's format, as its parser and runner read it: a mapping with `name` (required), `on`
//! (a list of event names, stored but unused: Loom runs when the file changes) and `jobs`
//! (required; each job a mapping that must have `steps`). A job has `steps` (each with
//! `name` and `run`), `needs` (job names) and `runs-on` (default `ubuntu-latest`): a label of
//! [`IMAGES`], else itself taken as a Docker image (`alpine:latest`). Each step runs as
//! `bash -c RUN` in its own container of that image, with the project mounted as the working
//! directory.
//!
//! As a pipeline: one task per job in the job's image with the project mounted
//! (`mount_cwd`), `needs` as dependencies, the steps as one script, each step in a subshell
//! (as in its own container, so a `cd` or a variable does not carry over to the next) under
//! `set -e` (a failing step fails the task; Loom itself goes on to the next step and does
//! not fail the job, which is not kept). `on`, and any key Loom does not read, is listed as
//! not translated.

use serde_norway::Value;

use super::{ImportError, Imported, ImportedTask, key, scalar};

/// Loom's `runs-on` labels and their images (its runner's table).
pub const IMAGES: &[(&str, &str)] = &[
    ("ubuntu-latest", "ubuntu:latest"),
    ("ubuntu-20.04", "ubuntu:20.04"),
    ("ubuntu-22.04", "ubuntu:22.04"),
    ("node", "node:18"),
    ("node-16", "node:16"),
    ("node-18", "node:18"),
    ("node-20", "node:20"),
    ("node-22", "node:22"),
    ("python", "python:3.11"),
    ("python-3.9", "python:3.9"),
    ("python-3.10", "python:3.10"),
    ("python-3.11", "python:3.11"),
    ("python-3.12", "python:3.12"),
    ("golang", "golang:1.22"),
    ("go", "golang:1.22"),
    ("go-1.21", "golang:1.21"),
    ("go-1.22", "golang:1.22"),
    ("go-1.23", "golang:1.23"),
    ("java", "openjdk:17"),
    ("java-11", "openjdk:11"),
    ("java-17", "openjdk:17"),
    ("java-21", "openjdk:21"),
    ("php", "php:8.2"),
    ("php-8.1", "php:8.1"),
    ("php-8.2", "php:8.2"),
    ("php-8.3", "php:8.3"),
    ("ruby", "ruby:3.2"),
    ("ruby-3.1", "ruby:3.1"),
    ("ruby-3.2", "ruby:3.2"),
    ("ruby-3.3", "ruby:3.3"),
    ("rust", "rust:1.75"),
    ("dotnet", "mcr.microsoft.com/dotnet/sdk:8.0"),
    ("dotnet-6", "mcr.microsoft.com/dotnet/sdk:6.0"),
    ("dotnet-7", "mcr.microsoft.com/dotnet/sdk:7.0"),
    ("dotnet-8", "mcr.microsoft.com/dotnet/sdk:8.0"),
];

/// The image of a `runs-on` label: from [`IMAGES`], else the label itself.
pub fn image_of(label: &str) -> String {
    IMAGES
        .iter()
        .find(|(l, _)| *l == label)
        .map_or_else(|| label.to_owned(), |(_, i)| (*i).to_owned())
}

fn shape(msg: impl Into<String>) -> ImportError {
    ImportError::LoomShape(msg.into())
}

/// Translates a Loom workflow (YAML text).
pub fn translate(yaml: &str) -> Result<Imported, ImportError> {
    let doc: Value = serde_norway::from_str(yaml)?;
    let Value::Mapping(root) = doc else {
        return Err(shape("the document is not a mapping"));
    };
    let mut out = Imported::default();
    let notes = &mut out.untranslated;
    if root.get("name").and_then(scalar).is_none() {
        return Err(shape("it has no `name` (Loom requires one)"));
    }
    for (k, v) in &root {
        match key(k).as_str() {
            "name" | "jobs" => {}
            "on" => notes.push(format!(
                "workflow: `on: {}` not translated (Loom runs when the workflow file changes; \
                 `sykli watch` reruns on changes)",
                match v {
                    Value::Sequence(s) =>
                        s.iter().filter_map(scalar).collect::<Vec<_>>().join(", "),
                    v => scalar(v).unwrap_or_default(),
                }
            )),
            other => notes.push(format!(
                "workflow: `{other}` not translated (Loom does not read it)"
            )),
        }
    }
    let Some(Value::Mapping(jobs)) = root.get("jobs") else {
        return Err(shape("it has no `jobs` mapping"));
    };
    for (id, job) in jobs {
        let id = key(id);
        let at = format!("job `{id}`");
        let Value::Mapping(job) = job else {
            return Err(shape(format!("{at} is not a mapping")));
        };
        let Some(Value::Sequence(steps)) = job.get("steps") else {
            return Err(shape(format!(
                "{at} has no `steps` list (each job must have steps)"
            )));
        };
        let label = match job.get("runs-on") {
            None => "ubuntu-latest".to_owned(),
            Some(v) => {
                scalar(v).ok_or_else(|| shape(format!("{at}: `runs-on` is not a string")))?
            }
        };
        let mut t = ImportedTask {
            name: id.clone(),
            container: Some(image_of(&label)),
            mount_cwd: true,
            ..Default::default()
        };
        match job.get("needs") {
            None => {}
            Some(Value::Sequence(s)) => {
                for n in s {
                    t.depends_on
                        .push(scalar(n).ok_or_else(|| {
                            shape(format!("{at}: a `needs` entry is not a name"))
                        })?);
                }
            }
            Some(v) => t
                .depends_on
                .push(scalar(v).ok_or_else(|| shape(format!("{at}: `needs` is not a list")))?),
        }
        for (k, _) in job {
            let k = key(k);
            if !matches!(k.as_str(), "steps" | "needs" | "runs-on") {
                notes.push(format!(
                    "{at}: `{k}` not translated (Loom does not read it)"
                ));
            }
        }
        let mut script = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            let sat = format!("{at}: step {}", n + 1);
            let Value::Mapping(step) = step else {
                return Err(shape(format!("{sat} is not a mapping")));
            };
            for (k, _) in step {
                let k = key(k);
                if !matches!(k.as_str(), "name" | "run") {
                    notes.push(format!(
                        "{sat}: `{k}` not translated (Loom does not read it)"
                    ));
                }
            }
            match step.get("run").and_then(scalar) {
                Some(run) => script.push(format!("(\n{}\n)", run.trim_end())),
                None => notes.push(format!("{sat}: no `run`; nothing to translate")),
            }
        }
        if script.is_empty() {
            notes.push(format!(
                "{at}: no `run` step; the task only echoes its name"
            ));
            script.push(format!("echo {id}"));
        }
        t.command = format!("set -e\n{}", script.join("\n"));
        out.tasks.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_to_images_and_unknown_labels_are_images() {
        assert_eq!(image_of("node-20"), "node:20");
        assert_eq!(image_of("alpine:3.20"), "alpine:3.20");
    }

    #[test]
    fn a_job_without_steps_or_a_workflow_without_name_is_refused() {
        let e = translate("name: x\njobs:\n  a:\n    runs-on: go\n").unwrap_err();
        assert!(e.to_string().contains("job `a` has no `steps` list"), "{e}");
        let e = translate("jobs: {}\n").unwrap_err();
        assert!(e.to_string().contains("no `name`"), "{e}");
    }
}
