//! ACL rules: digest ids, permission checks, and the validation and `auth` expansion of new ACLs.
//!
//! Each function matches one piece of Apache ZooKeeper so clients see the same answers:
//! `digest` is `DigestAuthenticationProvider.generateDigest`, `check` is
//! `ZooKeeperServer.checkACL`, `fixup` is `PrepRequestProcessor.fixupACL`, and `mask_digests` is
//! what getACL returns to a session without ADMIN. The schemes with a provider are `digest` and
//! `ip`, and `x509` when its provider is configured (a TLS port brings it), as in ZooKeeper.
//!
//! IPv6 ip ids follow 3.9's `IPAuthenticationProvider`; the Debian reference server (3.8.0)
//! predates IPv6 ACLs and answers InvalidAcl for every IPv6 id, so differential tests must not
//! compare those.
//!
//! Numbers inside ip ids are parsed as Java's `Integer.parseInt` does (a leading '+' or '-' is
//! accepted), except that only ASCII digits are accepted, where Java also takes other Unicode
//! decimal digits.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use super::distinguished_name;
use crate::proto::{Acl, ErrorCode, Id, Perms};

/// The digest id for `user:password`: the user, a colon, and base64(sha1(`user:password`)).
///
/// The user is the part before the first ':' (the whole input when there is none), and the hash
/// covers the whole input, as `DigestAuthenticationProvider.generateDigest`.
pub fn digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(hash);
    let mut id = String::with_capacity(user.len() + 1 + encoded.len());
    id.push_str(user);
    id.push(':');
    id.push_str(&encoded);
    id
}

/// True when a session with `identities` may do any of `wanted` on a znode with `acl`.
///
/// An empty ACL allows everything; a `super` identity allows everything; otherwise an entry
/// whose perms share a bit with `wanted` allows when it is `world:anyone`, or a `digest` or
/// `x509` entry equal to one of the session's ids of that scheme, or an `ip` entry (`address[/bits]`) whose prefix
/// contains one of the session's ip ids. Entries of any other scheme never match.
pub fn check(acl: &[Acl], wanted: Perms, identities: &[Id]) -> bool {
    if acl.is_empty() {
        return true;
    }
    if identities.iter().any(|identity| identity.scheme == "super") {
        return true;
    }
    acl.iter()
        .filter(|entry| entry.perms.grants_any(wanted))
        .any(|entry| {
            let scheme = entry.id.scheme.as_str();
            if scheme == "world" && entry.id.id == "anyone" {
                return true;
            }
            identities
                .iter()
                .filter(|identity| identity.scheme == scheme)
                .any(|identity| match scheme {
                    // X509AuthenticationProvider.matches: the subject, exactly.
                    "digest" | "x509" => identity.id == entry.id.id,
                    "ip" => ip_matches(&identity.id, &entry.id.id),
                    _ => false,
                })
        })
}

