//! A null MQTT server for the `generator` check: it acks every QoS 1 PUBLISH and does
//! nothing else, answering all the PUBLISHes of one read with one write. Against it, the
//! field load runs at the most its own process can offer on this machine (a broker such as
//! Mosquitto, which acks packet by packet, tops out first).

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::mqtt_wire::{self, Incoming};

/// The sink, listening on a free loopback port on a thread of its own; stopped when dropped.
pub struct AckSink {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AckSink {
    pub fn start() -> AckSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    _ = accept(listener) => {}
                    _ = stopped => {}
                }
            });
        });
        AckSink {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for AckSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream));
    }
}

/// Answers CONNECT with CONNACK and each QoS 1 PUBLISH with its PUBACK, until DISCONNECT.
async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut incoming = BytesMut::with_capacity(256 * 1024);
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        match stream.read_buf(&mut incoming).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match mqtt_wire::next_packet(&mut incoming) {
                Ok(Some(Incoming::Connect)) => mqtt_wire::connack(&mut out),
                Ok(Some(Incoming::Publish(Some(pkid)))) => mqtt_wire::puback(&mut out, pkid),
                Ok(Some(Incoming::Disconnect)) | Err(_) => return,
                Ok(Some(_)) => {}
                Ok(None) => break,
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}
