//! A bucket of an `s3s-fs` server mounted with s3fs-fuse, for tests that
//! write through the mount and look through the S3 API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait;

use crate::s3::S3Server;

/// Why a bucket cannot be mounted here (a test then says so and skips).
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("/dev/fuse does not exist")]
    NoFuse,
    #[error("cannot run s3fs ({0}); scripts/setup.sh installs it")]
    NoS3fs(std::io::Error),
    #[error("s3fs exited with {status}: {stderr}")]
    Exited {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("s3fs did not mount the bucket within 15 s")]
    Timeout,
}

/// A bucket mounted with s3fs in the foreground; unmounted when dropped.
pub struct Mount {
    point: tempfile::TempDir,
    child: Child,
    _passwd: tempfile::NamedTempFile,
}

impl Mount {
    /// Mounts `bucket`, or says why it cannot.
    pub fn new(server: &S3Server, bucket: &str) -> Result<Mount, MountError> {
        if !Path::new("/dev/fuse").exists() {
            return Err(MountError::NoFuse);
        }
        let passwd = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            passwd.path(),
            format!("{}:{}\n", server.access_key, server.secret_key),
        )
        .unwrap();
        // s3fs refuses a password file others can read.
        std::fs::set_permissions(
            passwd.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let point = tempfile::tempdir().unwrap();
        let options = format!(
            "use_path_request_style,url={},passwd_file={},stat_cache_expire=1,enable_noobj_cache",
            server.endpoint(),
            passwd.path().display()
        );
        let mut child = Command::new("s3fs")
            .arg(bucket)
            .arg(point.path())
            .args(["-f", "-o", &options])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(MountError::NoS3fs)?;
        // Mounted, or s3fs ended (and says why on stderr).
        let settled = wait::at_most(Duration::from_secs(15))
            .every(Duration::from_millis(50))
            .poll(|| {
                if is_mounted(point.path()) {
                    return Some(None);
                }
                child.try_wait().ok().flatten().map(Some)
            });
        match settled {
            Some(None) => {}
            Some(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                return Err(MountError::Exited {
                    status,
                    stderr: stderr.trim().to_owned(),
                });
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MountError::Timeout);
            }
        }
        Ok(Mount {
            point,
            child,
            _passwd: passwd,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.point.path().to_path_buf()
    }
}

fn is_mounted(point: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let point = point.display().to_string();
    text.lines()
        .any(|l| l.split_whitespace().nth(1) == Some(point.as_str()))
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg(self.point.path())
            .status()
            .or_else(|_| Command::new("umount").arg(self.point.path()).status());
        if !matches!(unmounted, Ok(s) if s.success()) {
            let _ = self.child.kill();
        }
        // Bounded: whatever happened, it is killed after that.
        let _ = wait::at_most(Duration::from_secs(10))
            .until(|| !matches!(self.child.try_wait(), Ok(None)));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