/// Validates a client's ACL for a create or setACL and expands its `auth` entries.
///
/// Duplicates are dropped (the first occurrence stays); `world` must be `world:anyone`; `auth`
/// becomes one entry per authenticated identity of the session (the `digest` ones: `ip`
/// identities are not "authenticated" in ZooKeeper's sense and `super` has no provider);
/// `digest` ids must be `user:hash`; `ip` ids must be `address[/bits]` with bits in range.
/// With `x509_enabled` (ZooKeeper's `authProvider.x509`), `x509` ids must be distinguished
/// names and `auth` takes the session's x509 identities too (that provider is "authenticated").
///
/// An id the client sent as null (`Id::id_is_null`) is refused with MarshallingError where
/// ZooKeeper meets a NullPointerException, which its PrepRequestProcessor answers so (its
/// catch-all for anything but a KeeperException): comparing it with an earlier entry of the
/// same perms and scheme while dropping duplicates (the jute `Id.equals` calls `id.equals`;
/// a null scheme meets it with any earlier entry of the same perms: `scheme.equals` first),
/// `world`'s `getId().equals("anyone")`, and the `isValid` of `digest` (`id.split`), `ip`
/// (`id.split`) and `x509` (`new X500Principal(null)` throws NullPointerException, which
/// `isValid` does not catch: it catches IllegalArgumentException only). A scheme without a
/// provider answers InvalidAcl before any id is looked at, and `auth` ignores its id.
///
/// # Errors
/// `InvalidAcl` for an empty ACL, an `auth` entry when the session has no digest (or x509)
/// identity, a malformed id, or any other scheme; `MarshallingError` for a null id as above.
pub fn fixup(acl: &[Acl], identities: &[Id], x509_enabled: bool) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        let null_compared = unique.iter().any(|kept| {
            kept.perms == entry.perms
                && (entry.id.scheme_is_null
                    || (entry.id.id_is_null
                        && !kept.id.scheme_is_null
                        && kept.id.scheme == entry.id.scheme))
        });
        if null_compared {
            return Err(ErrorCode::MarshallingError);
        }
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        let reads_the_id = matches!(id.scheme.as_str(), "world" | "digest" | "ip")
            || (x509_enabled && id.scheme == "x509");
        if id.id_is_null && reads_the_id {
            return Err(ErrorCode::MarshallingError);
        }
        match id.scheme.as_str() {
            "world" if id.id == "anyone" => fixed.push(entry.clone()),
            "auth" => {
                // ZooKeeper does not dedup after expansion, so neither do we.
                let before = fixed.len();
                fixed.extend(
                    identities
                        .iter()
                        .filter(|identity| {
                            identity.scheme == "digest"
                                || (x509_enabled && identity.scheme == "x509")
                        })
                        .map(|identity| Acl::new(entry.perms, identity.clone())),
                );
                if fixed.len() == before {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if is_valid_digest_id(&id.id) => fixed.push(entry.clone()),
            "ip" if is_valid_ip_id(&id.id) => fixed.push(entry.clone()),
            "x509" if x509_enabled && distinguished_name::is_valid(&id.id) => {
                fixed.push(entry.clone())
            }
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(fixed)
}

/// The ACL as getACL shows it to a session without ADMIN: each digest id's hash becomes "x".
///
/// ZooKeeper does this with `replaceAll(":.*", ":x")`, whose '.' stops at line terminators, so
/// each line of an id is masked from its first ':' on; ids are rarely multi-line, but the answer
/// should still be the same.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme == "digest" {
                Acl::new(entry.perms, Id::new("digest", mask_hash(&entry.id.id)))
            } else {
                entry.clone()
            }
        })
        .collect()
}

/// Replaces every match of Java's `:.*` in `id` by ":x".
fn mask_hash(id: &str) -> String {
    let mut masked = String::with_capacity(id.len());
    let mut skipping = false;
    for c in id.chars() {
        if skipping {
            if is_java_line_terminator(c) {
                skipping = false;
                masked.push(c);
            }
        } else if c == ':' {
            masked.push_str(":x");
            skipping = true;
        } else {
            masked.push(c);
        }
    }
    masked
}

/// The chars Java's regex '.' does not match by default.
fn is_java_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// `DigestAuthenticationProvider.isValid`: Java's `id.split(":")` has exactly two parts.
/// Java drops trailing empty parts, so "user:hash:" and ":hash" are valid and "user:" is not.
fn is_valid_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// `IPAuthenticationProvider.isValid`: an address, optionally "/bits" with bits in range.
fn is_valid_ip_id(id: &str) -> bool {
    parse_ip_prefix(id).is_some()
}

/// `IPAuthenticationProvider.matches`: the identity's address lies in the entry's prefix.
fn ip_matches(identity: &str, entry: &str) -> bool {
    let Some((mut prefix, bits)) = parse_ip_prefix(entry) else {
        return false;
    };
    let Some(mut address) = parse_ip(identity) else {
        return false;
    };
    mask(&mut prefix, bits);
    mask(&mut address, bits);
    prefix == address
}

/// An address as bytes (4 for IPv4, 16 for IPv6); at most 16 bytes, never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct IpBytes {
    bytes: [u8; 16],
    len: usize,
}

