//! `vigil actions`: what the respond stage did about a user, a decision or an action, read from
//! a running Vigil's ledger through its HTTP API (`GET /v1/actions`).

use std::path::PathBuf;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::Value;

use crate::api_client::ApiClient;
use crate::config::Config;

/// Arguments of `vigil actions`.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["user", "decision", "action"])))]
pub struct ActionsArgs {
    /// Configuration file (for `http.listen` and `http.token_file`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The API of the running Vigil (default: `http.listen` of the configuration). The token
    /// comes from VIGIL_API_TOKEN or `http.token_file`.
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Every action about this Okta user id.
    #[arg(long)]
    pub user: Option<String>,
    /// Every action of this decision id.
    #[arg(long)]
    pub decision: Option<String>,
    /// This action id.
    #[arg(long)]
    pub action: Option<String>,
}

/// Print the newest ledger record of each matching action as a JSON line, oldest first; a
/// summary line on stderr says which ledger partitions the answering instance holds.
pub fn run(args: &ActionsArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    let api = ApiClient::new(&config, args.api.as_deref())?;
    let query: Vec<(&str, &str)> = [
        ("user", &args.user),
        ("decision", &args.decision),
        ("action", &args.action),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    .collect();
    let answer = api.call(Method::GET, &["v1", "actions"], &query, None)?;
    let actions = answer["actions"]
        .as_array()
        .context("the API's answer has no `actions` list")?;
    for entry in actions {
        println!("{}", serde_json::to_string(entry)?);
    }
    let partitions = answer["partitions"]
        .as_array()
        .map(|p| p.iter().map(Value::to_string).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    eprintln!(
        "{} actions (from the ledger partitions the instance holds: {partitions})",
        actions.len()
    );
    Ok(true)
}
