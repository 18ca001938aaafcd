//! Where manifests come from: files, directories, standard input, charts.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::model::Problem;

/// One input named on the command line, once expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A manifest file (or standard input, named `-`).
    Manifest(PathBuf),
    /// A Helm chart directory (holding `Chart.yaml`).
    Chart(PathBuf),
}

/// A manifest stream read into memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// How reports name it: the path as given, or `<stdin>`.
    pub name: String,
    /// The text, without a byte-order mark.
    pub text: String,
    /// Whether it is a `.json` file (one JSON document, not a YAML stream).
    pub json: bool,
}

/// The name reports use for standard input.
pub const STDIN_NAME: &str = "<stdin>";

/// Manifest extensions picked up inside directories.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Expands `-f` arguments: files as they are, `-` for standard input, and
/// directories walked recursively for `*.yaml`, `*.yml` and `*.json` in
/// name order. A directory holding `Chart.yaml` is a Helm chart: its
/// templates are not manifests, so it is reviewed as a chart instead.
/// Files in `skip` (such as the `--images` file sitting next to the
/// manifests) are not picked up by the walk.
pub fn expand(paths: &[PathBuf], skip: &[PathBuf]) -> Result<Vec<Input>, Problem> {
    let skip: Vec<PathBuf> = skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            out.push(Input::Manifest(path.clone()));
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|e| Problem::file(path.display(), e))?;
        if meta.is_dir() {
            walk(path, &skip, &mut out).map_err(|e| Problem::file(path.display(), e))?;
        } else {
            out.push(Input::Manifest(path.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, skip: &[PathBuf], out: &mut Vec<Input>) -> std::io::Result<()> {
    if is_chart(dir) {
        out.push(Input::Chart(dir.to_path_buf()));
        return Ok(());
    }
    for entry in sorted_entries(dir)? {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue; // .git, editor files
        }
        if entry.is_dir() {
            // Symlinked directories are not followed: a link to an ancestor would loop forever.
            if !entry.is_symlink() {
                walk(&entry, skip, out)?;
            }
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
            && !entry.canonicalize().is_ok_and(|p| skip.contains(&p))
        {
            out.push(Input::Manifest(entry));
        }
    }
    Ok(())
}

/// Whether `dir` is a Helm chart.
pub fn is_chart(dir: &Path) -> bool {
    dir.join("Chart.yaml").is_file()
}

/// The entries of `dir`, sorted by name so reports are stable.
pub fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// Reads one manifest input; `-` reads standard input (once: later `-`
/// arguments read nothing more).
pub fn read(path: &Path) -> Result<Source, Problem> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Problem::file(STDIN_NAME, e))?;
        (STDIN_NAME.to_string(), bytes)
    } else {
        let bytes = std::fs::read(path).map_err(|e| Problem::file(path.display(), e))?;
        (path.display().to_string(), bytes)
    };
    let text = String::from_utf8(bytes).map_err(|e| Problem::file(&name, format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text);
    let json = path.extension().is_some_and(|e| e == "json");
    Ok(Source { name, text, json })
}
