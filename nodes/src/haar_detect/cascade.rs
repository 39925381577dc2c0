//! Finding a Haar cascade by name (in the opencv-data package's folder) or
//! by path.

use std::path::{Path, PathBuf};

/// Where OpenCV's data packages put their Haar cascades.
const CASCADE_DIRS: [&str; 3] = [
    "/usr/share/opencv4/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
    "/usr/share/opencv/haarcascades",
];

const PREFIX: &str = "haarcascade_";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CascadeError {
    #[error("unknown cascade `{name}`; the cascades found in {dir} are: {names}")]
    UnknownName {
        name: String,
        dir: String,
        names: String,
    },
    #[error("no Haar cascade folder found (looked in {0}); install the opencv-data package or give a path to an .xml cascade")]
    NoFolder(String),
    #[error("cascade file {0} does not exist")]
    MissingFile(String),
}

/// Whether `cascade` is a path rather than a name.
pub fn is_path(cascade: &str) -> bool {
    cascade.contains('/') || cascade.ends_with(".xml")
}

/// The file a cascade name or path stands for; relative paths resolve
/// against `base`.
pub fn resolve(cascade: &str, base: &Path) -> Result<PathBuf, CascadeError> {
    if is_path(cascade) {
        let path = base.join(cascade);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(CascadeError::MissingFile(path.display().to_string()))
        };
    }
    let dir = folder()?;
    let name = cascade.strip_prefix(PREFIX).unwrap_or(cascade);
    let path = dir.join(format!("{PREFIX}{name}.xml"));
    if path.is_file() {
        return Ok(path);
    }
    Err(CascadeError::UnknownName {
        name: cascade.to_owned(),
        dir: dir.display().to_string(),
        names: names(&dir).join(", "),
    })
}

fn folder() -> Result<PathBuf, CascadeError> {
    CASCADE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.is_dir())
        .ok_or_else(|| CascadeError::NoFolder(CASCADE_DIRS.join(", ")))
}

/// The cascade names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.strip_prefix(PREFIX)?
                .strip_suffix(".xml")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_in_the_opencv_data_folder() {
        let base = Path::new("/nowhere");
        let path = resolve("frontalface_default", base).unwrap();
        assert!(
            path.ends_with("haarcascade_frontalface_default.xml"),
            "{path:?}"
        );
        assert_eq!(
            resolve("haarcascade_eye", base)
                .unwrap()
                .file_name()
                .unwrap(),
            "haarcascade_eye.xml"
        );
    }

    #[test]
    fn an_unknown_name_lists_the_names_found() {
        let error = resolve("frontal_face", Path::new("/")).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("unknown cascade `frontal_face`; the cascades found in "),
            "{text}"
        );
        assert!(text.contains("eye, eye_tree_eyeglasses, "), "{text}");
        assert!(text.contains("frontalface_default"), "{text}");
    }

    #[test]
    fn paths_resolve_against_the_spec_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.xml"), "<x/>").unwrap();
        assert_eq!(
            resolve("mine.xml", dir.path()).unwrap(),
            dir.path().join("mine.xml")
        );
        assert_eq!(
            resolve("models/none.xml", dir.path()).unwrap_err(),
            CascadeError::MissingFile(dir.path().join("models/none.xml").display().to_string())
        );
    }
}
