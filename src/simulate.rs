//! Placeholder until the simulator lands (being written in parallel).

/// Arguments of `vigil simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {}

/// Run `vigil simulate`.
pub fn run(_args: &SimulateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
