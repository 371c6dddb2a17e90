//! Live reload: what triggers one (`SIGHUP`, a change in a watched
//! directory) and where the served configuration stands (its generation,
//! the last reload that failed). The reload itself, building and swapping
//! in a new app, is `run`'s.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// The served configuration's generation and the last failed reload,
/// shared by every generation of the state.
#[derive(Debug)]
pub struct ReloadStatus {
    active: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Default for ReloadStatus {
    fn default() -> Self {
        Self {
            active: AtomicU64::new(1),
            last_error: Mutex::new(None),
        }
    }
}

impl ReloadStatus {
    /// The generation being served: 1 for the config loaded at start.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Why the latest reload was refused; `None` once one succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Generation `generation` is now served.
    pub fn succeeded(&self, generation: u64) {
        self.active.store(generation, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A reload was refused: the served generation stays.
    pub fn failed(&self, error: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// Why a reload starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// `SIGHUP`.
    Signal,
    /// A watched file changed.
    Change(PathBuf),
}

/// Waits for reload causes: `SIGHUP`, and changes in the watched
/// directories. Changes that come together are one reload.
#[derive(Debug)]
pub struct Triggers {
    causes: mpsc::Receiver<Cause>,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// How long a burst of file events is waited out before reloading: an
/// editor's save or a ConfigMap swap is several events.
const SETTLE: Duration = Duration::from_millis(200);

impl Triggers {
    /// Listens for `SIGHUP` and watches `files`' directories (a config
    /// file's, the endpoint directory): a change to one of `files`, to a
    /// `*.toml` in a watched endpoint directory, or a Kubernetes ConfigMap
    /// swap (`..data`) is a cause. Call inside the runtime.
    pub fn start(config_file: Option<&Path>, endpoints_dir: Option<&Path>) -> Result<Self, String> {
        // One pending cause is enough: it reloads everything.
        let (sender, causes) = mpsc::channel(1);
        let on_signal = sender.clone();
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| format!("cannot listen for SIGHUP: {e}"))?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let _ = on_signal.try_send(Cause::Signal);
            }
        });
        let config_file = config_file.map(Path::to_path_buf);
        let endpoints_dir = endpoints_dir.map(Path::to_path_buf);
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(file) = &config_file {
            dirs.push(parent(file));
        }
        if let Some(dir) = &endpoints_dir {
            dirs.push(dir.clone());
        }
        if dirs.is_empty() {
            return Ok(Self {
                causes,
                _watcher: None,
            });
        }
        let file_name = config_file
            .as_ref()
            .and_then(|f| f.file_name().map(|n| n.to_os_string()));
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let relevant = event.paths.iter().find(|path| {
                    let name = path.file_name().unwrap_or_default();
                    name.to_string_lossy().starts_with("..")
                        || file_name.as_deref() == Some(name)
                        || (endpoints_dir
                            .as_deref()
                            .is_some_and(|d| path.parent() == Some(d))
                            && path.extension().is_some_and(|e| e == "toml"))
                });
                if let Some(path) = relevant {
                    let _ = sender.try_send(Cause::Change(path.clone()));
                }
            })
            .map_err(|e| format!("cannot watch files: {e}"))?;
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        }
        Ok(Self {
            causes,
            _watcher: Some(watcher),
        })
    }

    /// The next cause, once the events that came with it have settled.
    pub async fn next(&mut self) -> Option<Cause> {
        let cause = self.causes.recv().await?;
        tokio::time::sleep(SETTLE).await;
        while self.causes.try_recv().is_ok() {}
        Some(cause)
    }
}

/// The directory of `file` (`.` for a bare name).
fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
