//! A TCP relay between a client and a server whose connections a test can cut, as a network
//! failure would, without root.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// A TCP relay whose connections the test can cut, as a network failure would.
pub struct Proxy {
    pub address: SocketAddr,
    open: Arc<Mutex<Vec<TcpStream>>>,
    refusing: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let (sockets, refuse) = (open.clone(), refusing.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                sockets
                    .lock()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16 << 10];
                        while let Ok(read) = from.read(&mut buffer) {
                            if read == 0 || to.write_all(&buffer[..read]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            address,
            open,
            refusing,
        }
    }

    /// Breaks every relayed connection; with `refuse` new ones are dropped too.
    pub fn cut(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::SeqCst);
        for socket in self.open.lock().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}
