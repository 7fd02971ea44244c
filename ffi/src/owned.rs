//! The caller-owned answers (bytes, string lists, ACL lists, identities, multi and multi-read
//! results) and their free functions. Each is one allocation: the public struct C reads,
//! followed by the storage it points into, so one `_free` releases all of it.

use std::ffi::{c_char, CString};
use std::ptr;

use zookeeper_core::op::{OpResult, ReadResult};
use zookeeper_core::{Acl, ClientInfo};

use crate::boundary::{boundary_void, from_raw};
use crate::result::zk_result;
use crate::types::{zk_acl, zk_op_kind, zk_stat};

/// Bytes owned by the caller; free with `zk_bytes_free`. A znode's null data is a NULL
/// `zk_bytes *`, never an empty one.
#[repr(C)]
#[derive(Debug)]
pub struct zk_bytes {
    /// The bytes (not NUL-terminated); valid until freed.
    pub data: *const u8,
    /// How many.
    pub len: usize,
}

/// Strings owned by the caller (children, paths, identifiers); free with `zk_strings_free`.
#[repr(C)]
#[derive(Debug)]
pub struct zk_strings {
    /// `count` NUL-terminated UTF-8 strings.
    pub items: *const *const c_char,
    /// How many.
    pub count: usize,
}

/// An ACL owned by the caller; free with `zk_acl_list_free`.
#[repr(C)]
#[derive(Debug)]
pub struct zk_acl_list {
    /// `count` entries.
    pub items: *const zk_acl,
    /// How many.
    pub count: usize,
}

/// One authenticated identity of a session (`zk_whoami`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_identity {
    /// The scheme, such as `ip` or `digest`.
    pub scheme: *const c_char,
    /// The user within it.
    pub id: *const c_char,
}

/// Identities owned by the caller; free with `zk_identity_list_free`.
#[repr(C)]
#[derive(Debug)]
pub struct zk_identity_list {
    /// `count` identities.
    pub items: *const zk_identity,
    /// How many.
    pub count: usize,
}

/// One op's outcome in a multi.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_op_result {
    /// The op's `zk_op_kind`, or `ZK_OP_ERROR` when the multi failed.
    pub kind: i32,
    /// For `ZK_OP_ERROR`: `ZK_OK` for an op before the failing one (rolled back), the failing
    /// op's code, or `ZK_RUNTIMEINCONSISTENCY` for ops after it. Else `ZK_OK`.
    pub error: zk_result,
    /// Create: the created path; else NULL.
    pub path: *const c_char,
    /// Create and set: the znode's Stat; else zeros.
    pub stat: zk_stat,
}

/// A multi's results owned by the caller; free with `zk_multi_results_free`.
#[repr(C)]
#[derive(Debug)]
pub struct zk_multi_results {
    /// One per op, in order.
    pub items: *const zk_op_result,
    /// How many.
    pub count: usize,
}

/// One read's outcome in a multi-read.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct zk_read_result {
    /// The read's kind, or `ZK_OP_ERROR`.
    pub kind: i32,
    /// The read's own code (each read succeeds or fails on its own).
    pub error: zk_result,
    /// Get data: the data, NULL for null data.
    pub data: *const zk_bytes,
    /// Get data: the Stat; else zeros.
    pub stat: zk_stat,
    /// Get children: the names, sorted; else NULL.
    pub children: *const zk_strings,
}

/// A multi-read's results owned by the caller; free with `zk_read_results_free`.
#[repr(C)]
#[derive(Debug)]
pub struct zk_read_results {
    /// One per read, in order.
    pub items: *const zk_read_result,
    /// How many.
    pub count: usize,
}

/// A public struct and the storage it points into, in one allocation; C holds a pointer to
/// `view`, which is at offset 0, and hands it back to the matching `_free`.
#[repr(C)]
pub(crate) struct Owned<View, Storage> {
    pub(crate) view: View,
    storage: Storage,
}

impl<View, Storage> Owned<View, Storage> {
    fn boxed(storage: Storage, view: impl FnOnce(&Storage) -> View) -> Box<Owned<View, Storage>> {
        // The storage moves into the box before the view points into it: heap buffers
        // (Vec, CString) do not move when their owner does.
        let view = view(&storage);
        Box::new(Owned { view, storage })
    }

    /// The owned answer as the pointer C receives.
    pub(crate) fn into_view(self: Box<Self>) -> *mut View {
        Box::into_raw(self).cast()
    }
}

/// Hands an owned answer (None: a NULL pointer) to an out-parameter the caller may leave
/// NULL; then it is dropped here rather than leaked.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn hand_over<View, Storage>(
    out: *mut *mut View,
    owned: Option<Box<Owned<View, Storage>>>,
) {
    if !out.is_null() {
        let pointer = owned.map_or(ptr::null_mut(), Owned::into_view);
        // SAFETY: non-NULL and writable per the caller.
        unsafe { out.write(pointer) };
    }
}

