//! A stand-in for bgplb's plugin socket while bgplb is down.

use super::*;

/// Answers Docker's plugin calls in bgplb's place while bgplb is down, so
/// that Docker removes containers and networks at once (without a plugin it
/// retries for 30 s, then goes ahead anyway) and bgplb hears of none of it.
pub struct StandInPlugin {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl StandInPlugin {
    pub fn start(socket: &Path) -> StandInPlugin {
        let _ = fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind the stand-in plugin socket");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        thread::spawn(move || serve_plugin_calls(stream));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        StandInPlugin {
            socket: socket.to_path_buf(),
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for StandInPlugin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = fs::remove_file(&self.socket);
    }
}

/// HTTP/1.1 with keep-alive: every call succeeds with an empty answer.
fn serve_plugin_calls(stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().expect("clone a unix stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        // Removal calls succeed; anything else fails, as a down plugin would.
        let removal = [
            "Leave",
            "DeleteEndpoint",
            "DeleteNetwork",
            "ReleaseAddress",
            "ReleasePool",
            "RevokeExternalConnectivity",
            "EndpointOperInfo",
        ];
        let answer = if request_line.contains("Plugin.Activate") {
            r#"{"Implements":["NetworkDriver","IpamDriver"]}"#
        } else if request_line.contains("GetCapabilities") {
            r#"{"Scope":"local","ConnectivityScope":"local"}"#
        } else if removal.iter().any(|call| request_line.contains(call)) {
            "{}"
        } else {
            r#"{"Err":"bgplb is down (test stand-in)"}"#
        };
        let status = if answer.contains("Err") {
            "500 Internal Server Error"
        } else {
            "200 OK"
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\n\
             Content-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
