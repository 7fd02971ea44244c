//! Znode path rules: which paths are valid, and how to split a path into parent and name.
//!
//! `validate` accepts exactly the paths ZooKeeper's `PathUtils.validatePath` accepts, so a client
//! gets the same BadArguments from us as from Apache ZooKeeper. Java checks UTF-16 code units;
//! a Rust `char` above U+FFFF is a surrogate pair in Java, and surrogates are rejected, so every
//! such char is rejected here too.
//!
//! A consequence worth knowing: valid paths contain no char in U+D800..=U+F8FF nor above U+FFEF,
//! so byte order of their UTF-8 equals Java's UTF-16 `String.compareTo` order. Sorting names as
//! Rust `str` therefore sorts them exactly as Java would.

use crate::proto::ErrorCode;

/// The paths ZooKeeper owns from the start; clients can neither delete them nor create over them.
const RESERVED_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", CONFIG_ZNODE];

/// Where ZooKeeper keeps the ensemble's membership.
pub const CONFIG_ZNODE: &str = "/zookeeper/config";

/// Checks `path` against ZooKeeper's path rules.
///
/// A valid path is non-empty, starts with '/', does not end with '/' (except "/" itself), has no
/// empty, "." or ".." component, and contains no char ZooKeeper forbids (U+0000..=U+001F,
/// U+007F..=U+009F, U+D800..=U+F8FF, U+FFF0..=U+FFFF, and anything above U+FFFF).
///
/// # Errors
/// `BadArguments` when any rule is broken.
pub fn validate(path: &str) -> Result<(), ErrorCode> {
    let Some(rest) = path.strip_prefix('/') else {
        // Covers the empty path too.
        return Err(ErrorCode::BadArguments);
    };
    if rest.is_empty() {
        return Ok(());
    }
    if rest.ends_with('/') {
        return Err(ErrorCode::BadArguments);
    }
    for component in rest.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Err(ErrorCode::BadArguments);
        }
        if component.chars().any(is_forbidden_char) {
            return Err(ErrorCode::BadArguments);
        }
    }
    Ok(())
}

/// True for the chars `PathUtils.validatePath` rejects, seen as Java UTF-16 code units.
fn is_forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        // U+D800..=U+DFFF cannot be a Rust char; the private use area up to U+F8FF is rejected.
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}'
        // Java holds these as surrogate pairs, which fall in the rejected U+D800..=U+DFFF.
        | '\u{10000}'..=char::MAX)
}

/// The parent of a valid path: "/a/b" -> "/a", "/a" -> "/". The root's parent is "/" as well,
/// so callers that must not treat the root as its own child check for "/" first.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(slash) => &path[..slash],
    }
}

/// The last component of a valid path: "/a/b" -> "b"; "" for the root.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// True for the znodes ZooKeeper creates itself ("/", "/zookeeper", "/zookeeper/quota",
/// "/zookeeper/config"): clients may not delete them or create a znode at their path.
pub fn is_reserved(path: &str) -> bool {
    RESERVED_PATHS.contains(&path)
}

/// The full path of the child `name` of `parent`.
pub fn join(parent: &str, name: &str) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    if parent != "/" {
        path.push('/');
    }
    path.push_str(name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> bool {
        validate(path).is_ok()
    }

    #[test]
    fn root_and_ordinary_paths_are_valid() {
        assert!(ok("/"));
        assert!(ok("/a"));
        assert!(ok("/a/b/c"));
        assert!(ok("/zookeeper/quota"));
        assert!(ok("/with space/and-dash_and.dot"));
    }

    #[test]
    fn empty_and_relative_paths_are_rejected() {
        assert_eq!(validate(""), Err(ErrorCode::BadArguments));
        assert!(!ok("a"));
        assert!(!ok("a/b"));
        assert!(!ok(" /a"));
    }

    #[test]
    fn trailing_slash_is_rejected_except_for_root() {
        assert!(!ok("/a/"));
        assert!(!ok("/a/b/"));
        assert!(!ok("//"));
    }

    #[test]
    fn empty_components_are_rejected() {
        assert!(!ok("//a"));
        assert!(!ok("/a//b"));
    }

    #[test]
    fn dot_components_are_rejected_but_dots_inside_names_are_not() {
        assert!(!ok("/."));
        assert!(!ok("/.."));
        assert!(!ok("/a/."));
        assert!(!ok("/a/.."));
        assert!(!ok("/./a"));
        assert!(!ok("/../a"));
        assert!(!ok("/a/./b"));
        assert!(ok("/..."));
        assert!(ok("/.a"));
        assert!(ok("/a."));
        assert!(ok("/..a"));
        assert!(ok("/a.."));
        assert!(ok("/a/.../b"));
    }

    #[test]
    fn control_chars_are_rejected() {
        assert!(!ok("/a\u{0}b"));
        assert!(!ok("/\u{1}"));
        assert!(!ok("/a\u{1f}"));
        assert!(!ok("/a\nb"));
        assert!(!ok("/\u{7f}"));
        assert!(!ok("/\u{9f}"));
        assert!(ok("/\u{20}"));
        assert!(ok("/\u{7e}"));
        assert!(ok("/\u{a0}"));
    }

    #[test]
    fn private_use_specials_and_supplementary_chars_are_rejected() {
        assert!(!ok("/\u{e000}"));
        assert!(!ok("/\u{f8ff}"));
        assert!(ok("/\u{f900}"));
        assert!(ok("/\u{d7ff}"));
        assert!(ok("/\u{ffef}"));
        assert!(!ok("/\u{fff0}"));
        assert!(!ok("/\u{fffd}"));
        assert!(!ok("/\u{ffff}"));
        assert!(!ok("/\u{10000}"));
        assert!(!ok("/emoji\u{1f600}"));
        assert!(ok("/\u{4e2d}\u{6587}"));
    }

    #[test]
    fn parent_and_name_split_a_path() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/a"), "a");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn reserved_paths_are_zookeepers_own() {
        for path in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            assert!(is_reserved(path), "{path}");
        }
        assert!(!is_reserved("/zookeeper/other"));
        assert!(!is_reserved("/zookeeperx"));
        assert!(!is_reserved("/a"));
    }
}
