//! Transport abuse: connections that never finish (or never start) the TLS
//! handshake hold no handler, are closed after the handshake timeout, and do
//! not stop the node from serving its pinned peers meanwhile.

use std::time::{Duration, Instant};

use enlace_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn stalled_handshakes_are_closed_and_the_node_keeps_serving() {
    let fed = Federation::new()
        .node("MEX")
        .node("GTM")
        .agreement("MEX", "GTM", &["investigation"])
        .start()
        .await
        .unwrap();
    let addr = fed.get("GTM").peer_addr;
    // 30 connections (under the 32 handshakes allowed per source address):
    // half send nothing, half the first bytes of a TLS record and stop.
    let mut stalled = Vec::new();
    for i in 0..30 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
        }
        stalled.push(s);
    }
    // A pinned peer is served at once meanwhile.
    let started = Instant::now();
    let request = fed.search_request("MEX", "GTM", vec![doc_item("doc", "GTM", "A1234567")]);
    let env = fed.sign("MEX", &request);
    fed.exchange("MEX", "GTM")
        .unwrap()
        .search(env)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served in {:?}",
        started.elapsed()
    );
    // A flood from the same address beyond its 32 handshakes is dropped at once.
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let dropped_at_once = Instant::now();
    let mut open = 0;
    for mut s in flood {
        let mut buf = [0u8; 8];
        match tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            _ => open += 1,
        }
    }
    // At most the two handshakes still free for this address stay open.
    assert!(open <= 2, "{open} flood connections were not dropped");
    assert!(dropped_at_once.elapsed() < Duration::from_secs(4));
    // Every stalled connection is closed by the node within the handshake timeout (5 s).
    let deadline = Duration::from_secs(9);
    for mut s in stalled {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(deadline, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert_eq!(closed, Ok(true), "a stalled connection stayed open");
    }
    assert!(started.elapsed() < deadline + Duration::from_secs(1));
    fed.stop().await;
}
