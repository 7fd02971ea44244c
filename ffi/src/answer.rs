//! A reply in C form, built once and used two ways: a blocking call moves its pieces into the
//! caller's out-parameters, a completion callback borrows them as a `zk_reply` for the length
//! of the call.

use std::ffi::{c_char, c_void, CString};
use std::ptr;
use std::sync::Arc;

use zookeeper_core::op::{Op, Reply};
use zookeeper_core::{Client, Error, ErrorCode, Watcher};

use crate::boundary::UserData;
use crate::owned::{
    c_string, owned_acl, owned_bytes, owned_identities, owned_multi_results, owned_read_results,
    owned_strings, zk_acl_list, zk_bytes, zk_identity_list, zk_multi_results, zk_read_results,
    zk_strings, AclOwned, BytesOwned, IdentitiesOwned, MultiOwned, ReadOwned, StringsOwned,
};
use crate::result::zk_result;
use crate::types::zk_stat;

/// An asynchronous call's answer, borrowed by its completion: valid only during the callback
/// (copy what you keep). Fields the operation does not answer are NULL (or 0).
#[repr(C)]
#[derive(Debug)]
pub struct zk_reply {
    /// Create: the created path; sync: the path.
    pub path: *const c_char,
    /// Create, exists, get, set, get_children, get_acl, set_acl: the znode's Stat.
    pub stat: *const zk_stat,
    /// Get: the data; NULL for null data.
    pub data: *const zk_bytes,
    /// Get children: the names, sorted; get ephemerals: the paths.
    pub children: *const zk_strings,
    /// Get ACL: the ACL.
    pub acl: *const zk_acl_list,
    /// Get all children number: the count.
    pub number: i32,
    /// Multi: every op's result (also when the multi failed).
    pub multi_results: *const zk_multi_results,
    /// Multi-read: every read's result.
    pub read_results: *const zk_read_results,
    /// Whoami: the session's identities.
    pub identities: *const zk_identity_list,
}

/// Runs once with an asynchronous call's result on the client's dispatcher thread, in order
/// with watch events (a change's events run before the completion of the write that made
/// it). `reply` is NULL when the call failed, except for a failed multi, whose reply carries
/// every op's result.
pub type zk_completion_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, result: zk_result, reply: *const zk_reply)>;

/// A reply's pieces, owned until moved out or dropped after the completion.
#[derive(Default)]
pub(crate) struct Answer {
    pub(crate) path: Option<CString>,
    pub(crate) stat: Option<zk_stat>,
    pub(crate) data: Option<Box<BytesOwned>>,
    pub(crate) children: Option<Box<StringsOwned>>,
    pub(crate) acl: Option<Box<AclOwned>>,
    pub(crate) number: i32,
    pub(crate) multi_results: Option<Box<MultiOwned>>,
    pub(crate) read_results: Option<Box<ReadOwned>>,
    pub(crate) identities: Option<Box<IdentitiesOwned>>,
}

impl Answer {
    fn from_reply(reply: Reply) -> Answer {
        let mut answer = Answer::default();
        match reply {
            Reply::Create { path, stat } => {
                answer.path = Some(c_string(&path));
                answer.stat = Some(stat.into());
            }
            Reply::Stat(stat) | Reply::Exists(Some(stat)) => answer.stat = Some(stat.into()),
            Reply::Exists(None) | Reply::Done => {}
            Reply::Data { data, stat } => {
                answer.data = data.map(owned_bytes);
                answer.stat = Some(stat.into());
            }
            Reply::Children { children, stat } => {
                answer.children = Some(owned_strings(&children));
                answer.stat = Some(stat.into());
            }
            Reply::Acl { acl, stat } => {
                answer.acl = Some(owned_acl(&acl));
                answer.stat = Some(stat.into());
            }
            Reply::Number(number) => answer.number = number,
            Reply::Paths(paths) => answer.children = Some(owned_strings(&paths)),
            Reply::Sync(path) => answer.path = Some(c_string(&path)),
            Reply::Multi(results) => answer.multi_results = Some(owned_multi_results(&results)),
            Reply::MultiRead(results) => answer.read_results = Some(owned_read_results(&results)),
            Reply::WhoAmI(infos) => answer.identities = Some(owned_identities(&infos)),
        }
        answer
    }

    /// An outcome as the code to return and the answer (a failed multi keeps its results).
    pub(crate) fn from_outcome(outcome: Result<Reply, Error>) -> (zk_result, Option<Answer>) {
        match outcome {
            // Exists answers an absent znode as ZooKeeper's C client does (ZNONODE); its
            // watch, if any, stands.
            Ok(Reply::Exists(None)) => (zk_result::ZK_NONODE, None),
            Ok(reply) => (zk_result::ZK_OK, Some(Answer::from_reply(reply))),
            Err(error) => {
                let code = zk_result::from(&error);
                let answer = error.multi_results().map(|results| Answer {
                    multi_results: Some(owned_multi_results(results)),
                    ..Answer::default()
                });
                (code, answer)
            }
        }
    }

    fn view(&self) -> zk_reply {
        fn view_of<View, T: AsViewOf<View>>(owned: &Option<Box<T>>) -> *const View {
            owned.as_ref().map_or(ptr::null(), |owned| owned.as_view())
        }
        zk_reply {
            path: self.path.as_ref().map_or(ptr::null(), |path| path.as_ptr()),
            stat: self
                .stat
                .as_ref()
                .map_or(ptr::null(), |stat| stat as *const zk_stat),
            data: view_of(&self.data),
            children: view_of(&self.children),
            acl: view_of(&self.acl),
            number: self.number,
            multi_results: view_of(&self.multi_results),
            read_results: view_of(&self.read_results),
            identities: view_of(&self.identities),
        }
    }
}

/// The public struct at the front of an owned answer.
trait AsViewOf<View> {
    fn as_view(&self) -> *const View;
}

impl<View, Storage> AsViewOf<View> for crate::owned::Owned<View, Storage> {
    fn as_view(&self) -> *const View {
        &self.view
    }
}

/// Runs `op` and waits for its answer.
pub(crate) fn call(
    client: &Client,
    op: Op,
    watcher: Option<Watcher>,
) -> (zk_result, Option<Answer>) {
    Answer::from_outcome(client.submit(op, watcher))
}

/// Sends `op`; `done(userdata, result, reply)` runs on the dispatcher thread.
pub(crate) fn call_async(
    client: &Arc<Client>,
    op: Op,
    watcher: Option<Watcher>,
    done: unsafe extern "C" fn(*mut c_void, zk_result, *const zk_reply),
    userdata: UserData,
) {
    let completion = Box::new(move |outcome: Result<Reply, Error>| {
        let (code, answer) = Answer::from_outcome(outcome);
        let view = answer.as_ref().map(Answer::view);
        let reply = view
            .as_ref()
            .map_or(ptr::null(), |view| view as *const zk_reply);
        // SAFETY: the caller's callback, called as the header documents: on the dispatcher
        // thread, with a reply valid for the call.
        unsafe { done(userdata.get(), code, reply) };
    });
    client.submit_async(op, watcher, completion);
}

/// The answer a successful call must carry; a reply of another shape is a bug.
pub(crate) fn expect(code: zk_result, answer: Option<Answer>) -> Result<Answer, zk_result> {
    match (code, answer) {
        (zk_result::ZK_OK, Some(answer)) => Ok(answer),
        (zk_result::ZK_OK, None) => Err(zk_result::from(ErrorCode::MarshallingError)),
        (code, _) => Err(code),
    }
}
