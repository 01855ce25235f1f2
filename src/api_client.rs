//! A client of a running Vigil's HTTP API (`vigil override --api`, `vigil actions`): the way to
//! reach `vigil run` on its embedded broker, which nothing outside the process can connect to.
//!
//! The base URL is a flag's value or `http://` + `http.listen`; the bearer token comes from
//! `http.token_file` or `VIGIL_API_TOKEN`, never from a flag (flags end up in shell history and
//! process lists).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::config::Config;
use crate::connector::http;
use crate::respond::api::{api_token, API_TOKEN_ENV};

/// How long one API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking client of one Vigil HTTP API.
pub struct ApiClient {
    base: Url,
    token: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl ApiClient {
    /// A client of the API at `api` (a URL), or at `config`'s `http.listen` when `None`.
    pub fn new(config: &Config, api: Option<&str>) -> anyhow::Result<Self> {
        let base = match api {
            Some(url) => http::base_url("--api", url)?,
            None => listen_url(&config.http.listen)?,
        };
        let token = api_token(&config.http)?.ok_or_else(|| {
            anyhow!("no API token: set {API_TOKEN_ENV} or http.token_file to the running Vigil's")
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(ApiClient {
            base,
            token,
            client: http::client(REQUEST_TIMEOUT)?,
            runtime,
        })
    }

    /// `method` on the path made of `segments` (each escaped) with `query` and a JSON `body`;
    /// the answer's JSON, or an error with the API's own message.
    pub fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("{} cannot be a base URL", self.base))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach the Vigil API at {}", self.base))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let json: Option<Value> = serde_json::from_str(&text).ok();
            if !status.is_success() {
                let message = json
                    .as_ref()
                    .and_then(|j| j.get("error"))
                    .and_then(Value::as_str)
                    .map_or(text.as_str(), |m| m);
                bail!("{method} {} answered {status}: {message}", url.path());
            }
            json.with_context(|| format!("{method} {} answered {status} without JSON", url.path()))
        })
    }
}

/// The URL of the API a Vigil listening on `listen` serves (an unspecified address is reached on
/// loopback).
fn listen_url(listen: &str) -> anyhow::Result<Url> {
    if listen.is_empty() {
        bail!("http.listen is empty (the API is off): give the API's URL with --api URL");
    }
    let mut addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("http.listen: `{listen}` is not an address:port"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(Url::parse(&format!("http://{addr}/"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_address_becomes_a_loopback_url() {
        assert_eq!(
            listen_url("127.0.0.1:8088").unwrap().as_str(),
            "http://127.0.0.1:8088/"
        );
        assert_eq!(
            listen_url("0.0.0.0:9000").unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            listen_url("[::]:9000").unwrap().as_str(),
            "http://[::1]:9000/"
        );
        let off = listen_url("").unwrap_err().to_string();
        assert!(off.contains("--api"), "{off}");
    }
}
