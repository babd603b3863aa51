//! The file watcher: it only says which paths changed, on a channel.
//!
//! It watches the *folders* of the files a run used, not recursively, and
//! leaves it to the plan to pick the files that count: editors save by
//! writing a temporary file and renaming it over the original, which a watch
//! on the file itself would lose (it follows the old inode).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// What the watcher sends: paths that changed, or a problem it recovers from.
pub type Change = Result<Vec<PathBuf>, String>;

/// A watched file: the absolute path events name it by, and the name to show.
pub type WatchedFile = (PathBuf, String);

pub struct FileWatcher {
    inner: RecommendedWatcher,
    folders: HashSet<PathBuf>,
}

impl FileWatcher {
    pub fn new(changes: UnboundedSender<Change>) -> notify::Result<Self> {
        let inner = notify::recommended_watcher(move |res: notify::Result<Event>| {
            let change = match res {
                Ok(event) if counts(&event.kind) => Ok(event.paths),
                Ok(_) => return,
                Err(e) => Err(format!("file watcher: {e}")),
            };
            let _ = changes.send(change);
        })?;
        Ok(FileWatcher {
            inner,
            folders: HashSet::new(),
        })
    }

    /// Watches the folders of `files` (and only those from now on). Returns
    /// each file by the absolute path events name it by, with the name to
    /// show, and the folders that could not be watched.
    pub fn watch(
        &mut self,
        files: &[PathBuf],
    ) -> (Vec<WatchedFile>, Vec<(PathBuf, notify::Error)>) {
        let mut watched = Vec::new();
        let mut wanted = HashSet::new();
        for file in files {
            let path = absolute(file);
            if watched.iter().any(|(p, _)| p == &path) {
                continue;
            }
            if let Some(folder) = path.parent() {
                wanted.insert(folder.to_path_buf());
            }
            watched.push((path, file.display().to_string()));
        }
        let mut failed = Vec::new();
        for folder in wanted.difference(&self.folders.clone()) {
            match self.inner.watch(folder, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.folders.insert(folder.clone());
                }
                Err(e) => failed.push((folder.clone(), e)),
            }
        }
        for folder in self
            .folders
            .difference(&wanted)
            .cloned()
            .collect::<Vec<_>>()
        {
            // A folder that vanished has no watch left to remove.
            let _ = self.inner.unwatch(&folder);
            self.folders.remove(&folder);
        }
        (watched, failed)
    }
}

/// Events that mean "the content may be different now". Not opens and reads
/// (the run itself reads every file it watches), not attribute changes.
fn counts(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// The path inotify reports for `file`: its folder resolved (symlinks,
/// `..`, relative to the current directory), joined with its name. The file
/// itself is not resolved: it may be mid-rename, or not exist yet.
fn absolute(file: &Path) -> PathBuf {
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (folder.canonicalize(), file.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RenameMode};

    #[test]
    fn writes_renames_and_removals_count_reads_do_not() {
        assert!(counts(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(counts(&EventKind::Modify(ModifyKind::Name(RenameMode::To))));
        assert!(counts(&EventKind::Create(CreateKind::File)));
        assert!(counts(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!counts(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!counts(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!counts(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::Any
        ))));
    }

    #[test]
    fn paths_are_named_as_events_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("lib")).unwrap();
        let through_dots = real.join("lib").join("..").join("main.rhai");
        assert_eq!(absolute(&through_dots), real.join("main.rhai"));
        assert_eq!(
            absolute(&real.join("missing").join("x.rhai")),
            real.join("missing").join("x.rhai")
        );
    }
}
