//! Reading a policy directory laid out as an OPA bundle: every `.rego` module, every `data.json`
//! placed in the data tree by its directory, `features.toml`, and the revision hash of it all.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::PolicyError;
use crate::state::FEATURES_FILE;

/// The files of a policy directory, read but not yet compiled.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The directory.
    pub root: PathBuf,
    /// `(path relative to root, text)` of every Rego module, sorted by path.
    pub modules: Vec<(String, String)>,
    /// Every `data.json`, merged at the paths given by their directories.
    pub data: Value,
    /// The text of `features.toml`, if present.
    pub features: Option<String>,
    /// `sha256:` + the first 16 hex digits of a hash over every file's path and content.
    pub revision: String,
}

/// The policy pack shipped in the binary (this repository's `policies/` at build time).
static EMBEDDED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/policies");

/// What `--policies` defaults to: the pack built into the binary.
pub const EMBEDDED_NAME: &str = "<built-in policies>";

impl Bundle {
    /// Read `root`; `include_tests` also reads `*_test.rego` (they never run in production).
    pub fn read(root: &Path, include_tests: bool) -> Result<Self, PolicyError> {
        let mut names = Vec::new();
        collect_files(root, root, &mut names)?;
        let mut files = Vec::new();
        for rel in names.into_iter().filter(|rel| is_bundle_file(rel)) {
            let path = root.join(&rel);
            let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Io {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
            files.push((rel, text));
        }
        Self::from_files(root, files, include_tests)
    }

    /// The pack built into the binary.
    pub fn embedded(include_tests: bool) -> Result<Self, PolicyError> {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED, &mut files);
        Self::from_files(Path::new(EMBEDDED_NAME), files, include_tests)
    }

    /// Every scenario file of the pack built into the binary, as `(relative path, text)`.
    pub fn embedded_scenarios() -> Vec<(String, String)> {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED, &mut files);
        files.retain(|(rel, _)| rel.starts_with("scenarios/") && rel.ends_with(".toml"));
        files
    }

    /// Build a bundle from `(relative path, text)` pairs; `root` names them in messages.
    fn from_files(
        root: &Path,
        mut files: Vec<(String, String)>,
        include_tests: bool,
    ) -> Result<Self, PolicyError> {
        files.retain(|(rel, _)| is_bundle_file(rel));
        files.sort();
        let mut bundle = Bundle {
            root: root.to_path_buf(),
            modules: Vec::new(),
            data: Value::Object(Map::new()),
            features: None,
            revision: String::new(),
        };
        let mut hasher = Sha256::new();
        for (rel, text) in files {
            let name = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
            // Tests are part of the revision: a revision names exactly what was reviewed.
            hasher.update((rel.len() as u64).to_be_bytes());
            hasher.update(rel.as_bytes());
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
            if name.ends_with(".rego") {
                if include_tests || !name.ends_with("_test.rego") {
                    bundle.modules.push((rel, text));
                }
            } else if name == "data.json" {
                let path = root.join(&rel);
                let value: Value = serde_json::from_str(&text).map_err(|e| PolicyError::Data {
                    path: format!("{}:{}:{}", path.display(), e.line(), e.column()),
                    message: e.to_string(),
                })?;
                let dir: Vec<&str> = rel.split('/').collect();
                merge_at(&mut bundle.data, &dir[..dir.len() - 1], value).map_err(|message| {
                    PolicyError::Data {
                        path: path.display().to_string(),
                        message,
                    }
                })?;
            } else {
                bundle.features = Some(text);
            }
        }
        let digest = hasher.finalize();
        bundle.revision = format!("sha256:{}", hex::encode(&digest[..8]));
        if bundle.modules.is_empty() {
            return Err(PolicyError::Empty(root.display().to_string()));
        }
        Ok(bundle)
    }
}

/// Rego modules, `data.json` files and the top-level `features.toml` make up a bundle.
fn is_bundle_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.ends_with(".rego") || name == "data.json" || rel == FEATURES_FILE
}

fn collect_embedded(dir: &include_dir::Dir<'static>, out: &mut Vec<(String, String)>) {
    for file in dir.files() {
        if let Some(text) = file.contents_utf8() {
            let rel = file
                .path()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, text.to_owned()));
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

/// Relative paths (with `/`) of every file under `dir`, skipping hidden entries.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), PolicyError> {
    let io = |e: std::io::Error| PolicyError::Io {
        path: dir.display().to_string(),
        error: e.to_string(),
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().map_err(io)?.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// Merge `value` into `data` under `path`, refusing to overwrite a value with a different one.
fn merge_at(data: &mut Value, path: &[&str], value: Value) -> Result<(), String> {
    let mut node = data;
    for key in path {
        let map = node
            .as_object_mut()
            .ok_or_else(|| format!("data at `{key}` is not an object"))?;
        node = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    merge(node, value, &path.join("."))
}

fn merge(into: &mut Value, value: Value, at: &str) -> Result<(), String> {
    match (into, value) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v, &format!("{at}.{k}"))?,
                    None => {
                        a.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        (a, b) if *a == b => Ok(()),
        _ => Err(format!("conflicting values for data.{at}")),
    }
}
