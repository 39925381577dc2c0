//! `cos_put` with the `fs` backend writing into an s3fs-fuse mount of a real
//! S3 server's bucket: the objects must appear through the S3 API.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::s3::S3Server;
use support::storage::{run_spec, sample_images, state};

/// A bucket mounted with s3fs in the foreground; unmounted when dropped.
struct Mount {
    point: tempfile::TempDir,
    child: Child,
    _passwd: tempfile::NamedTempFile,
}

impl Mount {
    /// Mounts `bucket`, or says why it cannot.
    fn new(server: &S3Server, bucket: &str) -> Result<Mount, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse does not exist".into());
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
            .map_err(|e| format!("cannot run s3fs ({e}); scripts/setup.sh installs it"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !is_mounted(point.path()) {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                return Err(format!("s3fs exited with {status}: {}", stderr.trim()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("s3fs did not mount the bucket within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Mount {
            point,
            child,
            _passwd: passwd,
        })
    }

    fn path(&self) -> PathBuf {
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_written_into_an_s3fs_mount_appear_through_the_s3_api() {
    let server = S3Server::start();
    server.create_bucket("mounted").await;
    let mount = match Mount::new(&server, "mounted") {
        Ok(mount) => mount,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a bucket with s3fs-fuse here: {why}");
            return;
        }
    };
    let images = sample_images();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"version: 1
name: mounted
nodes:
  images:
    type: files
    path: "{}/*.[jp][pn]g"
  store:
    type: cos_put
    inputs: [images]
    concurrency: 8
    backend:
      fs:
        root: {}
"#,
        support::storage::SAMPLE_IMAGES,
        mount.path().display()
    );
    let (report, metrics) = run_spec(dir.path(), &yaml, Duration::from_secs(180)).await;
    assert!(report.is_success(), "{report:?}");
    let store = state(&metrics, "store");
    assert!(
        store.starts_with(&format!("stored={} ", images.len())),
        "{store}"
    );

    let mut expected: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(seq, image)| {
            let ext = image.extension().unwrap().to_str().unwrap();
            format!("test{seq}.{ext}")
        })
        .collect();
    expected.sort();
    // The original's flat `test<N>.png` names: s3s-fs cannot store the
    // folder objects s3fs makes for `mkdir` (it answers 500), so folders in
    // keys are tested on a local directory (`fs` module tests). No
    // temporary part file is left behind.
    assert_eq!(server.list("mounted").await, expected);
    for (seq, image) in images.iter().enumerate() {
        let ext = image.extension().unwrap().to_str().unwrap();
        let (body, _) = server.get("mounted", &format!("test{seq}.{ext}")).await;
        assert!(body == std::fs::read(image).unwrap(), "{}", image.display());
    }
    drop(mount);
}
