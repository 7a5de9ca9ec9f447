use super::*;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

async fn call(path: &str, body: &'static str) -> (StatusCode, serde_json::Value) {
    // dockerd sends no Content-Type header.
    send(Request::post(path).body(Body::from(body)).unwrap()).await
}

async fn send(req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let (connection, handle, _) = rtnetlink::new_connection().unwrap();
    tokio::spawn(connection);
    let (tx, _rx) = mpsc::channel(16);
    let state = Arc::new(PluginState {
        netdev: NetDevices::new(handle, "test"),
        fresh: Arc::default(),
        controller: tx,
        global_scope: false,
        networks: tokio::sync::watch::channel(Vec::new()).1,
    });
    let resp = router(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).expect("every response is JSON"),
    )
}

#[tokio::test]
async fn activate_with_an_empty_body_lists_both_drivers() {
    let (status, body) = call("/Plugin.Activate", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"Implements": ["NetworkDriver", "IpamDriver"]})
    );
}

#[tokio::test]
async fn capabilities_report_local_scope_by_default() {
    let (_, body) = call("/NetworkDriver.GetCapabilities", "").await;
    assert_eq!(body["Scope"], "local");
    let (_, body) = call("/IpamDriver.GetCapabilities", "").await;
    assert_eq!(body["RequiresMACAddress"], false);
}

#[tokio::test]
async fn wide_subnet_is_refused_with_err_naming_slash_32() {
    let (status, body) = call(
        "/IpamDriver.RequestPool",
        r#"{"AddressSpace":"local","Pool":"203.0.113.0/24","V6":false}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err = body["Err"].as_str().unwrap();
    assert!(
        err.contains("/32") && err.contains("203.0.113.0/24"),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_json_gets_a_clear_error() {
    let (status, body) = call("/IpamDriver.RequestPool", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["Err"]
        .as_str()
        .unwrap()
        .starts_with("malformed RequestPool request"));
}

#[tokio::test]
async fn release_calls_for_unknown_ids_succeed_with_a_json_body() {
    let (status, body) = call("/IpamDriver.ReleasePool", r#"{"PoolID":"nothing"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({}));
}

#[tokio::test]
async fn bad_endpoint_id_is_refused_before_touching_the_kernel() {
    let (status, body) = call(
        "/NetworkDriver.Leave",
        r#"{"NetworkID":"x","EndpointID":"../etc"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["Err"].as_str().unwrap().contains("endpoint id"));
}

#[tokio::test]
async fn unknown_call_is_a_json_404() {
    let (status, body) = call("/NetworkDriver.SomethingNew", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["Err"].is_string());
}

#[tokio::test]
async fn refusals_before_any_handler_are_json_too() {
    let huge = vec![b' '; 3 << 20];
    let req = Request::post("/IpamDriver.RequestPool").body(Body::from(huge));
    let (status, body) = send(req.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["Err"].as_str().unwrap().contains("length limit"),
        "{body}"
    );

    let req = Request::get("/Plugin.Activate")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["Err"].is_string(), "{body}");
}
