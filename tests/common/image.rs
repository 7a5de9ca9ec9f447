//! The test image `bgplb-test:latest`, built from `deploy/lab/test-image/`.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

use super::host::{docker, docker_ok};

/// The image every test container runs: busybox on an empty root.
pub const IMAGE: &str = "bgplb-test:latest";

/// The test image's Dockerfile, shared with `deploy/lab/demo.sh`.
const DOCKERFILE: &str = include_str!("../../deploy/lab/test-image/Dockerfile");

/// Builds `bgplb-test:latest` unless an image of the current revision exists.
///
/// Once per process (OnceLock), and under a lock file across processes.
pub fn ensure_image() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let _lock = LockFile::acquire(std::env::temp_dir().join("bgplb-test-image.lock"));
        if image_revision().as_deref() != Some(dockerfile_revision()) {
            build_image();
        }
    });
}

fn image_revision() -> Option<String> {
    let out = docker(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"bgplb.test.revision\"}}",
        IMAGE,
    ]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn build_image() {
    let context = TempDir::new().expect("failed to create the image build directory");
    fs::copy("/bin/busybox", context.path().join("busybox"))
        .expect("failed to copy /bin/busybox (install busybox-static)");
    fs::write(context.path().join("Dockerfile"), DOCKERFILE)
        .expect("failed to write the Dockerfile");
    let dir = context
        .path()
        .to_str()
        .expect("temporary path is not UTF-8");
    docker_ok(&["build", "-q", "-t", IMAGE, dir]);
}

/// The `bgplb.test.revision` label the Dockerfile sets.
fn dockerfile_revision() -> &'static str {
    let key = "bgplb.test.revision=\"";
    let start = DOCKERFILE
        .find(key)
        .expect("the Dockerfile has no revision label")
        + key.len();
    let len = DOCKERFILE[start..]
        .find('"')
        .expect("unterminated revision label");
    &DOCKERFILE[start..start + len]
}

/// A lock held by creating a file exclusively; removed on drop.
///
/// `std::fs::File::lock` would do, but needs Rust 1.89 (our MSRV is 1.80).
struct LockFile(PathBuf);

impl LockFile {
    fn acquire(path: PathBuf) -> LockFile {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return LockFile(path),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // A holder that died leaves the file; an image build takes seconds.
                    if age(&path).is_some_and(|a| a > Duration::from_secs(120)) {
                        let _ = fs::remove_file(&path);
                    }
                }
                Err(e) => panic!("failed to create lock file {}: {e}", path.display()),
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {}",
                path.display()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn age(path: &Path) -> Option<Duration> {
    let modified = fs::metadata(path).and_then(|m| m.modified()).ok()?;
    SystemTime::now().duration_since(modified).ok()
}
