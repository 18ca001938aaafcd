//! Writing a fixed file atomically, and showing the change as a diff.
//!
//! The new text goes to a temporary file in the same directory, is synced,
//! given the original's permissions and renamed over it, so a reader (or a
//! crash) sees either the old file or the new one, never half of each. The
//! file is read again first: if it changed since the review read it, it is
//! left alone.

use std::io::Write;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use super::FileEdit;

const BOM: &str = "\u{feff}";

/// Why a fixed file was not written. The original is intact in every case.
#[derive(Debug, thiserror::Error)]
#[error("{}: {failure}", path.display())]
pub struct WriteError {
    /// The file (as named on the command line).
    pub path: PathBuf,
    /// What went wrong.
    pub failure: WriteFailure,
}

/// What stopped a write.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailure {
    /// Standard input has no file to write back to.
    #[error("standard input cannot be written back; use --diff, or name the files with -f")]
    NoFile,
    /// The file changed between reading and writing.
    #[error("changed since it was read; not written (run again)")]
    Changed,
    /// The file's permissions forbid writing it.
    #[error("the file is read-only; not written")]
    ReadOnly,
    /// A step of the write failed.
    #[error("{step}: {source}; not written")]
    Io {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Writes `edit.after` over the file `edit` was planned from.
pub fn write(edit: &FileEdit) -> Result<(), WriteError> {
    let path = edit.path.as_ref().ok_or_else(|| WriteError {
        path: PathBuf::from(&edit.name),
        failure: WriteFailure::NoFile,
    })?;
    let fail = |failure| WriteError {
        path: path.clone(),
        failure,
    };
    let io = |step: &'static str| move |source| fail(WriteFailure::Io { step, source });
    // The file a symlink points to is rewritten; the link stays a link.
    let target = std::fs::canonicalize(path).map_err(io("cannot resolve the path"))?;
    let current = std::fs::read(&target).map_err(io("cannot read it again"))?;
    let bom = current.starts_with(BOM.as_bytes());
    let text = if bom { &current[BOM.len()..] } else { &current[..] };
    if text != edit.before.as_bytes() {
        return Err(fail(WriteFailure::Changed));
    }
    let meta = std::fs::metadata(&target).map_err(io("cannot read its permissions"))?;
    if meta.permissions().readonly() {
        return Err(fail(WriteFailure::ReadOnly));
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".entrypoint-guard-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io("cannot create a temporary file beside it"))?;
    let mut bytes = Vec::with_capacity(edit.after.len() + BOM.len());
    if bom {
        bytes.extend_from_slice(BOM.as_bytes());
    }
    bytes.extend_from_slice(edit.after.as_bytes());
    temp.write_all(&bytes).map_err(io("cannot write the temporary file"))?;
    temp.as_file()
        .set_permissions(meta.permissions())
        .map_err(io("cannot give the temporary file the original's permissions"))?;
    temp.as_file()
        .sync_all()
        .map_err(io("cannot sync the temporary file"))?;
    // On failure the temporary file is removed when `temp` drops.
    temp.persist(&target)
        .map_err(|e| io("cannot rename the temporary file over it")(e.error))?;
    // Make the rename itself durable. Not every filesystem can sync a
    // directory; the file is written either way.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The change `edit` makes as a unified diff (`patch -p0` applies it).
pub fn diff(edit: &FileEdit) -> String {
    TextDiff::from_lines(&edit.before, &edit.after)
        .unified_diff()
        .context_radius(3)
        .header(&edit.name, &edit.name)
        .to_string()
}