/// Frees what `Owned::into_view` handed out; NULL is nothing.
///
/// # Safety
/// `view` is NULL or came from `Owned::<View, Storage>::into_view` and was not freed.
unsafe fn free_owned<View, Storage>(view: *mut View) {
    // SAFETY: `view` is the first field of a repr(C) Owned boxed by into_view.
    drop(unsafe { from_raw(view.cast::<Owned<View, Storage>>()) });
}

/// A Rust string as a C string; a NUL inside (which znode names cannot hold) cuts it short.
pub(crate) fn c_string(text: &str) -> CString {
    let end = text.find('\0').unwrap_or(text.len());
    CString::new(&text[..end]).unwrap_or_default()
}

pub(crate) type BytesOwned = Owned<zk_bytes, Vec<u8>>;

pub(crate) fn owned_bytes(bytes: Vec<u8>) -> Box<BytesOwned> {
    Owned::boxed(bytes, |bytes| zk_bytes {
        data: bytes.as_ptr(),
        len: bytes.len(),
    })
}

type StringsStorage = (Vec<CString>, Vec<*const c_char>);
pub(crate) type StringsOwned = Owned<zk_strings, StringsStorage>;

pub(crate) fn owned_strings(strings: &[String]) -> Box<StringsOwned> {
    let texts: Vec<CString> = strings.iter().map(|text| c_string(text)).collect();
    let pointers = texts.iter().map(|text| text.as_ptr()).collect();
    Owned::boxed((texts, pointers), |(_, pointers)| zk_strings {
        items: pointers.as_ptr(),
        count: pointers.len(),
    })
}

type AclStorage = (Vec<CString>, Vec<zk_acl>);
pub(crate) type AclOwned = Owned<zk_acl_list, AclStorage>;

pub(crate) fn owned_acl(acl: &[Acl]) -> Box<AclOwned> {
    let texts: Vec<CString> = acl
        .iter()
        .flat_map(|entry| [c_string(&entry.id.scheme), c_string(&entry.id.id)])
        .collect();
    let entries = acl
        .iter()
        .zip(texts.chunks(2))
        .map(|(entry, pair)| zk_acl {
            perms: entry.perms.0,
            scheme: pair[0].as_ptr(),
            id: pair[1].as_ptr(),
        })
        .collect();
    Owned::boxed((texts, entries), |(_, entries)| zk_acl_list {
        items: entries.as_ptr(),
        count: entries.len(),
    })
}

type IdentityStorage = (Vec<CString>, Vec<zk_identity>);
pub(crate) type IdentitiesOwned = Owned<zk_identity_list, IdentityStorage>;

pub(crate) fn owned_identities(infos: &[ClientInfo]) -> Box<IdentitiesOwned> {
    let texts: Vec<CString> = infos
        .iter()
        .flat_map(|info| [c_string(&info.auth_scheme), c_string(&info.user)])
        .collect();
    let entries = texts
        .chunks(2)
        .map(|pair| zk_identity {
            scheme: pair[0].as_ptr(),
            id: pair[1].as_ptr(),
        })
        .collect();
    Owned::boxed((texts, entries), |(_, entries)| zk_identity_list {
        items: entries.as_ptr(),
        count: entries.len(),
    })
}

type MultiStorage = (Vec<Option<CString>>, Vec<zk_op_result>);
pub(crate) type MultiOwned = Owned<zk_multi_results, MultiStorage>;

pub(crate) fn owned_multi_results(results: &[OpResult]) -> Box<MultiOwned> {
    let paths: Vec<Option<CString>> = results
        .iter()
        .map(|result| match result {
            OpResult::Create { path, .. } => Some(c_string(path)),
            _ => None,
        })
        .collect();
    let items = results
        .iter()
        .zip(&paths)
        .map(|(result, path)| {
            let (kind, error, stat) = match result {
                OpResult::Create { stat, .. } => {
                    (zk_op_kind::ZK_OP_CREATE, zk_result::ZK_OK, (*stat).into())
                }
                OpResult::Delete => (
                    zk_op_kind::ZK_OP_DELETE,
                    zk_result::ZK_OK,
                    zk_stat::default(),
                ),
                OpResult::SetData(stat) => {
                    (zk_op_kind::ZK_OP_SET_DATA, zk_result::ZK_OK, (*stat).into())
                }
                OpResult::Check => (
                    zk_op_kind::ZK_OP_CHECK,
                    zk_result::ZK_OK,
                    zk_stat::default(),
                ),
                OpResult::Error(code) => (
                    zk_op_kind::ZK_OP_ERROR,
                    code.map_or(zk_result::ZK_OK, zk_result::from),
                    zk_stat::default(),
                ),
            };
            zk_op_result {
                kind: kind as i32,
                error,
                path: path.as_ref().map_or(ptr::null(), |path| path.as_ptr()),
                stat,
            }
        })
        .collect();
    Owned::boxed((paths, items), |(_, items)| zk_multi_results {
        items: items.as_ptr(),
        count: items.len(),
    })
}

