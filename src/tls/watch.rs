//! The reload of certificates whose files changed: one small thread per hub polls the
//! files' modification times every `tls_reload_interval` (off the shards), and reloads
//! what changed. A Kubernetes Secret mounted as a volume is updated in place by the
//! kubelet, which this sees (docs/tls.md).

use std::sync::Arc;
use std::time::Duration;

use super::Certs;

/// Runs while it is held; dropping it stops the thread at its next wakeup.
pub struct Watcher {
    _stop: crossbeam_channel::Sender<()>,
}

/// Polls `certs` every `every`; None when there is nothing to watch.
pub fn spawn(certs: Vec<Arc<Certs>>, every: Duration) -> std::io::Result<Option<Watcher>> {
    if certs.is_empty() {
        return Ok(None);
    }
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    std::thread::Builder::new()
        .name("ringhub-tls-watch".into())
        .spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(every)
            {
                for c in certs.iter().filter(|c| c.changed()) {
                    log(c, c.reload());
                }
            }
        })?;
    Ok(Some(Watcher { _stop: stop }))
}

/// Reloads every one of `certs` (`SIGHUP`): a summary, or what failed.
pub fn reload_all(certs: &[Arc<Certs>]) -> Result<String, String> {
    let failed: Vec<String> = certs
        .iter()
        .filter_map(|c| c.reload().err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    if failed.is_empty() {
        let names: Vec<&str> = certs.iter().map(|c| c.name).collect();
        Ok(format!("certificates reloaded: {}", names.join(", ")))
    } else {
        Err(failed.join("; "))
    }
}

pub fn log(certs: &Certs, outcome: Result<(), String>) {
    match outcome {
        Ok(()) => tracing::info!(listener = certs.name, "certificate files changed: reloaded"),
        Err(error) => tracing::error!(
            listener = certs.name,
            %error,
            "certificate reload failed; keeping the previous certificate"
        ),
    }
}
