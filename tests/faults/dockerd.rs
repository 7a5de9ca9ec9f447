//! A dockerd of a test's own, to restart without touching the host's.

use super::*;

/// A dockerd of the test's own; stopped (containers first) when dropped.
pub struct PrivateDockerd {
    pub host: String,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    pub child: Option<std::process::Child>,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

impl PrivateDockerd {
    /// Starts it (after clearing what a killed run left) and loads the test image.
    pub fn start(n: u8, log: PathBuf) -> PrivateDockerd {
        let exec_root = PathBuf::from(format!("/run/bgplb-t{n}-docker"));
        let mut d = PrivateDockerd {
            host: format!("unix:///run/bgplb-t{n}-docker.sock"),
            pidfile: exec_root.with_extension("pid"),
            exec_root,
            log,
            child: None,
            containers: Vec::new(),
            networks: Vec::new(),
        };
        // A private dockerd of a killed earlier run, recognised by its exec root.
        if let Ok(pid) = fs::read_to_string(&d.pidfile) {
            let cmdline = fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(d.exec_root.to_str().unwrap()) {
                let _ = run("kill", &["-KILL", pid.trim()]);
                thread::sleep(Duration::from_secs(1));
            }
        }
        d.spawn();
        let main_id = docker_ok(&["image", "inspect", "-f", "{{.Id}}", common::IMAGE]);
        let id = d.cli(&["image", "inspect", "-f", "{{.Id}}", common::IMAGE]);
        if String::from_utf8_lossy(&id.stdout) != main_id {
            let status = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "docker save {} | docker -H {} load -q",
                    common::IMAGE,
                    d.host
                ))
                .status()
                .expect("docker save | docker load");
            assert!(
                status.success(),
                "failed to load the test image into the private dockerd"
            );
        }
        // Leftovers of a killed earlier run.
        let ids = d.cli(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            d.cli(&["rm", "-f", id]);
        }
        d
    }

    pub fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("private dockerd log");
        let exec_root = self.exec_root.display().to_string();
        let data_root = format!(
            "/var/lib/{}",
            self.exec_root.file_name().unwrap().to_str().unwrap()
        );
        let child = Command::new("dockerd")
            .args([
                "-H",
                &self.host,
                "--exec-root",
                &exec_root,
                "--data-root",
                &data_root,
            ])
            .arg("--pidfile")
            .arg(&self.pidfile)
            .args([
                "--live-restore",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ])
            .args(["--ip-forward=false", "--userland-proxy=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("failed to start a private dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.cli(&["info", "-f", "{{.ID}}"]).status.success() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "the private dockerd exited ({status}); see {}",
                    self.log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the private dockerd did not answer in 60 s; see {}",
                self.log.display()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, and wait until it has exited; live-restore keeps the containers.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = run("kill", &["-TERM", &child.id().to_string()]);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["-H", self.host.as_str()];
        all.extend_from_slice(args);
        docker(&all)
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "docker -H {} {}: {}",
            self.host,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            for c in std::mem::take(&mut self.containers).iter().rev() {
                let _ = self.cli(&["rm", "-f", c]);
            }
            for net in std::mem::take(&mut self.networks).iter().rev() {
                let _ = self.cli(&["network", "rm", net]);
            }
        }
        self.stop();
    }
}