type ReadStorage = (
    Vec<Option<Box<BytesOwned>>>,
    Vec<Option<Box<StringsOwned>>>,
    Vec<zk_read_result>,
);
pub(crate) type ReadOwned = Owned<zk_read_results, ReadStorage>;

pub(crate) fn owned_read_results(results: &[ReadResult]) -> Box<ReadOwned> {
    let mut datas = Vec::with_capacity(results.len());
    let mut childrens = Vec::with_capacity(results.len());
    let mut items = Vec::with_capacity(results.len());
    for result in results {
        let (data, children) = match result {
            ReadResult::Data { data, .. } => (data.clone().map(owned_bytes), None),
            ReadResult::Children(children) => (None, Some(owned_strings(children))),
            ReadResult::Error(_) => (None, None),
        };
        let (kind, error, stat) = match result {
            ReadResult::Data { stat, .. } => {
                (zk_op_kind::ZK_OP_GET_DATA, zk_result::ZK_OK, (*stat).into())
            }
            ReadResult::Children(_) => (
                zk_op_kind::ZK_OP_GET_CHILDREN,
                zk_result::ZK_OK,
                zk_stat::default(),
            ),
            ReadResult::Error(code) => {
                (zk_op_kind::ZK_OP_ERROR, (*code).into(), zk_stat::default())
            }
        };
        items.push(zk_read_result {
            kind: kind as i32,
            error,
            data: data
                .as_ref()
                .map_or(ptr::null(), |data| &data.view as *const zk_bytes),
            stat,
            children: children
                .as_ref()
                .map_or(ptr::null(), |children| &children.view as *const zk_strings),
        });
        datas.push(data);
        childrens.push(children);
    }
    Owned::boxed((datas, childrens, items), |(_, _, items)| zk_read_results {
        items: items.as_ptr(),
        count: items.len(),
    })
}

/// Frees bytes from `zk_get` (or a string from `zk_create`'s path is `zk_string_free`).
/// NULL is ignored.
///
/// # Safety
/// `bytes` is NULL or came from this library and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn zk_bytes_free(bytes: *mut zk_bytes) {
    // SAFETY: per the contract above.
    boundary_void(|| unsafe { free_owned::<zk_bytes, Vec<u8>>(bytes) });
}

/// Frees a string list. NULL is ignored.
///
/// # Safety
/// `strings` is NULL or came from this library and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn zk_strings_free(strings: *mut zk_strings) {
    // SAFETY: per the contract above.
    boundary_void(|| unsafe { free_owned::<zk_strings, StringsStorage>(strings) });
}

/// Frees an ACL list. NULL is ignored.
///
/// # Safety
/// `acl` is NULL or came from this library and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn zk_acl_list_free(acl: *mut zk_acl_list) {
    // SAFETY: per the contract above.
    boundary_void(|| unsafe { free_owned::<zk_acl_list, AclStorage>(acl) });
}

/// Frees an identity list. NULL is ignored.
///
/// # Safety
/// `identities` is NULL or came from this library and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn zk_identity_list_free(identities: *mut zk_identity_list) {
    // SAFETY: per the contract above.
    boundary_void(|| unsafe { free_owned::<zk_identity_list, IdentityStorage>(identities) });
}

/// Frees a multi's results. NULL is ignored.
///
/// # Safety
/// `results` is NULL or came from this library and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn zk_multi_results_free(results: *mut zk_multi_results) {
    // SAFETY: per the contract above.
    boundary_void(|| unsafe { free_owned::<zk_multi_results, MultiStorage>(results) });
}

/// Frees a multi-read's results. NULL is ignored.
///
/// # Safety
/// `results` is NULL or came from this library and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn zk_read_results_free(results: *mut zk_read_results) {
    // SAFETY: per the contract above.
    boundary_void(|| unsafe { free_owned::<zk_read_results, ReadStorage>(results) });
}

/// A string handed to C (a created path), freed by `zk_string_free`.
pub(crate) fn owned_string(text: &str) -> *mut c_char {
    c_string(text).into_raw()
}

/// Frees a string from this library (`zk_create`'s path). NULL is ignored.
///
/// # Safety
/// `text` is NULL or came from this library and was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn zk_string_free(text: *mut c_char) {
    boundary_void(|| {
        if !text.is_null() {
            // SAFETY: it came from CString::into_raw in owned_string.
            drop(unsafe { CString::from_raw(text) });
        }
    });
}
