//! Hand-designed baselines: candidates modelled on small published ECG networks, shipped in
//! `models/baselines/*.json`, that go through the same training, export and cost estimate as
//! searched ones. Each file names its paper and says how the network was adapted to the
//! space's genes; its head is fitted to the task it is trained on.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::genes::{Candidate, OutputActivation, Window};

/// Which examples a baseline's preprocessing cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Fixed windows: rhythm tasks.
    Rhythm,
    /// Beats around their fiducial point.
    Beat,
}

/// One shipped baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandDesigned {
    /// Short name (the file's stem).
    pub name: String,
    /// Its task family.
    pub family: Family,
    /// The tasks it is meant for (command-line names).
    pub tasks: Vec<String>,
    /// The paper it is modelled on.
    pub reference: String,
    /// How the published network was brought into the space.
    pub adaptation: String,
    /// The pipeline; the head's outputs are refitted per task.
    pub candidate: Candidate,
}

/// Why a baseline file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HandDesignedError {
    /// The file is not valid JSON of a baseline.
    #[error("{path}: not a baseline file: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// The baseline is for another kind of example.
    #[error("{path}: baseline {name} is for {family:?} tasks, not {task}")]
    WrongTask {
        /// The file.
        path: String,
        /// The baseline.
        name: String,
        /// Its family.
        family: Family,
        /// The task asked for.
        task: String,
    },
}

impl HandDesigned {
    /// Whether `json` looks like a baseline file (it has a `reference` and a `candidate`), as
    /// opposed to a bare candidate.
    pub fn is_baseline_json(json: &serde_json::Value) -> bool {
        json.get("candidate").is_some() && json.get("reference").is_some()
    }

    /// Parses a baseline file's text; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<HandDesigned, HandDesignedError> {
        let parsed: HandDesigned =
            serde_json::from_str(text).map_err(|e| HandDesignedError::Parse {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let window_matches = matches!(
            (&parsed.candidate.preprocessing.window, parsed.family),
            (Window::Fixed { .. }, Family::Rhythm) | (Window::Beat { .. }, Family::Beat)
        );
        if !window_matches {
            return Err(HandDesignedError::Parse {
                path: path.display().to_string(),
                reason: format!("its window does not match its family {:?}", parsed.family),
            });
        }
        Ok(parsed)
    }

    /// The candidate for `task`: the head resized to `n_classes` with the task's output
    /// activation. Refused when the task cuts another kind of example.
    pub fn for_task(
        &self,
        task: &str,
        beat_task: bool,
        n_classes: usize,
        multi_label: bool,
        path: &Path,
    ) -> Result<Candidate, HandDesignedError> {
        if beat_task != (self.family == Family::Beat) {
            return Err(HandDesignedError::WrongTask {
                path: path.display().to_string(),
                name: self.name.clone(),
                family: self.family,
                task: task.to_string(),
            });
        }
        let mut candidate = self.candidate.clone();
        candidate.architecture.head.outputs = n_classes;
        candidate.architecture.head.output = if multi_label {
            OutputActivation::Sigmoid
        } else {
            OutputActivation::Softmax
        };
        Ok(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Vec<(std::path::PathBuf, HandDesigned)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/baselines");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("models/baselines") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("read");
                let b = HandDesigned::from_json(&text, &path).expect("parse");
                out.push((path, b));
            }
        }
        out
    }

    #[test]
    fn every_shipped_baseline_is_valid_for_its_tasks_and_cites_a_paper() {
        let all = shipped();
        assert!(all.len() >= 3, "{} baselines", all.len());
        assert!(all.iter().any(|(_, b)| b.family == Family::Beat));
        assert!(all.iter().any(|(_, b)| b.family == Family::Rhythm));
        for (path, b) in &all {
            assert_eq!(path.file_stem().and_then(|s| s.to_str()), Some(&b.name[..]));
            // A citation has authors, a title and a year.
            assert!(b.reference.len() > 40 && b.reference.contains(", 20"));
            for task in &b.tasks {
                let kind: crate::data::tasks::TaskKind =
                    clap::ValueEnum::from_str(task, false).expect("a task name");
                let c = b
                    .for_task(
                        task,
                        kind == crate::data::tasks::TaskKind::MitdbAami,
                        kind.labels().len(),
                        kind.multi_label(),
                        path,
                    )
                    .expect("fits its task");
                assert_eq!(c.architecture.head.outputs, kind.labels().len());
                // Every gene is one the default space offers (so the firmware runs it), and
                // no layer empties the signal at a 250 Hz ADC.
                let shape = super::super::TaskShape {
                    window: match b.family {
                        Family::Beat => super::super::WindowKind::Beat,
                        Family::Rhythm => super::super::WindowKind::Fixed {
                            choices_s: vec![5.0, 10.0, 15.0, 20.0],
                        },
                    },
                    multi_label: kind.multi_label(),
                    n_classes: kind.labels().len(),
                    input_fs_hz: 250.0,
                    leads: 1,
                };
                let space = super::super::SearchSpace::default_for(&shape);
                assert!(space.encode(&c).is_some(), "{} outside the space", b.name);
                assert!(c.is_valid_for(&shape), "{} empties the signal", b.name);
            }
        }
    }

    #[test]
    fn a_baseline_refuses_the_other_family_and_bad_files() {
        let (path, rhythm) = shipped()
            .into_iter()
            .find(|(_, b)| b.family == Family::Rhythm)
            .expect("a rhythm baseline");
        let err = rhythm
            .for_task("mitdb-aami", true, 4, false, &path)
            .expect_err("a rhythm baseline on beats");
        assert!(err.to_string().contains("not mitdb-aami"), "{err}");
        let err = HandDesigned::from_json("{\"name\": 1}", Path::new("x.json"))
            .expect_err("not a baseline");
        assert!(
            err.to_string().starts_with("x.json: not a baseline file"),
            "{err}"
        );
    }
}
