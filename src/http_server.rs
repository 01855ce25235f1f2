//! Serving an axum router until the process is asked to stop (the overrides API, the Event Hook
//! receiver).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing::info;

/// Listen on `listen` (`address:port`) and serve `router` until `shutdown` is set; `name` says
/// what it is in logs. The returned task ends with the server.
pub async fn serve(
    name: &'static str,
    listen: &str,
    router: axum::Router,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("{name}: `{listen}` is not an address:port"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("{name}: cannot listen on {addr}"))?;
    info!(address = %listener.local_addr()?, "{name} listening");
    Ok(tokio::spawn(async move {
        let stop = async move {
            while !shutdown.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "{name} stopped");
        }
    }))
}
