//! The file watcher: it only says which paths changed, on a channel.
//!
//! It watches the *folders* of the files a run used, not recursively, and
//! leaves it to the plan to pick the files that count: editors save by
//! writing a temporary file and renaming it over the original, which a watch
//! on the file itself would lose (it follows the old inode).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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

    /// Watches the folders of `files` (and only those from now on).
    pub fn watch(&mut self, files: &[PathBuf]) -> Watched {
        let mut watched = Watched::default();
        let mut wanted = HashSet::new();
        for file in files {
            let path = absolute(file);
            if watched.files.iter().any(|(p, _)| p == &path) {
                continue;
            }
            if let Some(folder) = path.parent() {
                wanted.insert(folder.to_path_buf());
            }
            watched.files.push((path, file.display().to_string()));
        }
        for folder in wanted.difference(&self.folders.clone()) {
            match self.inner.watch(folder, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.folders.insert(folder.clone());
                    let inside = watched.files.iter().map(|(p, _)| p);
                    let inside = inside.filter(|p| p.parent() == Some(folder.as_path()));
                    watched.unseen.extend(inside.cloned());
                }
                Err(e) => watched.failed.push((folder.clone(), e)),
            }
        }
        for folder in self.folders.difference(&wanted).cloned().collect::<Vec<_>>() {
            // A folder that vanished has no watch left to remove.
            let _ = self.inner.unwatch(&folder);
            self.folders.remove(&folder);
        }
        watched
    }
}

/// What `FileWatcher::watch` did.
#[derive(Default)]
pub struct Watched {
    pub files: Vec<WatchedFile>,
    /// Files in folders watched only now: their changes so far were not seen.
    pub unseen: Vec<PathBuf>,
    /// Folders that could not be watched, and why.
    pub failed: Vec<(PathBuf, notify::Error)>,
}

impl Watched {
    /// The unseen files modified since `since`: changes the run may not have read.
    pub fn modified_since(&self, since: SystemTime) -> Vec<PathBuf> {
        let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
        self.unseen.iter().filter(|p| modified(p)).cloned().collect()
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
        assert!(counts(&EventKind::Modify(ModifyKind::Data(DataChange::Any))));
        assert!(counts(&EventKind::Modify(ModifyKind::Name(RenameMode::To))));
        assert!(counts(&EventKind::Create(CreateKind::File)));
        assert!(counts(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(!counts(&EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!counts(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(!counts(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))));
    }

    #[test]
    fn paths_are_named_as_events_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("lib")).unwrap();
        let through_dots = real.join("lib").join("..").join("main.rhai");
        assert_eq!(absolute(&through_dots), real.join("main.rhai"));
        assert_eq!(absolute(&real.join("missing").join("x.rhai")), real.join("missing").join("x.rhai"));
    }

    #[test]
    fn files_in_a_newly_watched_folder_are_checked_for_missed_saves() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cm.yaml");
        let before = SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::write(&file, "a: 1\n").unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = FileWatcher::new(tx).unwrap();
        let watched = watcher.watch(std::slice::from_ref(&file));
        assert_eq!(watched.modified_since(before), vec![absolute(&file)]);
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(watched.modified_since(later).is_empty());
        assert!(watcher.watch(&[file]).unseen.is_empty(), "its folder is watched already");
    }
}
