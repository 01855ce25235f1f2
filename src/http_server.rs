//! Serving an axum router until the process is asked to stop (the overrides API, the Event Hook
//! receiver).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing::info;

/// `/healthz` (alive), `/readyz` (stages ready) and `/metrics` (Prometheus), which every Vigil
/// HTTP server serves without authentication.
pub fn admin_routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(crate::health::readyz))
        .route("/metrics", axum::routing::get(crate::metrics::handler))
}

/// Serve [`admin_routes`] on `listen` (unless empty) on a thread of its own until `shutdown`;
/// for the stages that have no other HTTP server (detect, ingest alone).
pub fn spawn_admin(
    listen: &str,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    if listen.is_empty() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(serve(
        "metrics and health",
        listen,
        admin_routes(),
        shutdown,
    ))?;
    Ok(Some(
        std::thread::Builder::new()
            .name("admin-http".into())
            .spawn(move || {
                let _ = runtime.block_on(server);
            })?,
    ))
}

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
