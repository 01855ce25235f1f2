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

impl Bundle {
    /// Read `root`; `include_tests` also reads `*_test.rego` (they never run in production).
    pub fn read(root: &Path, include_tests: bool) -> Result<Self, PolicyError> {
        let mut files = Vec::new();
        collect_files(root, root, &mut files)?;
        files.sort();
        let mut bundle = Bundle {
            root: root.to_path_buf(),
            modules: Vec::new(),
            data: Value::Object(Map::new()),
            features: None,
            revision: String::new(),
        };
        let mut hasher = Sha256::new();
        for rel in files {
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            let is_rego = name.ends_with(".rego");
            let wanted = is_rego || name == "data.json" || rel == FEATURES_FILE;
            if !wanted {
                continue;
            }
            let path = root.join(&rel);
            let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Io {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
            // Tests are part of the revision: a revision names exactly what was reviewed.
            hasher.update((rel.len() as u64).to_be_bytes());
            hasher.update(rel.as_bytes());
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
            if is_rego {
                if include_tests || !name.ends_with("_test.rego") {
                    bundle.modules.push((rel, text));
                }
            } else if name == "data.json" {
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
            let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// Merge `value` into `data` under `path`, refusing to overwrite a value with a different one.
fn merge_at(data: &mut Value, path: &[&str], value: Value) -> Result<(), String> {
    let mut node = data;
    for key in path {
        let map = node.as_object_mut().ok_or_else(|| format!("data at `{key}` is not an object"))?;
        node = map.entry((*key).to_owned()).or_insert_with(|| Value::Object(Map::new()));
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
