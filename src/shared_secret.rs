//! A shared secret presented by callers (the overrides API's bearer token, Okta's Event Hook
//! Authorization header), compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The secret's SHA-256: comparing digests takes the same time whatever the presented value's
/// length or content, and the secret itself is not kept.
#[derive(Clone)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// Expect `secret`.
    pub fn new(secret: &str) -> Self {
        SharedSecret(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `presented` is the secret.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret([redacted])")
    }
}

/// A secret from `file` (trimmed) when configured, else from the environment variable `var`.
pub fn load(file: Option<&std::path::Path>, var: &str) -> anyhow::Result<Option<String>> {
    load_with(file, var, &|name| std::env::var(name).ok())
}

/// [`load`] reading the environment through `env` (tests give connectors a fake one).
pub fn load_with(
    file: Option<&std::path::Path>,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<String>> {
    use anyhow::Context as _;
    let value = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the secret file {}", path.display()))?,
        ),
        None => env(var),
    };
    Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        let secret = SharedSecret::new("s3cret");
        assert!(secret.matches("s3cret"));
        for other in ["", "s3cre", "s3cret ", "S3cret", "s3cret\n"] {
            assert!(!secret.matches(other), "{other:?}");
        }
        assert!(!format!("{secret:?}").contains("s3cret"));
    }
}
