//! A TCP proxy on 127.0.0.1 that dies mid-transfer: it forwards to a server until a given number of
//! bytes have gone towards it, then drops every connection and answers none. To the client it is a
//! server killed in the middle of an upload, while the real server behind it keeps its state for the
//! test to inspect.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A running proxy.
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    state: Arc<State>,
}

struct State {
    target: u16,
    cut_after: u64,
    forwarded: AtomicU64,
    cut: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// Forwards a new port of 127.0.0.1 to `target` until `cut_after` bytes have gone towards it.
    pub fn start(target: u16, cut_after: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("a local address").port();
        let state = Arc::new(State {
            target,
            cut_after,
            forwarded: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if accepting.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let state = Arc::clone(&accepting);
                std::thread::spawn(move || state.forward(client));
            }
        });
        Proxy { port, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether it has died.
    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }
}

impl State {
    fn forward(&self, client: TcpStream) {
        let Ok(server) = TcpStream::connect(("127.0.0.1", self.target)) else {
            return;
        };
        let streams = [&client, &server].map(|s| s.try_clone().expect("clone a socket"));
        self.connections.lock().unwrap().extend(streams);
        let (Ok(mut from_server), Ok(mut to_client)) = (server.try_clone(), client.try_clone())
        else {
            return;
        };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_server, &mut to_client);
            let _ = to_client.shutdown(Shutdown::Write);
        });
        let (mut from_client, mut to_server) = (client, server);
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = match from_client.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let total = self.forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= self.cut_after {
                self.die();
                return;
            }
            if to_server.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(Shutdown::Write);
    }

    /// Drops every connection; later ones are refused.
    fn die(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.connections.lock().unwrap().iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}
