//! SIGINT/SIGTERM → a flag the stages poll between batches. A second signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::{info, warn};

/// A flag set on the first SIGINT or SIGTERM; the process exits with 130 on the second.
pub fn on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let set = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    warn!("cannot install signal handlers; stop with SIGKILL");
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                info!("shutdown requested: finishing in-flight records (signal again to exit at once)");
                set.store(true, Ordering::Relaxed);
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                warn!("second signal: exiting without committing (records will be consumed again)");
                std::process::exit(130);
            });
        })?;
    Ok(flag)
}

/// SIGHUPs received so far; the first call installs the handler (a SIGHUP no longer ends the
/// process). Watchers compare the count with the one they last saw.
pub fn hangups() -> anyhow::Result<Arc<std::sync::atomic::AtomicU64>> {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    static HANGUPS: OnceLock<Arc<AtomicU64>> = OnceLock::new();
    if let Some(count) = HANGUPS.get() {
        return Ok(count.clone());
    }
    let count = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let mut hangup = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    })?;
    let seen = count.clone();
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            runtime.block_on(async move {
                while hangup.recv().await.is_some() {
                    info!("SIGHUP: reloading the policies");
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            });
        })?;
    Ok(HANGUPS.get_or_init(|| count).clone())
}

/// Sleep `wait`, waking early when `shutdown` is set; whether the whole wait passed.
pub async fn sleep_unless_stopped(wait: std::time::Duration, shutdown: &AtomicBool) -> bool {
    let until = tokio::time::Instant::now() + wait;
    while !shutdown.load(Ordering::Relaxed) {
        let now = tokio::time::Instant::now();
        if now >= until {
            return true;
        }
        tokio::time::sleep((until - now).min(std::time::Duration::from_millis(50))).await;
    }
    false
}
