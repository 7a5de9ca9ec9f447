//! Which Docker driver name is bgplb's: networks of that driver are the ones
//! it manages, whatever name the plugin was installed under.
//!
//! A legacy plugin is named after its socket file. A managed plugin is named
//! by `docker plugin install NAME:TAG`, which bgplb cannot see directly: it
//! finds its plugin id in the bind mount Docker gives every managed plugin
//! (`/run/docker/plugins/<id>` on the host, mounted on `/run/docker/plugins`)
//! and asks Docker for the plugin's name.

use std::path::Path;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// Where the managed plugin's sockets are mounted inside its rootfs.
const PLUGIN_RUNTIME_DIR: &str = "/run/docker/plugins";

/// Errors while asking Docker for the plugin's name.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to reach docker at {0}")]
    Connect(String, #[source] std::io::Error),
    #[error("failed to list docker plugins")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("docker answered {0} to the plugin list")]
    Status(u16),
    #[error("failed to decode the plugin list")]
    Decode(#[source] serde_json::Error),
}

/// The id of the managed plugin bgplb runs in, read from `/proc/self/mountinfo`
/// text; `None` when bgplb is not a managed plugin.
pub fn managed_plugin_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        // Fields: id parent major:minor root mount-point options ...
        let mut fields = line.split_whitespace();
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        if mount_point != PLUGIN_RUNTIME_DIR {
            return None;
        }
        let id = Path::new(root).file_name()?.to_str()?;
        let is_id = id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit());
        is_id.then(|| id.to_string())
    })
}

#[derive(Debug, Deserialize)]
struct PluginEntry {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name")]
    name: String,
}

/// The name (`NAME:TAG`) of the plugin with `id`, from the plugin list JSON.
pub fn name_of(plugins_json: &[u8], id: &str) -> Result<Option<String>, Error> {
    let plugins: Vec<PluginEntry> = serde_json::from_slice(plugins_json).map_err(Error::Decode)?;
    Ok(plugins.into_iter().find(|p| p.id == id).map(|p| p.name))
}

/// Asks Docker (`GET /plugins`, which bollard does not cover) for the name of
/// the plugin with `id`.
pub async fn plugin_name(docker_socket: &Path, id: &str) -> Result<Option<String>, Error> {
    let path = docker_socket.display().to_string();
    let stream = tokio::net::UnixStream::connect(docker_socket)
        .await
        .map_err(|e| Error::Connect(path, e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Http(e.into()))?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/v1.41/plugins")
        .header("Host", "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::Http(e.into()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Error::Http(e.into()))?;
    if !response.status().is_success() {
        return Err(Error::Status(response.status().as_u16()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Http(e.into()))?;
    name_of(&body.to_bytes(), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5b2c3d4e5f60718293a4b5c6d7e8f9001122334455667788990aabbccddeeff0";

    #[test]
    fn plugin_id_comes_from_the_runtime_mount() {
        let mountinfo = format!(
            "22 1 0:21 / / rw,relatime - overlay overlay rw\n\
             31 22 0:25 /docker/plugins/{ID} /run/docker/plugins rw,nosuid - tmpfs tmpfs rw\n"
        );
        assert_eq!(managed_plugin_id(&mountinfo).as_deref(), Some(ID));
    }

    #[test]
    fn legacy_plugin_has_no_plugin_id() {
        let mountinfo =
            "22 1 0:21 / / rw - ext4 /dev/vda rw\n25 22 0:22 / /run rw - tmpfs tmpfs rw\n";
        assert_eq!(managed_plugin_id(mountinfo), None);
    }

    #[test]
    fn name_is_looked_up_by_id() {
        let json =
            format!(r#"[{{"Id":"other","Name":"x:latest"}},{{"Id":"{ID}","Name":"lb:v2"}}]"#);
        assert_eq!(
            name_of(json.as_bytes(), ID).unwrap().as_deref(),
            Some("lb:v2")
        );
        assert_eq!(name_of(b"[]", ID).unwrap(), None);
        assert!(name_of(b"not json", ID).is_err());
    }
}
