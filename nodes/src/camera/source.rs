//! What a camera `source` names, and opening it with OpenCV.

use std::path::{Path, PathBuf};

use opencv::core::Mat;
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};

/// Extensions read as still images when a source is a directory or a file.
const IMAGE_EXTENSIONS: [&str; 10] = [
    "jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "pgm", "ppm", "pnm",
];

/// Why a camera source cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("camera source {0} does not exist")]
    Missing(String),
    #[error("camera source {0} could not be opened as a video: OpenCV's backends cannot read it (is it a video file, a device, a stream?)")]
    NotOpened(String),
    #[error("camera source {name}: there is no {path} — is a camera plugged in? `ls /dev/video*` lists the ones there; in a container, map it in with a compose `devices:` entry `{path}:{path}`; a video file or an rtsp:// URL is a source too")]
    NoDevice { name: String, path: String },
    #[error("camera source {0}: no images found")]
    NoImages(String),
    #[error("camera source {name}: {message}")]
    Unreadable { name: String, message: String },
    #[error("camera source {0}: OpenCV: {1}")]
    OpenCv(String, opencv::Error),
}

/// A parsed `source`.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A capture device: an index, or a `/dev/videoN` path.
    Device(DeviceId),
    /// A network stream, through OpenCV's FFmpeg backend.
    Stream(String),
    /// A video file.
    File(PathBuf),
    /// Still images, in name order.
    Images(Vec<PathBuf>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceId {
    Index(i32),
    Path(String),
}

impl Source {
    /// Live sources drop and come back; files and images end.
    pub fn is_live(&self) -> bool {
        matches!(self, Source::Device(_) | Source::Stream(_))
    }

    /// Reads `text` (relative paths against `base`), checking that files exist.
    pub fn parse(text: &str, base: &Path) -> Result<Source, SourceError> {
        if let Ok(index) = text.parse::<i32>() {
            return Ok(Source::Device(DeviceId::Index(index)));
        }
        if text.starts_with("/dev/video") {
            return Ok(Source::Device(DeviceId::Path(text.to_owned())));
        }
        if text.contains("://") {
            return Ok(Source::Stream(text.to_owned()));
        }
        let path = base.join(text);
        if path.is_dir() {
            return images_in(&path, text);
        }
        if text.contains(['*', '?', '[']) {
            let pattern = path.to_string_lossy().into_owned();
            let files = glob::glob(&pattern)
                .map_err(|e| SourceError::Unreadable {
                    name: text.to_owned(),
                    message: format!("not a valid glob: {e}"),
                })?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            return sorted_images(files, text);
        }
        if !path.exists() {
            return Err(SourceError::Missing(path.display().to_string()));
        }
        if is_image(&path) {
            return Ok(Source::Images(vec![path]));
        }
        Ok(Source::File(path))
    }

    /// Opens a device, stream or file. OpenCV reports a source it cannot
    /// read as "not opened" rather than as an error: that becomes one here.
    pub fn open(
        &self,
        width: Option<u32>,
        height: Option<u32>,
    ) -> Result<VideoCapture, SourceError> {
        let name = self.to_string();
        // Asked for a device that is not there, OpenCV tries each backend
        // and prints its own warnings before saying "not opened": the
        // missing device file says what is wrong, and what to do.
        if let Some(path) = self.device_file().filter(|path| !Path::new(path).exists()) {
            return Err(SourceError::NoDevice { name, path });
        }
        let cv = |e| SourceError::OpenCv(name.clone(), e);
        let mut capture = match self {
            Source::Device(DeviceId::Index(i)) => VideoCapture::new(*i, videoio::CAP_ANY),
            Source::Device(DeviceId::Path(p)) => VideoCapture::from_file(p, videoio::CAP_ANY),
            Source::Stream(url) => VideoCapture::from_file(url, videoio::CAP_FFMPEG),
            Source::File(path) => {
                VideoCapture::from_file(&path.to_string_lossy(), videoio::CAP_ANY)
            }
            Source::Images(_) => {
                return Err(SourceError::Unreadable {
                    name,
                    message: "images are read one by one, not opened as a video".into(),
                })
            }
        }
        .map_err(cv)?;
        if !capture.is_opened().map_err(cv)? {
            return Err(SourceError::NotOpened(name));
        }
        if matches!(self, Source::Device(_)) {
            // The driver picks the nearest size it supports; a refusal is not fatal.
            if let Some(w) = width {
                capture
                    .set(videoio::CAP_PROP_FRAME_WIDTH, f64::from(w))
                    .map_err(cv)?;
            }
            if let Some(h) = height {
                capture
                    .set(videoio::CAP_PROP_FRAME_HEIGHT, f64::from(h))
                    .map_err(cv)?;
            }
        }
        Ok(capture)
    }

    /// The device file a device source opens, where Linux names it
    /// (`0` is `/dev/video0`).
    fn device_file(&self) -> Option<String> {
        match self {
            Source::Device(DeviceId::Path(path)) => Some(path.clone()),
            Source::Device(DeviceId::Index(index)) if cfg!(target_os = "linux") => {
                Some(format!("/dev/video{index}"))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Device(DeviceId::Index(i)) => write!(f, "device {i}"),
            Source::Device(DeviceId::Path(p)) => f.write_str(p),
            Source::Stream(url) => f.write_str(url),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Images(files) => match files.as_slice() {
                [one] => write!(f, "{}", one.display()),
                many => write!(f, "{} images", many.len()),
            },
        }
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn images_in(dir: &Path, text: &str) -> Result<Source, SourceError> {
    let files = std::fs::read_dir(dir)
        .map_err(|e| SourceError::Unreadable {
            name: text.to_owned(),
            message: format!("cannot list the directory: {e}"),
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    sorted_images(files, text)
}

fn sorted_images(mut files: Vec<PathBuf>, text: &str) -> Result<Source, SourceError> {
    if files.is_empty() {
        return Err(SourceError::NoImages(text.to_owned()));
    }
    files.sort();
    Ok(Source::Images(files))
}

/// Decodes one still image as 8-bit BGR.
pub fn read_image(path: &Path) -> Result<Mat, SourceError> {
    let name = path.display().to_string();
    let mat = opencv::imgcodecs::imread(&path.to_string_lossy(), opencv::imgcodecs::IMREAD_COLOR)
        .map_err(|e| SourceError::OpenCv(name.clone(), e))?;
    if mat.empty() {
        return Err(SourceError::Unreadable {
            name,
            message: "not an image OpenCV can decode".into(),
        });
    }
    Ok(mat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_devices_streams_files_and_images_apart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clip.avi"), b"x").unwrap();
        std::fs::write(dir.path().join("b.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("a.PNG"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let base = dir.path();
        assert_eq!(
            Source::parse("0", base).unwrap(),
            Source::Device(DeviceId::Index(0))
        );
        assert_eq!(
            Source::parse("/dev/video2", base).unwrap(),
            Source::Device(DeviceId::Path("/dev/video2".into()))
        );
        assert_eq!(
            Source::parse("rtsp://cam.local/live", base).unwrap(),
            Source::Stream("rtsp://cam.local/live".into())
        );
        assert_eq!(
            Source::parse("clip.avi", base).unwrap(),
            Source::File(base.join("clip.avi"))
        );
        assert_eq!(
            Source::parse(".", base).unwrap(),
            Source::Images(vec![base.join("./a.PNG"), base.join("./b.jpg")])
        );
        assert_eq!(
            Source::parse("*.jpg", base).unwrap(),
            Source::Images(vec![base.join("b.jpg")])
        );
        assert!(matches!(
            Source::parse("*.gif", base),
            Err(SourceError::NoImages(_))
        ));
        let missing = Source::parse("gone.avi", base).unwrap_err();
        assert_eq!(
            missing.to_string(),
            format!(
                "camera source {} does not exist",
                base.join("gone.avi").display()
            )
        );
    }

    #[test]
    fn a_camera_that_is_not_there_is_named_with_what_to_do() {
        // No machine running the tests has a hundred cameras.
        for (text, path) in [("99", "/dev/video99"), ("/dev/video98", "/dev/video98")] {
            let source = Source::parse(text, Path::new(".")).unwrap();
            let error = source.open(None, None).unwrap_err().to_string();
            assert!(error.contains(&format!("there is no {path}")), "{error}");
            assert!(error.contains("is a camera plugged in?"), "{error}");
            assert!(error.contains("devices:"), "{error}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_video_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.avi");
        std::fs::write(&path, "not a video at all\n".repeat(100)).unwrap();
        let source = Source::parse("notes.avi", dir.path()).unwrap();
        let error = source.open(None, None).unwrap_err();
        assert!(matches!(error, SourceError::NotOpened(_)), "{error}");
        assert!(
            error.to_string().contains("could not be opened as a video"),
            "{error}"
        );
    }
}
