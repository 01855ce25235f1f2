//! A tansu broker process for one test (scripts/tansu), and `vigil` stage processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// A running tansu broker, stopped on drop.
pub struct Tansu {
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub bootstrap: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tansu")
}

impl Tansu {
    /// Start a broker with sqlite storage in a fresh directory.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("scripts/tansu runs");
        assert!(
            out.status.success(),
            "cannot start tansu (install it with `scripts/tansu install`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bootstrap = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Tansu { dir, bootstrap }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// A configuration file for `bootstrap` with topics named after `prefix`.
pub fn config_file(dir: &Path, bootstrap: &str, prefix: &str) -> PathBuf {
    let path = dir.join(format!("{prefix}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
bootstrap_servers = "{bootstrap}"

[kafka.properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500

[topics]
events = "{prefix}.events"
decisions = "{prefix}.decisions"
dlq = "{prefix}.dlq"
state = "{prefix}.state"

[detect]
group_id = "{prefix}-detect"
snapshot_interval_secs = 1

[http]
listen = ""
"#
        ),
    )
    .unwrap();
    path
}

/// A `vigil` stage process (`vigil detect --config FILE`), its stderr appended to `log`.
pub struct Stage {
    child: Child,
}

impl Stage {
    /// Start `vigil SUBCOMMAND --config CONFIG` (`SUBCOMMAND` may be several words).
    pub fn start(subcommand: &str, config: &Path, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(subcommand.split_whitespace())
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("vigil starts");
        Stage { child }
    }

    /// SIGKILL: no chance to flush or commit.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for the graceful exit.
    pub fn terminate(mut self) -> ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
