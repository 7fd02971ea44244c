//! The C boundary's discipline in one place: the panic boundary every exported function runs
//! in, and the checked reading of C arguments (NULL, UTF-8, lengths) and writing of
//! out-parameters. Every `unsafe` dereference of a caller's pointer goes through here.

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::result::zk_result;

/// A call's outcome inside the boundary: `Err` carries the code to return.
pub(crate) type Outcome = Result<(), zk_result>;

/// Runs `body` and turns its outcome into the code to return; a panic becomes `ZK_PANIC`
/// instead of unwinding into C (undefined behaviour) or aborting the host process.
pub(crate) fn boundary(body: impl FnOnce() -> Outcome) -> zk_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => zk_result::ZK_OK,
        Ok(Err(code)) => code,
        Err(_) => zk_result::ZK_PANIC,
    }
}

/// Runs a `void` function's body (a free, a cancel); a panic is swallowed, as C cannot hear it.
pub(crate) fn boundary_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `pointer` is NULL or points to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn text<'a>(pointer: *const c_char) -> Result<&'a str, zk_result> {
    if pointer.is_null() {
        return Err(zk_result::ZK_NULL_ARGUMENT);
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string valid for 'a.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str().map_err(|_| zk_result::ZK_INVALID_UTF8)
}

/// An optional string argument: NULL is None.
///
/// # Safety
/// As `text`.
pub(crate) unsafe fn optional_text<'a>(
    pointer: *const c_char,
) -> Result<Option<&'a str>, zk_result> {
    if pointer.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { text(pointer) }.map(Some)
    }
}

/// Znode data: NULL with length 0 is ZooKeeper's null data, a non-NULL pointer with length 0
/// is empty data.
///
/// # Safety
/// `pointer` is NULL or points to `length` readable bytes valid for `'a`.
pub(crate) unsafe fn data<'a>(
    pointer: *const u8,
    length: usize,
) -> Result<Option<&'a [u8]>, zk_result> {
    if pointer.is_null() && length == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { array(pointer, length) }.map(Some)
}

/// An array argument of `count` items; NULL is allowed only for an empty array. A count no
/// memory can hold (over `isize::MAX` bytes: a negative length cast to `size_t`) is
/// `ZK_INVALID_ARGUMENT`, since building a slice of it would be undefined behaviour.
///
/// # Safety
/// `pointer` is NULL or points to `count` initialized items valid for `'a`.
pub(crate) unsafe fn array<'a, T>(pointer: *const T, count: usize) -> Result<&'a [T], zk_result> {
    if pointer.is_null() {
        return if count == 0 {
            Ok(&[])
        } else {
            Err(zk_result::ZK_NULL_ARGUMENT)
        };
    }
    let items_max = isize::MAX as usize / std::mem::size_of::<T>().max(1);
    if count > items_max {
        return Err(zk_result::ZK_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, a size within isize::MAX, and the caller promises `count` initialized
    // items.
    Ok(unsafe { std::slice::from_raw_parts(pointer, count) })
}

/// A required pointer to a handle or struct.
///
/// # Safety
/// `pointer` is NULL or points to a live `T` valid for `'a`.
pub(crate) unsafe fn reference<'a, T>(pointer: *const T) -> Result<&'a T, zk_result> {
    // SAFETY: the caller promises a live T when non-NULL.
    unsafe { pointer.as_ref() }.ok_or(zk_result::ZK_NULL_ARGUMENT)
}

/// Fails with `ZK_NULL_ARGUMENT` when a required out-parameter is NULL, before any work.
pub(crate) fn required<T>(out: *mut T) -> Outcome {
    if out.is_null() {
        Err(zk_result::ZK_NULL_ARGUMENT)
    } else {
        Ok(())
    }
}

/// Writes an out-parameter the caller may leave NULL; called only once the call succeeded.
///
/// # Safety
/// `out` is NULL or points to writable memory for a `T`.
pub(crate) unsafe fn write<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the caller; `write` does not drop the old
        // (possibly uninitialized) contents.
        unsafe { out.write(value) };
    }
}

/// Copies `text` and a NUL into the caller's `buffer`; `ZK_BUFFER_TOO_SMALL` (nothing
/// written) when `buffer_len` cannot hold both.
///
/// # Safety
/// `buffer` is non-NULL with `buffer_len` writable bytes.
pub(crate) unsafe fn copy_text(text: &str, buffer: *mut c_char, buffer_len: usize) -> Outcome {
    if text.len() + 1 > buffer_len {
        return Err(zk_result::ZK_BUFFER_TOO_SMALL);
    }
    // SAFETY: at least len + 1 writable bytes, checked above; a Rust string cannot overlap
    // the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast(), buffer, text.len());
        buffer.add(text.len()).write(0);
    }
    Ok(())
}

/// Hands a Rust value to C as an owned pointer, freed by the matching `_free`.
pub(crate) fn into_raw<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back what `into_raw` handed out; NULL is nothing.
///
/// # Safety
/// `pointer` is NULL or came from `into_raw::<T>` and was not freed yet.
pub(crate) unsafe fn from_raw<T>(pointer: *mut T) -> Option<Box<T>> {
    if pointer.is_null() {
        None
    } else {
        // SAFETY: per the caller, it came from Box::into_raw and is freed only here.
        Some(unsafe { Box::from_raw(pointer) })
    }
}

/// A caller's `void *userdata`, carried to the thread that runs its callback.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the pointer is only handed back to the caller's own callback; the header states
// that callbacks run on other threads, so the caller vouches for what it points to.
unsafe impl Send for UserData {}
// SAFETY: as above; the library never dereferences it.
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer itself (a method, so closures capture the Send wrapper, not the field).
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}
