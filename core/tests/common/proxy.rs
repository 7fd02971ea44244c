//! A TCP relay between a client and a server whose connections a test can cut, as a network
//! failure would, without root; which can lose replies the server did send, as a connection
//! that breaks after the server applied a request but before its reply arrived; and which can
//! hold the server's frames back for a while, as a slow network.

use std::collections::{HashSet, VecDeque};
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
    losses: Arc<Mutex<Losses>>,
    holding: Arc<AtomicBool>,
    renamed: Arc<Mutex<Option<(i32, i32)>>>,
}

/// Replies to lose: the next requests with these opcodes, in order, and the xids they got.
#[derive(Default)]
struct Losses {
    opcodes: VecDeque<i32>,
    xids: HashSet<i32>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let losses: Arc<Mutex<Losses>> = Arc::default();
        let holding = Arc::new(AtomicBool::new(false));
        let renamed: Arc<Mutex<Option<(i32, i32)>>> = Arc::default();
        let (sockets, refuse, lose, hold, rename) = (
            open.clone(),
            refusing.clone(),
            losses.clone(),
            holding.clone(),
            renamed.clone(),
        );
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
                let (requests, replies, held) = (lose.clone(), lose.clone(), hold.clone());
                let rename = rename.clone();
                let (from, to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    relay_frames(from, to, |header, frame| {
                        if let (Some((_, opcode)), Some((from, to))) = (header, *rename.lock()) {
                            if opcode == from {
                                frame[8..12].copy_from_slice(&to.to_be_bytes());
                            }
                        }
                        let mut losses = requests.lock();
                        if let Some((xid, opcode)) = header {
                            if losses.opcodes.front() == Some(&opcode) {
                                losses.opcodes.pop_front();
                                losses.xids.insert(xid);
                            }
                        }
                        true
                    })
                });
                std::thread::spawn(move || {
                    relay_frames(server, client, |header, _| {
                        while held.load(Ordering::SeqCst) {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        header.is_none_or(|(xid, _)| !replies.lock().xids.remove(&xid))
                    })
                });
            }
        });
        Proxy {
            address,
            open,
            refusing,
            losses,
            holding,
            renamed,
        }
    }

    /// Requests with opcode `from` reach the server as opcode `to` (as a server that does
    /// not know `from` sees them).
    pub fn rename_requests(&self, from: i32, to: i32) {
        *self.renamed.lock() = Some((from, to));
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

    /// The replies to the next requests with these opcodes (in this order) are lost: each
    /// breaks its connection instead of reaching the client, after the server did what the
    /// request asked.
    pub fn lose_replies_to(&self, opcodes: &[i32]) {
        self.losses.lock().opcodes.extend(opcodes);
    }

    /// While `hold` is true, nothing the server sends reaches the client (it is delivered
    /// once released).
    pub fn hold_replies(&self, hold: bool) {
        self.holding.store(hold, Ordering::SeqCst);
    }
}

/// Relays ZooKeeper frames (a 4-byte length, then the body) from `from` to `to` until either
/// side closes or `pass` refuses a frame, then closes both. `pass` sees every frame's xid and
/// its next 4 bytes (a request's opcode), or None for the handshake that opens a connection, and
/// may rewrite the frame.
fn relay_frames(
    mut from: TcpStream,
    mut to: TcpStream,
    mut pass: impl FnMut(Option<(i32, i32)>, &mut Vec<u8>) -> bool,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 16 << 10];
    let mut handshake_seen = false;
    'relay: while let Ok(read) = from.read(&mut buffer) {
        if read == 0 {
            break;
        }
        pending.extend_from_slice(&buffer[..read]);
        while pending.len() >= 4 {
            let length = u32::from_be_bytes(pending[..4].try_into().unwrap()) as usize;
            if pending.len() < 4 + length {
                break;
            }
            let mut frame: Vec<u8> = pending.drain(..4 + length).collect();
            let word = |at: usize| {
                frame
                    .get(at..at + 4)
                    .map_or(0, |bytes| i32::from_be_bytes(bytes.try_into().unwrap()))
            };
            let header = handshake_seen.then(|| (word(4), word(8)));
            handshake_seen = true;
            if !pass(header, &mut frame) || to.write_all(&frame).is_err() {
                break 'relay;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