/// `address[/bits]`, as `IPAuthenticationProvider` reads an ACL entry; bits default to the
/// address length.
fn parse_ip_prefix(expression: &str) -> Option<(IpBytes, u32)> {
    let (address, bits) = match expression.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (expression, None),
    };
    let address = parse_ip(address)?;
    let bits_max = address.len as u32 * 8;
    let bits = match bits {
        None => bits_max,
        Some(text) => {
            let bits = parse_java_int(text, 10)?;
            u32::try_from(bits).ok().filter(|bits| *bits <= bits_max)?
        }
    };
    Some((address, bits))
}

/// `IPAuthenticationProvider.addr2Bytes`: a ':' means IPv6, else a '.' means IPv4.
fn parse_ip(address: &str) -> Option<IpBytes> {
    if address.contains(':') {
        parse_ipv6(address)
    } else if address.contains('.') {
        parse_ipv4(address)
    } else {
        None
    }
}

fn parse_ipv4(address: &str) -> Option<IpBytes> {
    let mut ip = IpBytes {
        bytes: [0; 16],
        len: 4,
    };
    let mut parts = address.split('.');
    for byte in &mut ip.bytes[..4] {
        let value = parse_java_int(parts.next()?, 10)?;
        *byte = u8::try_from(value).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(ip)
}

/// `IPAuthenticationProvider.parseV6addr`: eight hex segments, or fewer around one "::".
/// No embedded IPv4 form, as in ZooKeeper.
fn parse_ipv6(address: &str) -> Option<IpBytes> {
    const SEGMENTS: usize = 8;
    let mut ip = IpBytes {
        bytes: [0; 16],
        len: 16,
    };
    let mut halves = address.split("::");
    let head = halves.next().unwrap_or_default();
    match (halves.next(), halves.next()) {
        (None, _) => {
            if head.split(':').count() != SEGMENTS {
                return None;
            }
            parse_ipv6_segments(&mut ip.bytes, 0, head)?;
        }
        (Some(tail), None) => {
            let count = |half: &str| {
                if half.is_empty() {
                    0
                } else {
                    half.split(':').count()
                }
            };
            let tail_count = count(tail);
            if count(head) + tail_count >= SEGMENTS {
                return None;
            }
            if !head.is_empty() {
                parse_ipv6_segments(&mut ip.bytes, 0, head)?;
            }
            if !tail.is_empty() {
                parse_ipv6_segments(&mut ip.bytes, 16 - 2 * tail_count, tail)?;
            }
        }
        (Some(_), Some(_)) => return None,
    }
    Some(ip)
}

fn parse_ipv6_segments(bytes: &mut [u8; 16], start: usize, segments: &str) -> Option<()> {
    let mut at = start;
    for segment in segments.split(':') {
        // Java measures UTF-16 units; any non-ASCII segment fails to parse below anyway.
        if segment.is_empty() || segment.chars().map(char::len_utf16).sum::<usize>() > 4 {
            return None;
        }
        let value = parse_java_int(segment, 16)?;
        // Java keeps the low 16 bits, so "-1" is 0xffff.
        bytes[at] = (value >> 8) as u8;
        bytes[at + 1] = value as u8;
        at += 2;
    }
    Some(())
}

/// Keeps the first `bits` bits of the address and zeroes the rest.
fn mask(ip: &mut IpBytes, bits: u32) {
    let bits = bits as usize;
    for (index, byte) in ip.bytes[..ip.len].iter_mut().enumerate() {
        let kept = bits.saturating_sub(index * 8).min(8);
        *byte &= if kept == 0 { 0 } else { 0xffu8 << (8 - kept) };
    }
}

/// Java's `Integer.parseInt(text, radix)` for ASCII digits: an optional sign, then at least
/// one digit, and the value must fit in an i32.
fn parse_java_int(text: &str, radix: u32) -> Option<i32> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars() {
        value = value * i64::from(radix) + i64::from(c.to_digit(radix)?);
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    i32::try_from(if negative { -value } else { value }).ok()
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
