//! Guards against client options and calls that misbehave on bad input from C.

use std::ptr::{null, null_mut};
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::ops::nodes::{zk_create, zk_delete, zk_exists};
use crate::server::{zk_server, zk_server_connect, zk_server_free, zk_server_start};

static FIRED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count(_userdata: *mut c_void, _event: *const zk_watch_event) {
    FIRED.fetch_add(1, Ordering::SeqCst);
}

/// Guards against a client that keeps one table entry per distinct (callback, userdata)
/// pair for good: a program that watches each znode with its own userdata grew it without
/// bound.
#[test]
fn pairs_whose_watches_fired_are_forgotten() {
    let mut server: *mut zk_server = null_mut();
    let mut client: *mut zk_client = null_mut();
    // SAFETY: valid out-parameters and NUL-terminated strings; handles freed at the end.
    unsafe {
        assert_eq!(zk_server_start(null(), &mut server), zk_result::ZK_OK);
        assert_eq!(
            zk_server_connect(server, null(), &mut client),
            zk_result::ZK_OK
        );
        let watched = c"/watched".as_ptr();
        for round in 0..5usize {
            for userdata in 0..300usize {
                let userdata = (round * 1_000 + userdata + 1) as *mut c_void;
                let rc = zk_exists(client, watched, Some(count), userdata, null_mut());
                assert_eq!(rc, zk_result::ZK_NONODE);
            }
            let created = zk_create(
                client,
                watched,
                null(),
                0,
                null(),
                0,
                0,
                -1,
                null_mut(),
                null_mut(),
            );
            assert_eq!(created, zk_result::ZK_OK);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while FIRED.load(Ordering::SeqCst) < (round + 1) * 300 {
                assert!(std::time::Instant::now() < deadline, "the watches fired");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(zk_delete(client, watched, -1), zk_result::ZK_OK);
        }
        let kept = (*client).watchers.lock().len();
        assert!(kept <= 600, "{kept} of 1500 pairs kept");
        zk_client_free(client);
        zk_server_free(server);
    }
}
